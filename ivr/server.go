// Package ivr is a call server for Asterisk's ARI that knows nothing of
// what the calls are for. In the shape of emiago/diago's Serve(ctx,
// handler), it accepts calls from a transport, gives each a Call (play,
// collect digits, say, variables, continue, hang up) whose context ends at
// hang-up, and runs the handler once per call with a recover.
//
// Two transports:
//   - Inbound: the server dials Asterisk's events websocket and sends REST
//     over HTTP (any Asterisk with ARI).
//   - Outbound: Asterisk 22 dials the server, one websocket per call (or one
//     persistent websocket), and the server sends REST over that same
//     websocket; a fleet of stateless servers then sits behind an ordinary
//     load balancer.
//
// ari/v5 is used for its event types and decoder only: its reader and bus
// panic on unknown event types, drop events past 100 buffered and scan every
// subscription per event; its REST client has no context and no deadline.
// Here events are dispatched per channel by one map lookup, undecodable
// events are counted and skipped, and every REST request has a context and
// a deadline.
package ivr

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/sirupsen/logrus"
)

// Handler runs one call. When it returns, the server hangs up a call the
// handler neither hung up nor sent back to the dialplan.
type Handler func(c *Call)

// Config is the server's settings.
type Config struct {
	Transport    Transport
	CallTimeout  time.Duration // hard limit on one call (default 10 min)
	DrainTimeout time.Duration // how long active calls may finish on shutdown (default 60 s)
	Log          *logrus.Entry
}

// Server runs calls from one transport.
type Server struct {
	cfg Config

	mu       sync.Mutex
	calls    map[*Call]struct{}
	draining bool
	wg       sync.WaitGroup
	handler  Handler
	life     context.Context // ends when Serve stops the transport

	active, handled, undecodable atomic.Int64
	reconciling                  sync.WaitGroup
	// filterRefused is set once Asterisk refused an event filter (warned).
	filterRefused atomic.Bool

	// owners maps each live channel to the link that holds it, so another
	// websocket cannot claim a channel a live call holds.
	owners map[string]*link
	// refusedCalls counts StasisStarts refused, by reason.
	refusedMu    sync.Mutex
	refusedCalls map[string]int64
}

// Reasons a StasisStart is refused (RefusedCalls).
const (
	RefusedChannelTaken = "channel_taken" // another live websocket holds the channel
	RefusedPerCallBusy  = "per_call_busy" // a per-call websocket already brought its call
	RefusedSocketFull   = "socket_full"   // a persistent websocket carries its maximum
)

// RefusedCallReasons lists every reason, for metrics that exist from start-up.
var RefusedCallReasons = []string{RefusedChannelTaken, RefusedPerCallBusy, RefusedSocketFull}

// RefusedCalls counts the StasisStarts refused, by reason.
func (s *Server) RefusedCalls() map[string]int64 {
	s.refusedMu.Lock()
	defer s.refusedMu.Unlock()
	out := make(map[string]int64, len(RefusedCallReasons))
	for _, r := range RefusedCallReasons {
		out[r] = s.refusedCalls[r]
	}
	return out
}

func (s *Server) refuse(reason string) {
	s.refusedMu.Lock()
	if s.refusedCalls == nil {
		s.refusedCalls = map[string]int64{}
	}
	s.refusedCalls[reason]++
	s.refusedMu.Unlock()
}

// New makes a server; Serve runs it.
func New(cfg Config) (*Server, error) {
	if cfg.Transport == nil {
		return nil, errors.New("ivr: no transport")
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Minute
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 60 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	return &Server{cfg: cfg, calls: map[*Call]struct{}{}}, nil
}

// Active is the number of calls in progress.
func (s *Server) Active() int64 { return s.active.Load() }

// Handled is the number of calls taken since start.
func (s *Server) Handled() int64 { return s.handled.Load() }

// Undecodable counts events skipped because they could not be decoded.
func (s *Server) Undecodable() int64 { return s.undecodable.Load() }

// Ready reports whether the transport takes calls now (inbound: connected
// to Asterisk; outbound: listening and not draining).
func (s *Server) Ready() bool { return s.cfg.Transport.ready() }

// Waiting says why the server is still waiting for Asterisk at start-up
// (InboundConfig.WaitForAsterisk), or "".
func (s *Server) Waiting() string {
	if w, ok := s.cfg.Transport.(interface{ Waiting() string }); ok {
		return w.Waiting()
	}
	return ""
}

// Serve starts the transport (failing fast on a wrong password, an
// unreachable Asterisk or a port in use) and runs h for every call until
// ctx ends; then it drains: new calls are turned away (the handler sees
// DuringDrain) or refused, active calls may finish up to DrainTimeout, and
// the rest are ended. It returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context, h Handler) error {
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	s.mu.Lock()
	s.handler, s.life = h, life
	s.mu.Unlock()
	if err := s.cfg.Transport.start(ctx, s); err != nil {
		if ctx.Err() != nil {
			// Stopped while still connecting (serve waiting for an
			// Asterisk, SIGTERM landing mid-dial): no call was taken, so
			// this is a clean stop, not a transport failure.
			return nil
		}
		return err
	}
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		s.cfg.Transport.run(life)
	}()
	<-ctx.Done()
	s.drain()
	stop()
	<-runDone
	s.reconciling.Wait()
	return nil
}

