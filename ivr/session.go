package ivr

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/CyCoreSystems/ari/v5/client/native"
	"github.com/CyCoreSystems/ari/v5/rid"
	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/ivr/keypad"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// Session is one call: it implements flows.Caller over an ARI channel
// handle. Events for its channel arrive through deliver, which never blocks:
// digits go to the keypad, playback ends to their waiters, a hang-up cancels
// the call's context.
type Session struct {
	ch     *ari.ChannelHandle
	client ari.Client
	kp     *keypad.Keypad
	log    *logrus.Entry
	cancel context.CancelFunc

	mu      sync.Mutex
	waiters map[string]chan string // playback id -> final state
	gone    bool                   // the channel left Stasis
	// forced is set when the drain deadline, not the caller, ended the call.
	forced atomic.Bool
}

func newSession(client ari.Client, key *ari.Key, cancel context.CancelFunc, log *logrus.Entry) *Session {
	return &Session{
		ch: client.Channel().Get(key), client: client, kp: keypad.New(), log: log, cancel: cancel,
		waiters: map[string]chan string{},
	}
}

// deliver takes one event for this channel. It must not block: it runs on
// the event reader.
func (s *Session) deliver(ev ari.Event) {
	switch e := ev.(type) {
	case *ari.ChannelDtmfReceived:
		if len(e.Digit) == 1 {
			s.kp.Press(e.Digit[0])
		}
	case *ari.PlaybackFinished:
		s.mu.Lock()
		w := s.waiters[e.Playback.ID]
		delete(s.waiters, e.Playback.ID)
		s.mu.Unlock()
		if w != nil {
			w <- e.Playback.State
		}
	case *ari.ChannelHangupRequest, *ari.StasisEnd, *ari.ChannelDestroyed:
		s.hungUp()
	}
}

// hungUp ends the call: the keypad wipes typed-ahead digits and every wait
// returns.
func (s *Session) hungUp() {
	s.mu.Lock()
	s.gone = true
	s.mu.Unlock()
	s.kp.HangUp()
	s.cancel()
}

func (s *Session) isGone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gone
}

// restErr turns a REST failure into ErrHungUp when the channel is gone
// (404), which is how Asterisk reports a caller who already hung up.
func (s *Session) restErr(err error) error {
	if err == nil {
		return nil
	}
	if native.CodeFromError(err) == 404 || s.isGone() {
		s.hungUp()
		return keypad.ErrHungUp
	}
	return err
}

// Play implements flows.Caller: items play one after another; a key press
// stops the current one (barge-in) and leaves the key typed ahead.
func (s *Session) Play(ctx context.Context, items ...prompts.Item) error {
	for _, it := range items {
		changed := s.kp.Changed()
		if s.kp.Pending() {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		id, done, err := s.start(it)
		if err != nil {
			return err
		}
		select {
		case <-done:
		case <-changed:
			s.stop(id, done)
			if s.isGone() {
				return keypad.ErrHungUp
			}
			return nil
		case <-ctx.Done():
			s.forget(id)
			return ctx.Err()
		}
	}
	return nil
}

// Say implements flows.Caller: typed-ahead keys are dropped and each item
// plays to the end; only a hang-up stops it.
func (s *Session) Say(ctx context.Context, items ...prompts.Item) error {
	s.kp.Flush()
	for _, it := range items {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		id, done, err := s.start(it)
		if err != nil {
			return err
		}
		select {
		case <-done:
		case <-ctx.Done():
			s.forget(id)
			return ctx.Err()
		}
	}
	return nil
}

// start begins one playback and registers the waiter its PlaybackFinished
// will wake.
func (s *Session) start(it prompts.Item) (string, chan string, error) {
	id := rid.New(rid.Playback)
	done := make(chan string, 1)
	s.mu.Lock()
	s.waiters[id] = done
	s.mu.Unlock()
	if _, err := s.ch.Play(id, it.MediaURI()); err != nil {
		s.forget(id)
		return "", nil, s.restErr(err)
	}
	return id, done, nil
}

func (s *Session) forget(id string) {
	s.mu.Lock()
	delete(s.waiters, id)
	s.mu.Unlock()
}

// stop ends a playback early and waits (bounded) for Asterisk to confirm, so
// the next prompt does not queue behind it.
func (s *Session) stop(id string, done chan string) {
	if err := s.client.Playback().Stop(ari.NewKey(ari.PlaybackKey, id)); err != nil {
		s.forget(id)
		return
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		s.forget(id)
	}
}

// Collect implements flows.Caller.
func (s *Session) Collect(ctx context.Context, spec keypad.Spec) (keypad.Entry, error) {
	return s.kp.Collect(ctx, spec)
}

// Flush implements flows.Caller.
func (s *Session) Flush() { s.kp.Flush() }

// SetLanguage implements flows.Caller: prompts then play from the language's
// sound folder.
func (s *Session) SetLanguage(_ context.Context, lang string) error {
	return s.restErr(s.ch.SetVariable("CHANNEL(language)", lang))
}

// Continue implements flows.Caller.
func (s *Session) Continue(_ context.Context, t flows.Target) error {
	return s.restErr(s.ch.Continue(t.Context, t.Extension, t.Priority))
}

// Hangup implements flows.Caller.
func (s *Session) Hangup(context.Context) error {
	if s.isGone() {
		return nil
	}
	err := s.ch.Hangup()
	if native.CodeFromError(err) == 404 {
		return nil
	}
	return err
}

// variable reads a channel variable; a missing one is "".
func (s *Session) variable(name string) string {
	v, err := s.ch.GetVariable(name)
	if err != nil {
		return ""
	}
	return v
}

var _ flows.Caller = (*Session)(nil)
