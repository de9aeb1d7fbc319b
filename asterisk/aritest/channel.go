package aritest

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// CallOptions describe a call placed into the app.
type CallOptions struct {
	App          string            // default "ivr-pin"
	Args         []string          // Stasis() arguments
	CallerNumber string            // default "15551230001"
	CallerName   string            // default "Test Caller"
	Variables    map[string]string // channel variables set before Stasis()
	Context      string            // dialplan context (default "ivr-inbound")
	Exten        string            // default "s"
	Language     string            // default "en"
}

// Target is where a channel was continued to.
type Target struct {
	Context, Extension string
	Priority           int
	Label              string
}

type endReason string

const (
	endAppHangup    endReason = "app-hangup"
	endCallerHangup endReason = "caller-hangup"
	endContinue     endReason = "continue"
	endVanished     endReason = "vanished"
)

// Channel is one call in the server.
type Channel struct {
	ID, Name, App string
	Args          []string
	s             *Server
	opts          CallOptions
	created       time.Time

	mu         sync.Mutex
	state      string
	vars       map[string]string
	lang       string
	played     []string
	queue      []*playback
	current    *playback
	running    bool
	ended      endReason
	ending     bool // end is under way (two ends can race: a hang-up and a lost websocket)
	continued  *Target
	subscribed bool
	// answered is how many playbacks had started when PressWhenAsked last
	// typed: the next answer waits for a question after them.
	answered int
	changed  chan struct{}
	done     chan struct{}
}

// Snapshot is a channel's state at one moment.
type Snapshot struct {
	Played    []string // media URIs, in the order their playback started
	Playing   bool     // a prompt is playing now
	State     string
	Language  string
	Ended     bool
	EndReason string // app-hangup, caller-hangup, continue, vanished
	Continued *Target
}

// PlaceCall puts a new call into Stasis for opts.App and sends StasisStart.
func (s *Server) PlaceCall(opts CallOptions) (*Channel, error) {
	opts.App = cmp.Or(opts.App, "ivr-pin")
	opts.CallerNumber = cmp.Or(opts.CallerNumber, "15551230001")
	opts.CallerName = cmp.Or(opts.CallerName, "Test Caller")
	opts.Context = cmp.Or(opts.Context, "ivr-inbound")
	opts.Exten = cmp.Or(opts.Exten, "s")
	opts.Language = cmp.Or(opts.Language, "en")
	if opts.Args == nil {
		opts.Args = []string{}
	}
	out := s.outboundTarget()
	if out == nil && !s.Connected(opts.App) {
		return nil, ErrNoApp
	}
	n := s.seq.Add(1)
	ch := &Channel{
		ID: fmt.Sprintf("%d.%d", time.Now().Unix(), n), Name: fmt.Sprintf("PJSIP/softphone-%08x", n),
		App: opts.App, Args: opts.Args, s: s, opts: opts, created: time.Now(), state: "Ring",
		vars: map[string]string{}, lang: opts.Language, changed: make(chan struct{}), done: make(chan struct{}),
	}
	for k, v := range opts.Variables {
		ch.vars[k] = v
	}
	ch.vars["CALLERID(num)"] = opts.CallerNumber
	ch.vars["CALLERID(name)"] = opts.CallerName
	if out != nil {
		if err := s.placeOutbound(out, ch); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	s.chans[ch.ID] = ch
	s.mu.Unlock()
	s.emit(ch.App, map[string]any{"type": "StasisStart", "args": opts.Args, "channel": ch.json()})
	return ch, nil
}

func (ch *Channel) json() map[string]any {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	appData := ch.App
	if len(ch.Args) > 0 {
		appData += "," + strings.Join(ch.Args, ",")
	}
	return map[string]any{
		"id": ch.ID, "name": ch.Name, "state": ch.state, "protocol_id": "",
		"caller":      map[string]string{"name": ch.opts.CallerName, "number": ch.opts.CallerNumber},
		"connected":   map[string]string{"name": "", "number": ""},
		"accountcode": "",
		"dialplan": map[string]any{"context": ch.opts.Context, "exten": ch.opts.Exten, "priority": 2,
			"app_name": "Stasis", "app_data": appData},
		"creationtime": stamp(ch.created),
		"language":     ch.lang,
	}
}

func (ch *Channel) notify() {
	close(ch.changed)
	ch.changed = make(chan struct{})
}

func (ch *Channel) inStasis() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.ended == ""
}

