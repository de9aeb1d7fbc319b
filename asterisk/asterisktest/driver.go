package asterisktest

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// Driver places calls into the dialplan over Local channels, as a caller
// would: a second ARI application owns the caller's half (;1), the other
// half (;2) runs the dialplan into Stasis(ivr-pin), and the driver watches
// that half's playbacks and dialplan steps through an application
// subscription. This is how ../shared/ari-fixtures were recorded.
type Driver struct {
	a   *Asterisk
	app string
	ws  *websocket.Conn

	mu    sync.Mutex
	calls map[string]*LocalCall // by the watched (;2) channel id
}

// NewDriver connects a driver application to a.
func (a *Asterisk) NewDriver(t testing.TB) *Driver {
	t.Helper()
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	d := &Driver{a: a, app: "driver-" + hex.EncodeToString(id), calls: map[string]*LocalCall{}}
	u := a.WSURL + "?app=" + url.QueryEscape(d.app) + "&subscribeAll=false"
	cfg, err := websocket.NewConfig(u, "http://localhost")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Authorization", "Basic "+basic(ARIUser, a.ARIPassword))
	if d.ws, err = websocket.DialConfig(cfg); err != nil {
		t.Fatalf("driver websocket: %v", err)
	}
	go d.read()
	t.Cleanup(func() {
		// Hang up whatever a failed test left, then disconnect.
		d.mu.Lock()
		var left []*LocalCall
		for id, c := range d.calls {
			if id == c.Caller {
				left = append(left, c)
			}
		}
		d.mu.Unlock()
		for _, c := range left {
			c.Hangup()
		}
		d.ws.Close()
	})
	return d
}

// Event is what the driver keeps of an ARI event.
type Event struct {
	Type     string `json:"type"`
	Digit    string `json:"digit"`
	Playback struct {
		MediaURI  string `json:"media_uri"`
		TargetURI string `json:"target_uri"`
		State     string `json:"state"`
	} `json:"playback"`
	Channel struct {
		ID       string `json:"id"`
		Dialplan struct {
			Context string `json:"context"`
			Exten   string `json:"exten"`
		} `json:"dialplan"`
	} `json:"channel"`
	DialplanApp     string `json:"dialplan_app"`
	DialplanAppData string `json:"dialplan_app_data"`
	Application     string `json:"application"`
	At              time.Time
}

func (d *Driver) read() {
	for {
		var raw []byte
		if err := websocket.Message.Receive(d.ws, &raw); err != nil {
			d.mu.Lock()
			for _, c := range d.calls {
				c.mu.Lock()
				if !c.closed {
					c.closed = true
					close(c.changed)
				}
				c.mu.Unlock()
			}
			d.mu.Unlock()
			return
		}
		var ev Event
		if json.Unmarshal(raw, &ev) != nil {
			continue
		}
		ev.At = time.Now()
		id := ev.Channel.ID
		if t, ok := strings.CutPrefix(ev.Playback.TargetURI, "channel:"); ok {
			id = t
		}
		d.mu.Lock()
		c := d.calls[id]
		d.mu.Unlock()
		if c != nil {
			c.add(ev)
		}
	}
}

// LocalCall is one call placed by the driver.
type LocalCall struct {
	d *Driver
	// Caller is the caller's half (;1); ID is the half in the dialplan and
	// in Stasis(ivr-pin) (;2).
	Caller, ID string

	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced on every event
	closed  bool          // the driver's websocket is gone: no more events
}

func (c *LocalCall) add(ev Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.events = append(c.events, ev)
	close(c.changed)
	c.changed = make(chan struct{})
}

// CallOptions shape a call.
type CallOptions struct {
	Context, Exten string            // where the call enters the dialplan (default from-tester, 1000)
	CallerID       string            // caller id number (default 15551230001)
	Variables      map[string]string // channel variables set on the dialplan half
}

