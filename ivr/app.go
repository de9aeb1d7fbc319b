// Package ivr is the ARI glue: it registers the Stasis application, runs one
// Session per channel under its own deadline, turns hang-ups into context
// cancellation, keeps a registry of live calls, drains on shutdown and
// reconnects with backoff. Events are dispatched per channel by one map
// lookup (see EventStream for why ari/v5's bus is not used); REST calls go
// through ari/v5's native client, handles and rid.
package ivr

import (
	"context"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/CyCoreSystems/ari/v5/client/native"
	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// Config is the app's settings.
type Config struct {
	ARI          ARIConfig
	CallTimeout  time.Duration // hard limit on one call (default 10 min)
	DrainTimeout time.Duration // how long active calls may finish on shutdown (default 60 s)
	// Closing is where new calls go during a drain; nil plays a short
	// "service closing" prompt and hangs up.
	Closing *flows.Target
	Log     *logrus.Entry
	// OnCallEnd receives one record per call (the audit record).
	OnCallEnd func(CallRecord)
	// Reconnect backoff bounds (defaults 200 ms and 10 s).
	MinBackoff, MaxBackoff time.Duration
}

// CallRecord is what one call came to. It holds no PIN and only a masked PAN.
type CallRecord struct {
	ChannelID   string        `json:"channel_id"`
	CallerID    string        `json:"caller_id"`
	Language    string        `json:"language"`
	Path        string        `json:"path"`
	MaskedPAN   string        `json:"pan,omitempty"`
	Host        string        `json:"host,omitempty"`
	MsgID       string        `json:"msg_id,omitempty"`
	ResultCode  string        `json:"result_code,omitempty"`
	HostRef     string        `json:"host_ref,omitempty"` // the host's reference (NI transaction_ref_id)
	Outcome     string        `json:"outcome"`
	Reason      string        `json:"reason,omitempty"` // why, in the host's words or ours (never a PIN; long digit runs masked)
	End         string        `json:"end"`
	Retries     []flows.Retry `json:"retries,omitempty"`
	Transferred bool          `json:"transferred"`
	Returned    bool          `json:"returned"`
	Start       time.Time     `json:"start"`
	Duration    time.Duration `json:"duration_ns"`
}

// App is the Stasis application.
type App struct {
	cfg    Config
	flow   *flows.Flow
	client *native.Client
	stream *EventStream

	mu       sync.Mutex
	calls    map[string]*Session
	draining bool
	wg       sync.WaitGroup
	active   atomic.Int64
	handled  atomic.Int64
	// wasConnected is set once a connection was lost: only a reconnect
	// reconciles calls.
	wasConnected atomic.Bool
	life         context.Context // ends when Serve stops the event stream
	reconciling  sync.WaitGroup
}

// New makes the app; Serve connects it.
func New(cfg Config, flow *flows.Flow) (*App, error) {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Minute
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 60 * time.Second
	}
	if cfg.ARI.Timeout <= 0 {
		cfg.ARI.Timeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	client, err := NewClient(cfg.ARI)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, flow: flow, client: client, calls: map[string]*Session{}}
	a.stream = &EventStream{
		URL: cfg.ARI.WSURL, App: cfg.ARI.Application, Username: cfg.ARI.Username, Password: cfg.ARI.Password,
		DialTimout: cfg.ARI.Timeout, MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff,
		Log: cfg.Log.WithField("component", "ari-events"), OnState: a.onState,
	}
	return a, nil
}

// Active is the number of calls in progress.
func (a *App) Active() int64 { return a.active.Load() }

// Handled is the number of calls taken since start.
func (a *App) Handled() int64 { return a.handled.Load() }

// Stream exposes the event stream's counters.
func (a *App) Stream() *EventStream { return a.stream }

// Serve checks Asterisk (failing fast on a wrong password or an unreachable
// server), connects the events stream and takes calls until ctx ends; then
// it drains: new calls are turned away politely, active calls may finish up
// to DrainTimeout, and the rest are hung up. It returns nil after a clean
// drain.
func (a *App) Serve(ctx context.Context) error {
	if _, err := Preflight(ctx, a.cfg.ARI); err != nil {
		return err
	}
	dialCtx, cancelDial := context.WithTimeout(ctx, a.cfg.ARI.Timeout)
	first, err := a.stream.Dial(dialCtx)
	cancelDial()
	if err != nil {
		return err
	}
	streamCtx, stopStream := context.WithCancel(context.WithoutCancel(ctx))
	a.mu.Lock()
	a.life = streamCtx
	a.mu.Unlock()
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		a.stream.Run(streamCtx, first, a.handle)
	}()
	<-ctx.Done()
	a.drain()
	stopStream()
	<-streamDone
	a.reconciling.Wait()
	a.closeIdle()
	return nil
}