// Snapshot returns the channel's state now.
func (ch *Channel) Snapshot() Snapshot {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.snapshotLocked()
}

func (ch *Channel) snapshotLocked() Snapshot {
	return Snapshot{Played: append([]string(nil), ch.played...), Playing: ch.current != nil, State: ch.state, Language: ch.lang,
		Ended: ch.ended != "", EndReason: string(ch.ended), Continued: ch.continued}
}

// ErrTimeout is returned by the waits when their condition did not hold in
// time.
var ErrTimeout = errors.New("timed out waiting for the channel")

// WaitUntil waits (bounded) until cond holds for the channel's state.
func (ch *Channel) WaitUntil(timeout time.Duration, cond func(Snapshot) bool) (Snapshot, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ch.mu.Lock()
		snap := ch.snapshotLocked()
		wait := ch.changed
		ch.mu.Unlock()
		if cond(snap) {
			return snap, nil
		}
		select {
		case <-wait:
		case <-deadline.C:
			return snap, ErrTimeout
		}
	}
}

// WaitPlayed waits until a playback of a media URI containing media has
// started at least n times.
func (ch *Channel) WaitPlayed(timeout time.Duration, media string, n int) error {
	// A call that ended will play nothing more: no need to wait on.
	snap, err := ch.WaitUntil(timeout, func(s Snapshot) bool { return Count(s.Played, media) >= n || s.Ended })
	if err == nil && Count(snap.Played, media) < n {
		err = errors.New("the call ended")
	}
	if err != nil {
		return fmt.Errorf("waiting %s for %s to start (%d times): %w (it started %d times; ended %v; played %v)",
			timeout, media, n, err, Count(snap.Played, media), snap.Ended, snap.Played)
	}
	return nil
}

// WaitEnded waits until the channel left Stasis.
func (ch *Channel) WaitEnded(timeout time.Duration) (Snapshot, error) {
	snap, err := ch.WaitUntil(timeout, func(s Snapshot) bool { return s.Ended })
	if err != nil {
		return snap, fmt.Errorf("waiting %s for the call to end: %w (played %v)", timeout, err, snap.Played)
	}
	return snap, nil
}

// Done is closed when the channel leaves Stasis.
func (ch *Channel) Done() <-chan struct{} { return ch.done }

// Count counts the media URIs containing media.
func Count(played []string, media string) int {
	n := 0
	for _, p := range played {
		if strings.Contains(p, media) {
			n++
		}
	}
	return n
}

// Press sends digits as ChannelDtmfReceived events, gap apart, as a caller
// pressing keys does. It stops with an error if the call has ended.
func (ch *Channel) Press(digits string, gap time.Duration) error {
	for i := 0; i < len(digits); i++ {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		if !ch.inStasis() {
			return errors.New("call has ended")
		}
		ch.s.emit(ch.App, map[string]any{"type": "ChannelDtmfReceived", "digit": string(digits[i]), "duration_ms": 120, "channel": ch.json()})
	}
	return nil
}

// Hangup is the caller hanging up: ChannelHangupRequest (cause 16), the
// current playback finishes "failed", then StasisEnd.
func (ch *Channel) Hangup() { ch.end(endCallerHangup, 16, nil) }

func (ch *Channel) answer() {
	ch.mu.Lock()
	if ch.state == "Up" {
		ch.mu.Unlock()
		return
	}
	ch.state = "Up"
	ch.notify()
	ch.mu.Unlock()
	ch.s.emit(ch.App, map[string]any{"type": "ChannelStateChange", "channel": ch.json()})
}

// Variable is a channel variable as Asterisk would answer it ("" when
// not set).
func (ch *Channel) Variable(name string) (string, bool) { return ch.variable(name) }

func (ch *Channel) variable(name string) (string, bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if name == "CHANNEL(language)" {
		return ch.lang, true
	}
	v, ok := ch.vars[name]
	return v, ok
}

func (ch *Channel) setVariable(name, value string) {
	ch.mu.Lock()
	if name == "CHANNEL(language)" {
		ch.lang = value
	} else {
		ch.vars[name] = value
	}
	ch.notify()
	ch.mu.Unlock()
	ch.s.emit(ch.App, map[string]any{"type": "ChannelVarset", "variable": name, "value": value, "channel": ch.json()})
}