// Call places a call and starts watching it. Both halves are created and
// watched before the call is dialled, so no event is missed.
func (d *Driver) Call(t testing.TB, opts CallOptions) *LocalCall {
	t.Helper()
	if opts.Context == "" {
		opts.Context, opts.Exten = "from-tester", "1000"
	}
	opts.CallerID = cmp.Or(opts.CallerID, "15551230001")
	id := make([]byte, 6)
	_, _ = rand.Read(id)
	c := &LocalCall{d: d, Caller: "caller-" + hex.EncodeToString(id), ID: "line-" + hex.EncodeToString(id), changed: make(chan struct{})}
	d.mu.Lock()
	d.calls[c.ID] = c
	d.calls[c.Caller] = c
	d.mu.Unlock()
	q := url.Values{"endpoint": {"Local/" + opts.Exten + "@" + opts.Context}, "app": {d.app},
		"channelId": {c.Caller}, "otherChannelId": {c.ID}}
	if code, b, err := d.a.Do(http.MethodPost, "/channels/create?"+q.Encode(), nil); err != nil || code != http.StatusOK {
		t.Fatalf("create the call: %d %s %v", code, b, err)
	}
	sub := url.Values{"eventSource": {"channel:" + c.ID}}
	if code, b, err := d.a.Do(http.MethodPost, "/applications/"+d.app+"/subscription?"+sub.Encode(), nil); err != nil || code != http.StatusOK {
		t.Fatalf("watch the call: %d %s %v", code, b, err)
	}
	// Created is not yet in the app: wait for the caller's half to enter it
	// (ARI refuses variables on a channel outside Stasis).
	if err := c.wait(10*time.Second, "the caller's half entering the driver app", func(evs []Event) bool {
		for _, ev := range evs {
			if ev.Type == "StasisStart" && ev.Channel.ID == c.Caller {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	// The caller's half carries the caller id and whatever an agent's
	// desktop would set (IVRPIN_* transfer variables), set over ARI, never
	// in the dialplan where Asterisk's verbose log would show them. A Local
	// channel hands both to its other half when dialled (variables with a
	// leading '_' are inherited without it).
	vars := map[string]string{"CALLERID(num)": opts.CallerID}
	for k, v := range opts.Variables {
		vars["_"+k] = v
	}
	for k, v := range vars {
		q := url.Values{"variable": {k}, "value": {v}}
		if code, b, err := d.a.Do(http.MethodPost, "/channels/"+c.Caller+"/variable?"+q.Encode(), nil); err != nil || code != http.StatusNoContent {
			t.Fatalf("set %s: %d %s %v", k, code, b, err)
		}
	}
	if code, b, err := d.a.Do(http.MethodPost, "/channels/"+c.Caller+"/dial?timeout=30", nil); err != nil || code != http.StatusNoContent {
		t.Fatalf("dial: %d %s %v", code, b, err)
	}
	return c
}

// Events returns what was seen so far.
func (c *LocalCall) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// wait returns when cond holds over the events, or fails after timeout.
func (c *LocalCall) wait(timeout time.Duration, what string, cond func([]Event) bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, closed := cond(c.events), c.closed
		ch := c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		if closed {
			return fmt.Errorf("%s: the driver lost its connection to Asterisk (played %v)", what, c.Played())
		}
		select {
		case <-ch:
		case <-deadline.C:
			return fmt.Errorf("%s: not within %s (played %v)", what, timeout, c.Played())
		}
	}
}

// Played lists the media of every playback started on the line's half.
func (c *LocalCall) Played() []string {
	var out []string
	for _, ev := range c.Events() {
		if ev.Type == "PlaybackStarted" {
			out = append(out, ev.Playback.MediaURI)
		}
	}
	return out
}

// WaitPlayed waits until a playback whose media contains media has started n
// times in all.
func (c *LocalCall) WaitPlayed(media string, n int, timeout time.Duration) error {
	return c.wait(timeout, "play "+media, func(evs []Event) bool {
		seen := 0
		for _, ev := range evs {
			if ev.Type == "PlaybackStarted" && strings.Contains(ev.Playback.MediaURI, media) {
				seen++
			}
		}
		return seen >= n
	})
}

// Press sends keys from the caller's side as RFC 2833-style DTMF (100 ms
// tone, 80 ms gap), as a keypad does.
func (c *LocalCall) Press(keys string) error {
	q := url.Values{"dtmf": {keys}, "duration": {"100"}, "between": {"80"}}
	code, b, err := c.d.a.Do(http.MethodPost, "/channels/"+c.Caller+"/dtmf?"+q.Encode(), nil)
	if err != nil || code != http.StatusNoContent {
		return fmt.Errorf("dtmf %d %s %v", code, b, err)
	}
	return nil
}

// Hangup hangs the caller up.
func (c *LocalCall) Hangup() {
	_, _, _ = c.d.a.Do(http.MethodDelete, "/channels/"+c.Caller, nil)
}

// WaitLeftStasis waits until the line's half left Stasis(ivr-pin) (hung up
// or continued in the dialplan).
func (c *LocalCall) WaitLeftStasis(timeout time.Duration) error {
	return c.wait(timeout, "leave Stasis", func(evs []Event) bool {
		for _, ev := range evs {
			if ev.Channel.ID == c.ID && (ev.Type == "StasisEnd" && ev.Application != c.d.app || ev.Type == "ChannelDestroyed") {
				return true
			}
		}
		return false
	})
}

// WaitGone waits until the line's half is destroyed.
func (c *LocalCall) WaitGone(timeout time.Duration) error {
	return c.wait(timeout, "hang up", func(evs []Event) bool {
		for _, ev := range evs {
			if ev.Type == "ChannelDestroyed" && ev.Channel.ID == c.ID {
				return true
			}
		}
		return false
	})
}

// WaitDialplan waits until the line's half runs app in context/exten (for
// a call sent back to the dialplan: an agent, a return to the agent).
func (c *LocalCall) WaitDialplan(context, exten, app string, timeout time.Duration) error {
	return c.wait(timeout, "reach "+exten+"@"+context+" "+app, func(evs []Event) bool {
		for _, ev := range evs {
			if ev.Type == "ChannelDialplan" && ev.Channel.Dialplan.Context == context && ev.Channel.Dialplan.Exten == exten &&
				(app == "" || ev.DialplanApp == app) {
				return true
			}
		}
		return false
	})
}

// Channels lists the channels Asterisk still has.
func (a *Asterisk) Channels() ([]string, error) {
	code, b, err := a.Get("/channels")
	if err != nil || code != http.StatusOK {
		return nil, errors.Join(err, fmt.Errorf("GET /channels: %d", code))
	}
	var chans []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &chans); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(chans))
	for _, c := range chans {
		names = append(names, c.Name)
	}
	return names, nil
}

// WaitNoChannels waits until Asterisk has no channel left.
func (a *Asterisk) WaitNoChannels(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		names, err := a.Channels()
		if err == nil && len(names) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("channels left behind: %v %v", names, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}