func (s *Server) drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.cfg.Transport.draining()
	s.cfg.Log.WithField("active_calls", s.Active()).Info("draining: new calls are turned away")
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(s.cfg.DrainTimeout):
	}
	s.mu.Lock()
	left := make([]*Call, 0, len(s.calls))
	for c := range s.calls {
		left = append(left, c)
	}
	s.mu.Unlock()
	s.cfg.Log.WithField("active_calls", len(left)).Warn("drain deadline passed: ending remaining calls")
	for _, c := range left {
		c.forced.Store(true)
		c.cancel()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cfg.Log.Error("calls still running after the drain deadline")
	}
}

// link is one source of events with its way of sending REST: the inbound
// events connection (across reconnects), or one outbound websocket.
type link struct {
	srv  *Server
	rest rest
	// app is the application whose channels reconcile lists.
	app string
	// accept says whether a StasisStart's application is ours.
	accept func(app string) bool
	log    *logrus.Entry

	// admit, when set, says why a StasisStart for app must be refused on
	// this link ("" admits it), given the calls it carries now and whether
	// it has carried one before.
	admit func(app string, live int, hadCall bool) string

	mu      sync.Mutex
	calls   map[string]*Call
	started atomic.Bool // a StasisStart arrived on this link
	hadCall atomic.Bool // a call was registered on this link
}

func (s *Server) newLink(r rest, app string, accept func(string) bool, log *logrus.Entry) *link {
	return &link{srv: s, rest: r, app: app, accept: accept, log: log, calls: map[string]*Call{}}
}

// handle dispatches one event; it runs on the reader and never blocks.
func (l *link) handle(ev ari.Event) {
	if e, ok := ev.(*ari.StasisStart); ok {
		l.started.Store(true)
		l.start(e)
		return
	}
	id := channelOf(ev)
	if id == "" {
		return
	}
	l.mu.Lock()
	c := l.calls[id]
	l.mu.Unlock()
	if c != nil {
		c.deliver(ev)
	}
}

func channelOf(ev ari.Event) string {
	switch e := ev.(type) {
	case *ari.ChannelDtmfReceived:
		return e.Channel.ID
	case *ari.PlaybackStarted:
		return strings.TrimPrefix(e.Playback.TargetURI, "channel:")
	case *ari.PlaybackFinished:
		return strings.TrimPrefix(e.Playback.TargetURI, "channel:")
	case *ari.ChannelHangupRequest:
		return e.Channel.ID
	case *ari.StasisEnd:
		return e.Channel.ID
	case *ari.ChannelDestroyed:
		return e.Channel.ID
	}
	return ""
}

// callerNumber is the channel's caller id number; Asterisk may send a
// channel without a caller object (and a fuzzer surely will).
func callerNumber(ch ari.ChannelData) string {
	if ch.Caller == nil {
		return ""
	}
	return ch.Caller.Number
}

func (l *link) start(e *ari.StasisStart) {
	if e.Channel.ID == "" {
		// Nothing to answer or track: a malformed event.
		l.srv.undecodable.Add(1)
		return
	}
	if l.accept != nil && !l.accept(e.Application) {
		l.log.WithField("application", e.Application).Warn("a call entered an application this server does not serve; left alone")
		return
	}
	if l.admit != nil {
		l.mu.Lock()
		live := len(l.calls)
		l.mu.Unlock()
		if reason := l.admit(e.Application, live, l.hadCall.Load()); reason != "" {
			l.srv.refuse(reason)
			l.log.WithField("reason", reason).Warn("refused a call on this websocket")
			return
		}
	}
	c := l.srv.register(l, e.Channel.ID)
	if c == nil {
		return
	}
	c.Name, c.CallerID, c.Application, c.Args = e.Channel.Name, callerNumber(e.Channel), e.Application, e.Args
	l.srv.launch(c)
}

