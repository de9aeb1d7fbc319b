package ivr

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/sirupsen/logrus"
	"golang.org/x/net/websocket"
)

// EventStream reads the ARI events WebSocket and hands each event to a
// handler. It replaces ari/v5's own reader and bus, which (v5.3.1) panic on
// event types the library cannot decode, silently drop events past 100
// buffered per subscription, and scan every subscription for every event.
// Here an undecodable event is counted and skipped, nothing is buffered (the
// handler must not block), and dispatch is the handler's single map lookup.
type EventStream struct {
	URL        string // ws://host:8088/ari/events
	App        string
	Username   string
	Password   string
	Origin     string
	DialTimout time.Duration
	// TLS, for a wss URL: the roots that verify Asterisk's certificate (nil:
	// the system's).
	TLS *tls.Config
	// Backoff bounds for reconnecting (with full jitter).
	MinBackoff, MaxBackoff time.Duration
	Log                    *logrus.Entry
	// OnState is told of every connection change (true: connected).
	OnState func(connected bool)
	// Undecodable counts events skipped: the server's counter, set before
	// Run (the inbound transport does).
	Undecodable *atomic.Int64

	reconnects atomic.Int64
	connected  atomic.Bool
}

// Reconnects counts successful reconnections after the first connection.
func (s *EventStream) Reconnects() int64 { return s.reconnects.Load() }

// Connected reports whether the stream is connected now.
func (s *EventStream) Connected() bool { return s.connected.Load() }

// ErrUnauthorized is returned when Asterisk refuses the credentials.
var ErrUnauthorized = errors.New("ARI refused the username or password (401)")

func (s *EventStream) config() (*websocket.Config, error) {
	u, err := url.Parse(s.URL)
	if err != nil {
		return nil, fmt.Errorf("ARI events URL: %w", err)
	}
	q := u.Query()
	q.Set("app", s.App)
	u.RawQuery = q.Encode()
	origin := s.Origin
	if origin == "" {
		origin = "http://localhost" // ari.conf allowed_origins, exactly (Asterisk logs a mismatch otherwise)
	}
	cfg, err := websocket.NewConfig(u.String(), origin)
	if err != nil {
		return nil, err
	}
	cfg.Header = http.Header{}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s.Username+":"+s.Password)))
	d := s.DialTimout
	if d <= 0 {
		d = 5 * time.Second
	}
	cfg.Dialer = &net.Dialer{Timeout: d}
	if u.Scheme == "wss" {
		cfg.TlsConfig = tlsFor(s.TLS, u.Hostname())
	}
	return cfg, nil
}

// Dial opens one connection, failing within the dial timeout. A refused
// upgrade that says 401 becomes ErrUnauthorized.
func (s *EventStream) Dial(ctx context.Context) (*websocket.Conn, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	ws, err := cfg.DialContext(ctx)
	if err != nil {
		var de *websocket.DialError
		if errors.As(err, &de) && strings.Contains(de.Err.Error(), "bad status") {
			return nil, ErrUnauthorized
		}
		return nil, err
	}
	return ws, nil
}

// Run reads events until ctx ends, reconnecting with backoff and jitter.
// first, if non-nil, is an already dialled connection (from Dial).
func (s *EventStream) Run(ctx context.Context, first *websocket.Conn, handle func(ari.Event)) {
	minB, maxB := s.MinBackoff, s.MaxBackoff
	if minB <= 0 {
		minB = 200 * time.Millisecond
	}
	if maxB <= 0 {
		maxB = 10 * time.Second
	}
	backoff := minB
	ws := first
	everConnected := first != nil
	for ctx.Err() == nil {
		if ws == nil {
			var err error
			ws, err = s.Dial(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.Log.WithError(err).WithField("retry_in", backoff.String()).Warn("ARI events connection failed")
				sleep := time.Duration(rand.Int64N(int64(backoff)) + 1)
				select {
				case <-ctx.Done():
					return
				case <-time.After(sleep):
				}
				backoff = min(2*backoff, maxB)
				continue
			}
			if everConnected {
				s.reconnects.Add(1)
			}
			everConnected = true
		}
		backoff = minB
		s.setConnected(true)
		s.Log.Info("ARI events connected")
		err := s.read(ctx, ws, handle)
		_ = ws.Close()
		ws = nil
		s.setConnected(false)
		if ctx.Err() == nil {
			s.Log.WithError(err).Warn("ARI events connection lost; reconnecting")
		}
	}
}

func (s *EventStream) setConnected(v bool) {
	s.connected.Store(v)
	if s.OnState != nil {
		s.OnState(v)
	}
}

// read loops over one connection.
func (s *EventStream) read(ctx context.Context, ws *websocket.Conn, handle func(ari.Event)) error {
	stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
	defer stop()
	for {
		var data []byte
		if err := websocket.Message.Receive(ws, &data); err != nil {
			return err
		}
		if ev := decodeOrCount(data, s.Undecodable, s.Log); ev != nil {
			handle(ev)
		}
		// The frame of a key press carried a caller's digit: decoded, it is
		// wiped (wipeFrame), not left for the collector.
		wipeFrame(data)
	}
}

// wipeFrame zeroes a message once it has been decoded: a
// ChannelDtmfReceived frame holds a caller's digit, and a card number,
// expiry and PINs are those digits in order. The digit itself goes on as a
// one-byte string, which Go keeps in a static table, not in the heap.
func wipeFrame(data []byte) { clear(data) }

// decodeOrCount decodes one event, or counts and skips it. Only the type is
// logged: events carry caller data.
func decodeOrCount(data []byte, skipped *atomic.Int64, log *logrus.Entry) ari.Event {
	ev, err := decode(data)
	if err != nil || ev == nil {
		skipped.Add(1)
		log.WithField("event_type", eventType(data)).Debug("skipped an ARI event ari/v5 cannot decode")
		return nil
	}
	return ev
}

// decode wraps ari.DecodeEvent, which returns nil (not an error) for event
// types it does not know and can panic on odd payloads. The events every
// call sends many of (keys, playbacks, hang-ups) take decodeHot's one pass.
func decode(data []byte) (ev ari.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			ev, err = nil, errors.New("event decoder panicked")
		}
	}()
	if ev := decodeHot(data); ev != nil {
		return ev, nil
	}
	return ari.DecodeEvent(data)
}

func eventType(data []byte) string {
	var t struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &t)
	if len(t.Type) > 40 {
		return t.Type[:40]
	}
	return t.Type
}