func (a *App) drain() {
	a.mu.Lock()
	a.draining = true
	a.mu.Unlock()
	a.cfg.Log.WithField("active_calls", a.Active()).Info("draining: new calls are turned away")
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(a.cfg.DrainTimeout):
	}
	a.mu.Lock()
	left := make([]*Session, 0, len(a.calls))
	for _, s := range a.calls {
		left = append(left, s)
	}
	a.mu.Unlock()
	a.cfg.Log.WithField("active_calls", len(left)).Warn("drain deadline passed: ending remaining calls")
	for _, s := range left {
		s.forced.Store(true)
		s.cancel()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		a.cfg.Log.Error("calls still running after the drain deadline")
	}
}

// closeIdle releases the REST connection pool (no goroutine outlives Serve).
func (a *App) closeIdle() {
	f := reflect.ValueOf(a.client).Elem().FieldByName("httpClient")
	if f.IsValid() && f.Type() == reflect.TypeOf(http.Client{}) {
		(*http.Client)(unsafe.Pointer(f.UnsafeAddr())).CloseIdleConnections()
	}
}

// handle dispatches one event; it runs on the reader and never blocks.
func (a *App) handle(ev ari.Event) {
	if e, ok := ev.(*ari.StasisStart); ok {
		a.start(e)
		return
	}
	id := channelOf(ev)
	if id == "" {
		return
	}
	a.mu.Lock()
	s := a.calls[id]
	a.mu.Unlock()
	if s != nil {
		s.deliver(ev)
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

func (a *App) start(e *ari.StasisStart) {
	if e.Channel.ID == "" {
		// Nothing to answer or track: a malformed event.
		a.stream.undecodable.Add(1)
		return
	}
	key := ari.NewKey(ari.ChannelKey, e.Channel.ID)
	log := a.cfg.Log.WithField("channel", e.Channel.ID)
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.CallTimeout)
	s := newSession(a.client, key, cancel, log)
	a.mu.Lock()
	if _, dup := a.calls[e.Channel.ID]; dup {
		a.mu.Unlock()
		cancel()
		return
	}
	draining := a.draining
	a.calls[e.Channel.ID] = s
	a.wg.Add(1)
	a.mu.Unlock()
	a.active.Add(1)
	a.handled.Add(1)
	if draining {
		go a.turnAway(ctx, s, e)
		return
	}
	go a.runCall(ctx, s, e)
}

func (a *App) finishCall(s *Session, id string) {
	s.cancel()
	a.mu.Lock()
	delete(a.calls, id)
	a.mu.Unlock()
	a.active.Add(-1)
	a.wg.Done()
}

// turnAway answers a call that arrived during a drain.
func (a *App) turnAway(ctx context.Context, s *Session, e *ari.StasisStart) {
	defer a.finishCall(s, s.ch.ID())
	rec := CallRecord{ChannelID: e.Channel.ID, CallerID: callerNumber(e.Channel), Start: time.Now(), Outcome: "none", End: "turned_away"}
	defer func() {
		rec.Duration = time.Since(rec.Start)
		if a.cfg.OnCallEnd != nil {
			a.cfg.OnCallEnd(rec)
		}
	}()
	if err := s.ch.Answer(); err != nil {
		return
	}
	if a.cfg.Closing != nil {
		_ = s.Continue(ctx, *a.cfg.Closing)
		return
	}
	_ = s.Say(ctx, prompts.P(prompts.ServiceClosing))
	_ = s.Hangup(ctx)
}

func (a *App) runCall(ctx context.Context, s *Session, e *ari.StasisStart) {
	id := e.Channel.ID
	start := time.Now()
	rec := CallRecord{ChannelID: id, CallerID: callerNumber(e.Channel), Start: start, Outcome: "none"}
	defer a.finishCall(s, id)
	defer func() {
		if r := recover(); r != nil {
			// The panic value is not logged: it could hold call data.
			s.log.WithField("panic_type", reflect.TypeOf(r).String()).Error("call panicked; hanging up")
			_ = s.Hangup(context.Background())
			rec.End = "error"
		}
		rec.Duration = time.Since(start)
		if a.cfg.OnCallEnd != nil {
			a.cfg.OnCallEnd(rec)
		}
	}()
	if err := s.restErr(s.ch.Answer()); err != nil {
		rec.End = "hangup"
		return
	}
	call := a.callInfo(s, e)
	rec.Transferred = call.Return != nil || call.Mode != ""
	res := a.flow.Run(ctx, s, call)
	rec.Language, rec.Path, rec.MaskedPAN, rec.End = res.Language, string(res.Path), res.MaskedPAN, res.End
	if s.forced.Load() {
		// Ended by the drain deadline, not by the caller.
		rec.End = "drain_deadline"
		if !s.isGone() {
			_ = s.Hangup(context.Background())
		}
	}
	rec.Retries, rec.Returned = res.Retries, res.Returned
	if res.Outcome != nil {
		rec.Host, rec.MsgID, rec.ResultCode, rec.Outcome = string(res.Outcome.Host), res.Outcome.MsgID, res.Outcome.Code, string(res.Outcome.Kind)
		rec.HostRef, rec.Reason = res.Outcome.Reference, res.Outcome.Description
	}
	s.log.WithFields(logrus.Fields{"path": rec.Path, "end": rec.End, "outcome": rec.Outcome, "pan": rec.MaskedPAN}).Info("call ended")
}

// callInfo reads what an agent transfer passed in. Stasis arguments are
// key=value pairs (mode, lang, card_no, cardholder_no, expiry, seq (the
// card sequence number), return as context/extension/priority); the
// argument "transfer" makes the app also read the channel variables
// IVRPIN_MODE, IVRPIN_LANG, IVRPIN_PAN, IVRPIN_EXPIRY, IVRPIN_SEQ,
// IVRPIN_CARD_NO, IVRPIN_CARDHOLDER_NO and IVRPIN_RETURN.
// Pass a PAN by channel variable set over AMI/ARI by the agent desktop, not
// in the dialplan, where Asterisk's verbose log would show it.
func (a *App) callInfo(s *Session, e *ari.StasisStart) flows.Call {
	call := ParseTransfer(e.Args, s.variable)
	call.ChannelID, call.CallerID = e.Channel.ID, callerNumber(e.Channel)
	return call
}

// transferNames are the Stasis argument keys, and (upper-cased, prefixed
// IVRPIN_) the channel variable names, a transfer may set.
var transferNames = []string{"mode", "lang", "pan", "expiry", "seq", "card_no", "cardholder_no", "return"}

// ParseTransfer reads Stasis arguments (key=value pairs, and "transfer" to
// read the IVRPIN_* channel variables through variable for keys the
// arguments do not set). Values that do not parse are dropped, never
// guessed at: an unknown mode asks the menu, a malformed return hangs up.
func ParseTransfer(args []string, variable func(name string) string) flows.Call {
	var call flows.Call
	kv := map[string]string{}
	transfer := false
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			transfer = transfer || arg == "transfer"
			continue
		}
		kv[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if transfer && variable != nil {
		for _, name := range transferNames {
			if _, set := kv[name]; !set {
				if v := variable("IVRPIN_" + strings.ToUpper(name)); v != "" {
					kv[name] = v
				}
			}
		}
	}
	switch flows.Mode(kv["mode"]) {
	case flows.ModeChange, flows.ModeSetup:
		call.Mode = flows.Mode(kv["mode"])
	}
	call.Language = kv["lang"]
	call.PAN = secret.PAN(kv["pan"])
	call.Expiry = kv["expiry"]
	call.CardNo, call.CardholderNo = kv["card_no"], kv["cardholder_no"]
	if seq := kv["seq"]; len(seq) == 2 && seq[0] >= '0' && seq[0] <= '9' && seq[1] >= '0' && seq[1] <= '9' {
		call.SequenceNumber = seq
	}
	if r := kv["return"]; r != "" {
		parts := strings.Split(r, "/")
		if len(parts) == 3 && parts[0] != "" && parts[1] != "" {
			prio, err := strconv.Atoi(parts[2])
			if err == nil && prio >= 1 {
				call.Return = &flows.Target{Context: parts[0], Extension: parts[1], Priority: prio}
			}
		}
	}
	return call
}

// onState reconciles after a reconnect: calls Asterisk no longer has are
// ended; calls in the app we do not know are ended politely.
func (a *App) onState(connected bool) {
	if !connected {
		a.wasConnected.Store(true)
		return
	}
	if a.wasConnected.Load() {
		a.mu.Lock()
		life := a.life
		a.mu.Unlock()
		a.reconciling.Add(1)
		go func() {
			defer a.reconciling.Done()
			a.reconcile(life)
		}()
	}
}

// reconcileGrace lets StasisStart events that were in flight at the
// reconnect arrive before a channel is judged unknown.
const reconcileGrace = time.Second

func (a *App) reconcile(life context.Context) {
	select {
	case <-life.Done():
		return
	case <-time.After(reconcileGrace):
	}
	data, err := a.client.Application().Data(ari.NewKey(ari.ApplicationKey, a.cfg.ARI.Application))
	if err != nil {
		a.cfg.Log.WithError(err).Warn("could not list the app's channels after reconnecting")
		return
	}
	live := map[string]bool{}
	for _, id := range data.ChannelIDs {
		live[id] = true
	}
	a.mu.Lock()
	var vanished []*Session
	for id, s := range a.calls {
		if !live[id] {
			vanished = append(vanished, s)
		}
		delete(live, id)
	}
	a.mu.Unlock()
	for _, s := range vanished {
		s.hungUp()
	}
	for id := range live {
		// A call that entered the app while we were away: nobody ran its flow.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		s := newSession(a.client, ari.NewKey(ari.ChannelKey, id), cancel, a.cfg.Log.WithField("channel", id))
		a.mu.Lock()
		if _, dup := a.calls[id]; dup {
			a.mu.Unlock()
			cancel()
			continue
		}
		a.calls[id] = s
		a.wg.Add(1)
		a.mu.Unlock()
		a.active.Add(1)
		go func() {
			defer a.finishCall(s, s.ch.ID())
			_ = s.Say(ctx, prompts.P(prompts.ResultUnavailable))
			_ = s.Hangup(ctx)
		}()
	}
	if len(vanished) > 0 {
		a.cfg.Log.WithField("calls", len(vanished)).Warn("calls lost while ARI was disconnected were ended")
	}
}
