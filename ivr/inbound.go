package ivr

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/net/websocket"
)

// InboundConfig is how the inbound transport reaches Asterisk.
type InboundConfig struct {
	URL         string // ARI base URL, http://host:8088/ari
	WSURL       string // events URL, ws://host:8088/ari/events
	Username    string
	Password    string
	Application string
	// TLS verifies Asterisk's certificate on https/wss (nil: the system's
	// roots).
	TLS *tls.Config
	// Timeout bounds every REST request and the websocket dial (default 5 s).
	Timeout time.Duration
	// Reconnect backoff bounds (defaults 200 ms and 10 s, full jitter).
	MinBackoff, MaxBackoff time.Duration
	// WaitForAsterisk retries an Asterisk that cannot be reached at
	// start-up, with the same backoff, until it answers or the context
	// ends (a service started before Asterisk, as systemd and compose may
	// do); each failure is logged at warn with the next delay, and
	// Waiting says why. Refused credentials stay fatal at once. Without
	// it, start-up fails fast.
	WaitForAsterisk bool
	Log             *logrus.Entry
}

// Inbound is today's ARI: the server dials Asterisk's events websocket for
// the application and sends REST over HTTP. On a reconnect it reconciles:
// calls Asterisk no longer has are ended, calls that entered while it was
// away are handed over as Unclaimed.
func Inbound(cfg InboundConfig) Transport {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	t := &inbound{cfg: cfg}
	t.stream = &EventStream{
		URL: cfg.WSURL, App: cfg.Application, Username: cfg.Username, Password: cfg.Password,
		DialTimout: cfg.Timeout, TLS: cfg.TLS, MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff,
		Log: cfg.Log.WithField("component", "ari-inbound"), OnState: t.onState,
	}
	return t
}

type inbound struct {
	cfg    InboundConfig
	stream *EventStream
	rest   *httpREST
	link   *link
	first  *websocket.Conn
	// waiting is why start-up is still waiting for Asterisk ("" once up).
	waiting atomic.Pointer[string]
	// wasConnected is set once a connection was lost: only a reconnect
	// reconciles calls.
	wasConnected atomic.Bool
}

func (t *inbound) Mode() string { return "inbound" }

func (t *inbound) start(ctx context.Context, s *Server) error {
	t.rest = newHTTPREST(t.cfg.URL, t.cfg.Username, t.cfg.Password, t.cfg.Timeout, t.cfg.TLS)
	t.link = s.newLink(t.rest, t.cfg.Application, func(app string) bool { return app == t.cfg.Application }, t.cfg.Log)
	t.stream.Undecodable = &s.undecodable
	first, err := t.connect(ctx)
	if err != nil {
		t.rest.close()
		return err
	}
	t.first = first
	return nil
}

// connect asks Asterisk for its info, then dials the events websocket; with
// WaitForAsterisk, until both succeed or the context ends.
func (t *inbound) connect(ctx context.Context) (*websocket.Conn, error) {
	delay, maxB := t.cfg.MinBackoff, t.cfg.MaxBackoff
	if delay <= 0 {
		delay = 200 * time.Millisecond
	}
	if maxB <= 0 {
		maxB = 10 * time.Second
	}
	for attempt := 1; ; attempt++ {
		err := Probe(ctx, t.cfg)
		if err == nil {
			dialCtx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
			var ws *websocket.Conn
			ws, err = t.stream.Dial(dialCtx)
			cancel()
			if err == nil {
				t.waiting.Store(nil)
				return ws, nil
			}
		}
		if !t.cfg.WaitForAsterisk || errors.Is(err, ErrUnauthorized) || ctx.Err() != nil {
			return nil, err
		}
		why := err.Error()
		t.waiting.Store(&why)
		t.cfg.Log.WithError(err).WithFields(logrus.Fields{"attempt": attempt, "next_attempt_in": delay.String()}).
			Warn("Asterisk's ARI is not reachable yet; waiting for it")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, maxB)
	}
}

// Waiting says why start-up is still waiting for Asterisk ("" when it is
// not).
func (t *inbound) Waiting() string {
	if w := t.waiting.Load(); w != nil {
		return *w
	}
	return ""
}

func (t *inbound) run(ctx context.Context) {
	t.stream.Run(ctx, t.first, t.link.handle)
	t.rest.close()
}

func (t *inbound) onState(connected bool) {
	if !connected {
		t.wasConnected.Store(true)
		return
	}
	// Not on the reader's goroutine: the filter's answer must not hold the
	// events behind it.
	go t.link.srv.filterEvents(t.link.srv.life, t.rest, t.cfg.Application)
	if t.wasConnected.Load() {
		t.link.reconcileLater()
	}
}

func (t *inbound) draining()         {}
func (t *inbound) ready() bool       { return t.stream.Connected() }
func (t *inbound) reconnects() int64 { return t.stream.Reconnects() }

// Probe asks Asterisk for its info with a deadline, as the inbound
// transport does before it dials the events websocket, so a wrong password
// (ErrUnauthorized) or an unreachable Asterisk is reported at once and by
// name (ari/v5's Connect would retry for ever and log nothing).
func Probe(ctx context.Context, cfg InboundConfig) error {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	r := newHTTPREST(cfg.URL, cfg.Username, cfg.Password, cfg.Timeout, cfg.TLS)
	defer r.close()
	err := r.do(ctx, "GET", "asterisk/info", nil, nil)
	switch status := StatusOf(err); {
	case err == nil:
		return nil
	case status == 401:
		return ErrUnauthorized
	case status != 0:
		return fmt.Errorf("asterisk answered /asterisk/info with HTTP %d", status)
	}
	return fmt.Errorf("asterisk unreachable: %w", err)
}
