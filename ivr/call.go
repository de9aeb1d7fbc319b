package ivr

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/CyCoreSystems/ari/v5/rid"
	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/ivr/keypad"
)

// Arrival says how a call reached the handler.
type Arrival int

const (
	// Fresh: the call entered the application (StasisStart).
	Fresh Arrival = iota
	// DuringDrain: the call arrived while the server drains; the handler
	// should turn it away politely.
	DuringDrain
	// Unclaimed: the call was found in the application after a reconnect
	// and nobody ran its handler; the handler should end it politely.
	Unclaimed
)

func (a Arrival) String() string {
	switch a {
	case DuringDrain:
		return "during_drain"
	case Unclaimed:
		return "unclaimed"
	}
	return "fresh"
}

// Call is one channel in the application. Its context ends when the caller
// hangs up, the channel leaves the application, the call deadline passes
// or the drain deadline ends it. Keys pressed at any moment (during a
// prompt, between prompts) are kept for the next Collect.
type Call struct {
	// ID is the channel's unique id; Name its name (PJSIP/...).
	ID, Name string
	// CallerID is the caller id number ("" when the channel has none).
	CallerID string
	// Application is the Stasis application the call entered (for an
	// outbound per-call websocket, "<app>:<channel name>").
	Application string
	// Args are the Stasis() arguments.
	Args    []string
	Arrival Arrival
	Start   time.Time
	Log     *logrus.Entry

	ctx    context.Context
	cancel context.CancelFunc
	rest   rest
	kp     *keypad.Keypad

	mu      sync.Mutex
	waiters map[string]chan string // playback id -> final state
	gone    bool                   // the channel left the application
	left    bool                   // we hung it up or sent it back to the dialplan
	forced  atomic.Bool            // the drain deadline, not the caller, ended the call
}

func newCall(ctx context.Context, cancel context.CancelFunc, r rest, id string, log *logrus.Entry) *Call {
	return &Call{ID: id, Start: time.Now(), Log: log, ctx: ctx, cancel: cancel, rest: r, kp: keypad.New(),
		waiters: map[string]chan string{}}
}

// Context ends at hang-up (or at the call or drain deadline).
func (c *Call) Context() context.Context { return c.ctx }

// Forced reports whether the drain deadline, not the caller, ended the call.
func (c *Call) Forced() bool { return c.forced.Load() }

// Gone reports whether the channel has left the application.
func (c *Call) Gone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

func (c *Call) path(parts ...string) string {
	return "channels/" + url.PathEscape(c.ID) + strings.Join(parts, "")
}

// deliver takes one event for this channel. It must not block: it runs on
// the transport's reader.
func (c *Call) deliver(ev ari.Event) {
	switch e := ev.(type) {
	case *ari.ChannelDtmfReceived:
		if len(e.Digit) == 1 {
			c.kp.Press(e.Digit[0])
		}
	case *ari.PlaybackFinished:
		c.mu.Lock()
		w := c.waiters[e.Playback.ID]
		delete(c.waiters, e.Playback.ID)
		c.mu.Unlock()
		if w != nil {
			w <- e.Playback.State
		}
	case *ari.ChannelHangupRequest, *ari.StasisEnd, *ari.ChannelDestroyed:
		c.hungUp()
	}
}

// hungUp ends the call: the keypad wipes typed-ahead digits and every wait
// returns.
func (c *Call) hungUp() {
	c.mu.Lock()
	c.gone = true
	c.mu.Unlock()
	c.kp.HangUp()
	c.cancel()
}

// restErr turns a REST failure into keypad.ErrHungUp when the channel is
// gone (404), which is how Asterisk reports a caller who already hung up.
func (c *Call) restErr(err error) error {
	if err == nil {
		return nil
	}
	if StatusOf(err) == 404 || c.Gone() {
		c.hungUp()
		return keypad.ErrHungUp
	}
	return err
}

// Answer answers the channel.
func (c *Call) Answer(ctx context.Context) error {
	return c.restErr(c.rest.do(ctx, "POST", c.path("/answer"), nil, nil))
}

// Play plays media URIs (sound:, digits:, ...) in order; a key press stops
// the current one (barge-in) and stays typed ahead for the next Collect.
func (c *Call) Play(ctx context.Context, media ...string) error {
	return c.playAll(ctx, media, true)
}