// register makes and tracks a call on l; nil if the channel is known.
func (s *Server) register(l *link, id string) *Call {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	c := newCall(ctx, cancel, l.rest, id, l.log.WithField("channel", id))
	l.mu.Lock()
	if _, dup := l.calls[id]; dup {
		l.mu.Unlock()
		cancel()
		return nil
	}
	s.mu.Lock()
	if other := s.owners[id]; other != nil && other != l {
		s.mu.Unlock()
		l.mu.Unlock()
		cancel()
		s.refuse(RefusedChannelTaken)
		l.log.WithField("channel", id).Warn("refused a call for a channel another live websocket holds")
		return nil
	}
	if s.owners == nil {
		s.owners = map[string]*link{}
	}
	s.owners[id] = l
	s.mu.Unlock()
	l.calls[id] = c
	l.hadCall.Store(true)
	l.mu.Unlock()
	s.mu.Lock()
	if s.draining {
		c.Arrival = DuringDrain
	}
	s.calls[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.active.Add(1)
	s.handled.Add(1)
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		if l.calls[id] == c {
			delete(l.calls, id)
		}
		l.mu.Unlock()
		s.mu.Lock()
		if s.owners[id] == l {
			delete(s.owners, id)
		}
		s.mu.Unlock()
	})
	return c
}

// launch runs the handler for c with a recover; the call is hung up after
// it unless it already ended.
func (s *Server) launch(c *Call) {
	s.mu.Lock()
	h := s.handler
	s.mu.Unlock()
	go func() {
		defer s.finish(c)
		defer func() {
			if r := recover(); r != nil {
				// The panic value is not logged: it could hold call data.
				c.Log.WithField("panic_type", reflect.TypeOf(r).String()).Error("call handler panicked; hanging up")
			}
			if !c.ended() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = c.Hangup(ctx)
				cancel()
			}
		}()
		h(c)
	}()
}

func (s *Server) finish(c *Call) {
	c.cancel()
	s.mu.Lock()
	delete(s.calls, c)
	s.mu.Unlock()
	s.active.Add(-1)
	s.wg.Done()
}

// lost ends every call of a link whose connection is gone for good (an
// outbound websocket closed): nothing can drive them any more.
func (l *link) lost() {
	l.mu.Lock()
	calls := make([]*Call, 0, len(l.calls))
	for _, c := range l.calls {
		calls = append(calls, c)
	}
	l.mu.Unlock()
	for _, c := range calls {
		c.hungUp()
	}
}

// reconcileGrace lets StasisStart events that were in flight at a
// (re)connection arrive before a channel is judged unknown.
const reconcileGrace = time.Second

// perCallStartGrace is how long a per-call websocket that registered its
// application may wait for its StasisStart before its channel is taken for
// a call re-dialled after its first instance died (which brings none).
// Asterisk sends a fresh call's StasisStart right after registering, but a
// busy Asterisk or instance can take over a second: a fresh call mistaken
// for a re-dialled one would be told "not available" and hung up. The
// price is that a re-dialled caller hears this long a silence first.
const perCallStartGrace = 3 * time.Second

// reconcileLater checks the link's calls against Asterisk once the grace has
// passed, in the background (bounded by the server's life).
func (l *link) reconcileLater() {
	s := l.srv
	s.mu.Lock()
	life := s.life
	s.mu.Unlock()
	s.reconciling.Add(1)
	go func() {
		defer s.reconciling.Done()
		select {
		case <-life.Done():
			return
		case <-time.After(reconcileGrace):
		}
		l.reconcile(life)
	}()
}

// reconcile ends calls Asterisk no longer has in the application and hands
// calls we do not know (they entered while we were away) to the handler as
// Unclaimed.
func (l *link) reconcile(ctx context.Context) {
	var app struct {
		ChannelIDs []string `json:"channel_ids"`
	}
	if err := l.rest.do(ctx, "GET", "applications/"+url.PathEscape(l.app), nil, &app); err != nil {
		l.log.WithError(err).Warn("could not list the application's channels after connecting")
		return
	}
	live := map[string]bool{}
	for _, id := range app.ChannelIDs {
		live[id] = true
	}
	l.mu.Lock()
	var vanished []*Call
	for id, c := range l.calls {
		if !live[id] {
			vanished = append(vanished, c)
		}
		delete(live, id)
	}
	l.mu.Unlock()
	for _, c := range vanished {
		c.hungUp()
	}
	for id := range live {
		c := l.srv.register(l, id)
		if c == nil {
			continue
		}
		c.Application = l.app
		if c.Arrival == Fresh {
			c.Arrival = Unclaimed
		}
		l.srv.launch(c)
	}
	if len(vanished) > 0 {
		l.log.WithField("calls", len(vanished)).Warn("calls lost while the connection was down were ended")
	}
}