// end takes the channel out of Stasis with the events Asterisk sends.
func (ch *Channel) end(why endReason, cause int, t *Target) {
	ch.mu.Lock()
	if ch.ended != "" || ch.ending {
		ch.mu.Unlock()
		return
	}
	ch.ending = true
	doc := ch.json
	cur := ch.current
	queued := ch.queue
	ch.queue = nil
	subscribed := ch.subscribed
	ch.mu.Unlock()

	if why == endAppHangup || why == endCallerHangup {
		ch.s.emit(ch.App, map[string]any{"type": "ChannelHangupRequest", "cause": cause, "soft": why == endAppHangup, "channel": doc()})
	}
	finish := "failed"
	if why == endContinue {
		finish = "done"
	}
	if cur != nil {
		cur.finish(finish)
	}
	for _, pb := range queued {
		ch.s.forget(pb)
	}
	ch.mu.Lock()
	ch.ended = why
	ch.continued = t
	ch.notify()
	close(ch.done)
	ch.mu.Unlock()
	ch.s.emit(ch.App, map[string]any{"type": "StasisEnd", "channel": doc()})
	if subscribed && why != endContinue {
		ch.s.emit(ch.App, map[string]any{"type": "ChannelDestroyed", "cause": cause, "cause_txt": causeText(cause), "channel": doc()})
	}
	if why != endContinue {
		ch.s.mu.Lock()
		delete(ch.s.chans, ch.ID)
		ch.s.mu.Unlock()
	}
	ch.s.closePerCall(ch)
}

// vanish ends the channel without events (the server went away).
func (ch *Channel) vanish() {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.ended == "" && !ch.ending {
		ch.ended = endVanished
		if ch.current != nil {
			ch.current.abort()
		}
		ch.notify()
		close(ch.done)
	}
}

func causeText(c int) string {
	switch c {
	case 16:
		return "Normal Clearing"
	case 32:
		return "Normal Clearing"
	}
	return "Unknown"
}

// ---- playbacks ----

type playback struct {
	ID, Media, Lang string
	ch              *Channel
	mu              sync.Mutex
	state           string // queued, playing, done, failed
	stopCh          chan struct{}
	stopped         bool
}

func (pb *playback) json(state string) map[string]any {
	return map[string]any{"id": pb.ID, "media_uri": pb.Media, "target_uri": "channel:" + pb.ch.ID, "language": pb.Lang, "state": state}
}

func (pb *playback) stateNow() string {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	return pb.state
}

// stop is DELETE /playbacks/{id}: the playback ends early; Asterisk still
// reports it "done".
func (pb *playback) stop() {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if !pb.stopped {
		pb.stopped = true
		close(pb.stopCh)
	}
}

func (pb *playback) abort() { pb.stop() }

// finish reports the end of the playback once.
func (pb *playback) finish(state string) {
	pb.mu.Lock()
	if pb.state == "done" || pb.state == "failed" {
		pb.mu.Unlock()
		return
	}
	pb.state = state
	pb.mu.Unlock()
	pb.stop()
	pb.ch.s.emit(pb.ch.App, map[string]any{"type": "PlaybackFinished", "playback": pb.json(state)})
	pb.ch.s.forget(pb)
}

func (s *Server) forget(pb *playback) {
	s.mu.Lock()
	delete(s.pbs, pb.ID)
	s.mu.Unlock()
}

func (ch *Channel) queuePlayback(id, media, lang string) *playback {
	if lang == "" {
		ch.mu.Lock()
		lang = ch.lang
		ch.mu.Unlock()
	}
	pb := &playback{ID: id, Media: media, Lang: lang, ch: ch, state: "queued", stopCh: make(chan struct{})}
	ch.s.mu.Lock()
	ch.s.pbs[id] = pb
	ch.s.mu.Unlock()
	ch.mu.Lock()
	ch.queue = append(ch.queue, pb)
	start := !ch.running
	ch.running = true
	ch.mu.Unlock()
	if start {
		go ch.runPlaybacks()
	}
	return pb
}