// Say plays media URIs to the end whatever is pressed (typed-ahead keys are
// dropped first); only a hang-up stops it.
func (c *Call) Say(ctx context.Context, media ...string) error {
	c.kp.Flush()
	return c.playAll(ctx, media, false)
}

func (c *Call) playAll(ctx context.Context, media []string, bargeIn bool) error {
	for _, m := range media {
		var changed <-chan struct{} // nil: never ready (no barge-in)
		if bargeIn {
			changed = c.kp.Changed()
			if c.kp.Pending() {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		id, done, err := c.startPlayback(ctx, m)
		if err != nil {
			return err
		}
		select {
		case <-done:
		case <-changed:
			c.stopPlayback(id, done)
			if c.Gone() {
				return keypad.ErrHungUp
			}
			return nil
		case <-ctx.Done():
			c.forget(id)
			return ctx.Err()
		}
	}
	return nil
}

// startPlayback begins one playback, registering the waiter its
// PlaybackFinished will wake before asking (the event can beat the answer).
func (c *Call) startPlayback(ctx context.Context, media string) (string, chan string, error) {
	id := rid.New(rid.Playback)
	done := make(chan string, 1)
	c.mu.Lock()
	c.waiters[id] = done
	c.mu.Unlock()
	if err := c.rest.do(ctx, "POST", c.path("/play/", id), url.Values{"media": {media}}, nil); err != nil {
		c.forget(id)
		return "", nil, c.restErr(err)
	}
	return id, done, nil
}

func (c *Call) forget(id string) {
	c.mu.Lock()
	delete(c.waiters, id)
	c.mu.Unlock()
}

// stopPlayback ends a playback early and waits (bounded) for Asterisk to
// confirm, so the next prompt does not queue behind it.
func (c *Call) stopPlayback(id string, done chan string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 2*time.Second)
	defer cancel()
	if err := c.rest.do(ctx, "DELETE", "playbacks/"+url.PathEscape(id), nil, nil); err != nil {
		c.forget(id)
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
		c.forget(id)
	}
}

// Collect reads one entry from the keypad.
func (c *Call) Collect(ctx context.Context, spec keypad.Spec) (keypad.Entry, error) {
	return c.kp.Collect(ctx, spec)
}

// Flush drops typed-ahead keys.
func (c *Call) Flush() { c.kp.Flush() }

// SetVariable sets a channel variable (CHANNEL(language) switches the
// sound folder prompts play from).
func (c *Call) SetVariable(ctx context.Context, name, value string) error {
	return c.restErr(c.rest.do(ctx, "POST", c.path("/variable"), url.Values{"variable": {name}, "value": {value}}, nil))
}

// Variable reads a channel variable; a variable that is not set is "" and
// no error.
func (c *Call) Variable(ctx context.Context, name string) (string, error) {
	var v struct {
		Value string `json:"value"`
	}
	err := c.rest.do(ctx, "GET", c.path("/variable"), url.Values{"variable": {name}}, &v)
	if StatusOf(err) == 404 && !c.Gone() {
		return "", nil
	}
	return v.Value, err
}

// Continue sends the channel back to the dialplan.
func (c *Call) Continue(ctx context.Context, dialContext, extension string, priority int) error {
	q := url.Values{"context": {dialContext}, "extension": {extension}, "priority": {strconv.Itoa(priority)}}
	// Not cancelled with the call: the StasisEnd this causes can arrive
	// before the answer and must not abort the request that caused it.
	ctx = context.WithoutCancel(ctx)
	if err := c.restErr(c.rest.do(ctx, "POST", c.path("/continue"), q, nil)); err != nil {
		return err
	}
	c.mu.Lock()
	c.left = true
	c.mu.Unlock()
	return nil
}

// Hangup ends the call.
func (c *Call) Hangup(ctx context.Context) error {
	c.mu.Lock()
	done := c.gone || c.left
	c.mu.Unlock()
	if done {
		return nil
	}
	// Not cancelled with the call (see Continue); the REST deadline bounds it.
	err := c.rest.do(context.WithoutCancel(ctx), "DELETE", c.path(), nil, nil)
	if err == nil || StatusOf(err) == 404 {
		c.mu.Lock()
		c.left = true
		c.mu.Unlock()
		return nil
	}
	return err
}

// ended reports whether the call still needs hanging up.
func (c *Call) ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone || c.left
}