// runPlaybacks plays the channel's queue in order, as Asterisk does.
func (ch *Channel) runPlaybacks() {
	for {
		ch.mu.Lock()
		if len(ch.queue) == 0 || ch.ended != "" {
			ch.running = false
			ch.current = nil
			ch.mu.Unlock()
			return
		}
		pb := ch.queue[0]
		ch.queue = ch.queue[1:]
		ch.current = pb
		ch.played = append(ch.played, pb.Media)
		ch.notify()
		ch.mu.Unlock()
		pb.mu.Lock()
		stopped := pb.stopped
		pb.state = "playing"
		pb.mu.Unlock()
		if stopped {
			pb.finish("done")
			continue
		}
		ch.s.emit(ch.App, map[string]any{"type": "PlaybackStarted", "playback": pb.json("playing")})
		if ch.s.opts.OnPlay != nil {
			ch.s.opts.OnPlay(ch, pb.Media)
		}
		if name, ok := strings.CutPrefix(pb.Media, "sound:"); ok && !ch.s.opts.SoundExists(name) {
			pb.finish("failed")
			ch.mu.Lock()
			ch.current = nil
			ch.notify()
			ch.mu.Unlock()
			continue
		}
		d := time.Duration(float64(ch.s.opts.Duration(pb.Media)) * ch.s.opts.PlaybackScale)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-pb.stopCh:
		}
		t.Stop()
		if ch.inStasis() {
			pb.finish("done")
		}
		ch.mu.Lock()
		ch.current = nil
		ch.notify()
		ch.mu.Unlock()
	}
}

// PressWhenAsked is a caller who listens before typing: it waits until
// the line puts a question (a playback for which asks is true starts) after
// the keys this method last typed, then, when quiet is positive, until the
// line is quiet for quiet (the rest of the question played), then types
// keys gap apart. Keys
// typed while the line is between questions (waiting for a host, saying
// why it asks again) can be dropped by the line; keys typed once it has
// asked never are. The error says what was awaited when the call ended or
// timeout passed.
func (ch *Channel) PressWhenAsked(keys string, asks func(media string) bool, quiet, gap, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	ch.mu.Lock()
	from := ch.answered
	ch.mu.Unlock()
	snap, err := ch.WaitUntil(timeout, func(s Snapshot) bool {
		if s.Ended {
			return true
		}
		for _, m := range s.Played[min(from, len(s.Played)):] {
			if asks(m) {
				return true
			}
		}
		return false
	})
	if err != nil || snap.Ended {
		return fmt.Errorf("waiting for a question before typing %d keys: %s (played %v)", len(keys), endOrTimeout(snap, err), snap.Played[min(from, len(snap.Played)):])
	}
	if quiet <= 0 {
		// Typed as the question starts: it stops the question and answers it.
	} else if err := ch.WaitQuiet(quiet, time.Until(deadline)); err != nil {
		snap := ch.Snapshot()
		return fmt.Errorf("waiting for the question to end before typing %d keys: %s (played %v)", len(keys), endOrTimeout(snap, err), snap.Played[min(from, len(snap.Played)):])
	}
	ch.mu.Lock()
	ch.answered = len(ch.played)
	ch.mu.Unlock()
	return ch.Press(keys, gap)
}

// PressEachWhenAsked types each group of keys as soon as the line asks
// for it (PressWhenAsked with no quiet and no gap: the keys stop the
// question and answer it, before any first-digit timeout can start), as a
// caller who knows the way does. It stops at the first group the line did
// not ask for within timeout, saying so.
func (ch *Channel) PressEachWhenAsked(asks func(media string) bool, timeout time.Duration, groups ...string) error {
	for _, g := range groups {
		if err := ch.PressWhenAsked(g, asks, 0, 0, timeout); err != nil {
			return err
		}
	}
	return nil
}

// endOrTimeout says why a wait ended without its condition.
func endOrTimeout(s Snapshot, err error) string {
	if s.Ended {
		return "the call ended (" + s.EndReason + ")"
	}
	if err != nil {
		return err.Error()
	}
	return "timed out"
}

// WaitQuiet waits until no prompt is playing and none has started for d:
// the line is waiting for the caller. It fails when the call ends.
func (ch *Channel) WaitQuiet(d, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		before := ch.Snapshot()
		if before.Ended {
			return errors.New("call has ended")
		}
		snap, err := ch.WaitUntil(d, func(s Snapshot) bool {
			return s.Ended || len(s.Played) != len(before.Played) || s.Playing != before.Playing
		})
		if err == ErrTimeout && !snap.Playing {
			return nil
		}
	}
	return ErrTimeout
}
