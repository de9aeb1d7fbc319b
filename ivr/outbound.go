package ivr

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/sirupsen/logrus"
	"golang.org/x/net/websocket"
)

// OutboundConfig is where the outbound transport listens for Asterisk.
type OutboundConfig struct {
	// Listen is host:port; Asterisk's websocket_client.conf uri points at
	// ws(s)://host:port/ari.
	Listen string
	// Username and Password are what websocket_client.conf sends (HTTP
	// basic auth); anything else is refused before the upgrade.
	Username, Password string
	// TLSCert and TLSKey, when both set, serve wss.
	TLSCert, TLSKey string
	// Application is the app as named in ari.conf's outbound_websocket
	// apps: a per-call websocket names it "<app>:<channel name>".
	Application string
	// Timeout bounds every REST request over a websocket (default 5 s).
	Timeout time.Duration
	Log     *logrus.Entry

	// MaxConnections bounds the open connections (default 10000): past it
	// a new connection is closed at once and counted.
	MaxConnections int
	// ReservedConnections of them (default half; negative: none) are kept
	// for sources that logged in within KnownFor (default 10 min):
	// Asterisk's. A source that has not may hold MaxConnectionsPerSource
	// at once (default a quarter of the rest, at most 100).
	ReservedConnections     int
	MaxConnectionsPerSource int
	KnownFor                time.Duration
	// MaxPersistent bounds the websockets registered as persistent (one
	// for all calls) at once (default 4); PersistentSources, when set, are
	// the addresses or CIDRs allowed one. Each must answer the listener's
	// ARI ping (GET asterisk/ping) every PingInterval (default 20 s)
	// within Timeout, or it is closed.
	MaxPersistent     int
	PersistentSources []string
	PingInterval      time.Duration
	// MaxCallsPerSocket bounds the calls one persistent websocket carries
	// at once (default 1000); a per-call websocket carries one, ever.
	MaxCallsPerSocket int
	// MaxFailures is how many failed logins a source may make in a minute
	// (default 20); then it is answered 429 until the minute ends. A source
	// is an IPv4 address or an IPv6 network of IPv6Prefix bits (default
	// 64). Past MaxFailuresPerSecond failures across all sources (default
	// 50) every source that has not logged in lately is answered 429 for
	// the rest of that second. The failure table holds at most MaxSources
	// (default 100000), the oldest dropped first.
	MaxFailures          int
	IPv6Prefix           int
	MaxFailuresPerSecond int
	MaxSources           int
	// TrustedProxies are addresses or CIDRs of load balancers that put a
	// PROXY protocol v2 header (HAProxy's send-proxy-v2) in front of each
	// connection: the header's source address is then the one counted.
	// Connections from them must carry the header.
	TrustedProxies []string
	// UpgradeTimeout closes a connection that has not become an
	// authenticated websocket in time, whatever it sent; NoCallTimeout
	// closes a websocket that brings no call in time (a persistent one,
	// which waits for calls by design, is kept). Both default to 10 s.
	UpgradeTimeout, NoCallTimeout time.Duration
}

// Outbound is Asterisk 22's outbound ARI websockets: Asterisk dials the
// server (websocket_client.conf, connection_type per_call_config: one
// websocket per call; or persistent: one for all), subprotocol "ari", and
// the server drives each call with REST over the websocket it came on
// (RESTRequest / RESTResponse, matched by request_id). Every connection is
// independent: a slow or broken one holds up no other. On drain the
// listener closes, so a load balancer sends new calls elsewhere.
func Outbound(cfg OutboundConfig) Transport {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 10000
	}
	if cfg.MaxCallsPerSocket <= 0 {
		cfg.MaxCallsPerSocket = 1000
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 20
	}
	switch {
	case cfg.ReservedConnections == 0:
		cfg.ReservedConnections = cfg.MaxConnections / 2
	case cfg.ReservedConnections < 0: // none
		cfg.ReservedConnections = 0
	}
	// By default one source takes at most a quarter of what unknown
	// sources share, so one flooding address leaves room for a new
	// Asterisk to log in.
	cfg.MaxConnectionsPerSource = cmp.Or(cfg.MaxConnectionsPerSource, min(100, max(1, (cfg.MaxConnections-cfg.ReservedConnections)/4)))
	cfg.KnownFor = cmp.Or(cfg.KnownFor, 10*time.Minute)
	cfg.MaxPersistent = cmp.Or(cfg.MaxPersistent, 4)
	cfg.PingInterval = cmp.Or(cfg.PingInterval, 20*time.Second)
	cfg.IPv6Prefix = cmp.Or(cfg.IPv6Prefix, 64)
	cfg.MaxFailuresPerSecond = cmp.Or(cfg.MaxFailuresPerSecond, 50)
	cfg.MaxSources = cmp.Or(cfg.MaxSources, 100000)
	if cfg.UpgradeTimeout <= 0 {
		cfg.UpgradeTimeout = 10 * time.Second
	}
	if cfg.NoCallTimeout <= 0 {
		cfg.NoCallTimeout = 10 * time.Second
	}
	log := cfg.Log.WithField("component", "ari-outbound")
	return &outbound{cfg: cfg, log: log, guard: newGuard(cfg, log)}
}

type outbound struct {
	cfg OutboundConfig
	log *logrus.Entry
	srv *Server

	ln        net.Listener
	addr      atomic.Value // string, once listening
	http      *http.Server
	listening atomic.Bool
	conns     sync.WaitGroup
	mu        sync.Mutex
	open      map[*wsLink]struct{}
	guard     *guard
	// persistent counts the websockets registered as persistent (mu).
	persistent int
}

// Stats counts what the listener turned away.
func (t *outbound) Stats() ListenerStats { return t.guard.stats() }

func (t *outbound) Mode() string { return "outbound" }

// Addr is the address listened on (useful with port 0).
func (t *outbound) Addr() string {
	a, _ := t.addr.Load().(string)
	return a
}

func (t *outbound) start(_ context.Context, s *Server) error {
	t.srv = s
	t.open = map[*wsLink]struct{}{}
	ln, err := net.Listen("tcp", t.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", t.cfg.Listen, err)
	}
	if len(t.cfg.TrustedProxies) > 0 {
		policy, err := proxyproto.StrictWhiteListPolicy(t.cfg.TrustedProxies)
		if err != nil {
			ln.Close()
			return fmt.Errorf("trusted proxies: %w", err)
		}
		// From a trusted balancer the header is required; anyone else is
		// taken as the TCP peer it is (a header from them breaks the HTTP
		// request and is answered 400).
		ln = &proxyproto.Listener{Listener: ln, ReadHeaderTimeout: 5 * time.Second, Policy: func(upstream net.Addr) (proxyproto.Policy, error) {
			p, err := policy(upstream)
			if err != nil {
				return proxyproto.SKIP, nil
			}
			if p == proxyproto.USE {
				return proxyproto.REQUIRE, nil
			}
			return p, nil
		}}
	}
	ln = &boundedListener{Listener: ln, g: t.guard}
	if tc, err := listenerTLS(t.cfg); err != nil {
		ln.Close()
		return err
	} else if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ari", t.upgrade)
	t.ln = ln
	t.addr.Store(ln.Addr().String())
	// The HTTP server's own complaints (accept errors such as running out
	// of descriptors, a failed TLS handshake, plain HTTP to TLS) go to our
	// log at warn, at most once a second with a count.
	t.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:    stdlog.New(&rateLog{log: t.log}, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) }}
	t.listening.Store(true)
	return nil
}

// ErrTLSPair is a listener certificate and key that do not load.
var ErrTLSPair = errors.New("TLS certificate and key")

// listenerTLS is the listener's TLS configuration (nil without TLS).
func listenerTLS(cfg OutboundConfig) (*tls.Config, error) {
	if cfg.TLSCert == "" && cfg.TLSKey == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTLSPair, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// ProbeListen checks that the outbound transport could start as cfg says:
// its TLS pair loads (ErrTLSPair) and its address can be listened on. It
// keeps nothing open.
func ProbeListen(cfg OutboundConfig) error {
	if _, err := listenerTLS(cfg); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", cfg.Listen, err)
	}
	return ln.Close()
}

func (t *outbound) run(ctx context.Context) {
	go func() { _ = t.http.Serve(t.ln) }()
	t.log.WithField("addr", t.Addr()).Info("listening for Asterisk's outbound ARI websockets")
	<-ctx.Done()
	t.draining()
	// Connections still open belong to calls the drain has ended: close them.
	t.mu.Lock()
	for l := range t.open {
		l.close()
	}
	t.mu.Unlock()
	t.conns.Wait()
	_ = t.http.Close()
}

// draining closes the listener: a load balancer's next connection attempt
// is refused and redispatched, Asterisk alone fails Stasis() at once and the
// dialplan goes on (STASISSTATUS=FAILED). Connections already open go on.
func (t *outbound) draining() {
	if t.listening.CompareAndSwap(true, false) {
		_ = t.ln.Close()
	}
}

func (t *outbound) ready() bool       { return t.listening.Load() }
func (t *outbound) reconnects() int64 { return 0 }

// authorised checks HTTP basic auth (hashed, constant time, both fields
// always compared).
func (t *outbound) authorised(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	return credentialsMatch(u, p, t.cfg.Username, t.cfg.Password) && ok
}

func (t *outbound) upgrade(w http.ResponseWriter, r *http.Request) {
	src, now := t.guard.sourceKey(r.RemoteAddr), time.Now()
	if t.guard.refuseLogin(src, now) {
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many failed logins", http.StatusTooManyRequests)
		return
	}
	if !t.authorised(r) {
		t.guard.failed(src, now)
		w.Header().Set("WWW-Authenticate", `Basic realm="ivr-pin"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	gc := guardedOf(r.Context())
	t.guard.loggedIn(src, gc, now)
	if !t.listening.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	t.conns.Add(1)
	defer t.conns.Done()
	websocket.Server{
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			// Asterisk asks for subprotocol "ari" and checks the answer.
			if len(cfg.Protocol) > 0 {
				if !slices.Contains(cfg.Protocol, "ari") {
					return errors.New("subprotocol ari not offered")
				}
				cfg.Protocol = []string{"ari"}
			}
			return nil
		},
		Handler: func(ws *websocket.Conn) {
			if gc != nil {
				gc.markUpgraded()
			}
			t.serveConn(ws, r.RemoteAddr)
		},
	}.ServeHTTP(w, r)
}

// admit refuses a second call on a per-call websocket, and a call past the
// maximum on a persistent one.
func (t *outbound) admit(app string, live int, hadCall bool) string {
	if strings.HasPrefix(app, t.cfg.Application+":") {
		if hadCall {
			return RefusedPerCallBusy
		}
		return ""
	}
	if live >= t.cfg.MaxCallsPerSocket {
		return RefusedSocketFull
	}
	return ""
}

// accepts says whether a StasisStart's application is ours: the configured
// app (persistent) or "<app>:<channel name>" (per call).
func (t *outbound) accepts(app string) bool {
	return app == t.cfg.Application || strings.HasPrefix(app, t.cfg.Application+":")
}

func (t *outbound) serveConn(ws *websocket.Conn, remote string) {
	ws.MaxPayloadBytes = 1 << 20
	l := &wsLink{ws: ws, timeout: t.cfg.Timeout, pending: map[string]chan restAnswer{}}
	l.onPersistent = func(app string) bool { return app != t.cfg.Application || t.persistentAllowed(l, remote) }
	l.link = t.srv.newLink(l, t.cfg.Application, t.accepts, t.cfg.Log)
	l.link.admit = t.admit
	// A websocket must bring a call: a per-call one its call, or it must
	// register as the persistent one, which waits for calls by design.
	idle := time.AfterFunc(t.cfg.NoCallTimeout, func() {
		if !l.link.hadCall.Load() && l.appRegistered() != t.cfg.Application {
			t.guard.noCall.Add(1)
			l.close()
		}
	})
	defer idle.Stop()
	t.mu.Lock()
	t.open[l] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.open, l)
		if l.persistent {
			t.persistent--
		}
		t.mu.Unlock()
		l.close()
		l.failPending()
		l.link.lost()
	}()
	for {
		var data []byte
		if err := websocket.Message.Receive(ws, &data); err != nil {
			return
		}
		l.receive(data, &t.srv.undecodable, t.log)
		wipeFrame(data)
	}
}

// persistentAllowed takes one of the persistent places for l, from
// remote: false (counted; l is to be closed) past MaxPersistent or from a
// source PersistentSources leaves out. An allowed one is pinged for life.
func (t *outbound) persistentAllowed(l *wsLink, remote string) bool {
	if len(t.cfg.PersistentSources) > 0 && !inPrefixes(sourceOf(remote), t.cfg.PersistentSources) {
		t.guard.persistentRefused.Add(1)
		t.log.WithField("source", sourceOf(remote)).Warn("a persistent ARI websocket from a source not in IVRPIN_ARI_PERSISTENT_SOURCES: closed")
		return false
	}
	t.mu.Lock()
	if t.persistent >= t.cfg.MaxPersistent {
		t.mu.Unlock()
		t.guard.persistentRefused.Add(1)
		t.log.WithField("max", t.cfg.MaxPersistent).Warn("a persistent ARI websocket past IVRPIN_ARI_PERSISTENT_MAX: closed")
		return false
	}
	t.persistent++
	l.persistent = true
	t.mu.Unlock()
	go t.pingUntilClosed(l)
	return true
}

// pingUntilClosed asks the persistent websocket l for ARI's ping every
// PingInterval; one that does not answer within Timeout is closed: a
// persistent websocket waits for calls by design, so only its answers
// show that Asterisk is still behind it.
func (t *outbound) pingUntilClosed(l *wsLink) {
	tick := time.NewTicker(t.cfg.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-t.srv.life.Done():
			return
		}
		if l.isClosed() {
			return
		}
		if err := l.do(t.srv.life, "GET", "asterisk/ping", nil, nil); err != nil {
			if l.isClosed() || t.srv.life.Err() != nil {
				return
			}
			t.guard.noLife.Add(1)
			t.log.WithError(err).Warn("a persistent ARI websocket did not answer its ping: closed")
			l.close()
			return
		}
		t.log.Debug("the persistent ARI websocket answered its ping")
	}
}

// inPrefixes reports whether host is one of the addresses or within one
// of the CIDRs of list.
func inPrefixes(host string, list []string) bool {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, e := range list {
		if p, err := netip.ParsePrefix(e); err == nil && p.Contains(a) {
			return true
		}
		if b, err := netip.ParseAddr(e); err == nil && b.Unmap() == a {
			return true
		}
	}
	return false
}

// wsLink is one outbound websocket: events in, REST over it.
type wsLink struct {
	*link
	ws      *websocket.Conn
	timeout time.Duration

	wmu    sync.Mutex // one writer at a time
	mu     sync.Mutex
	seq    uint64
	closed bool
	// pending REST requests by request_id.
	pending       map[string]chan restAnswer
	registered    bool
	registeredApp string // the app of the last ApplicationRegistered
	// onPersistent is asked once, when the websocket first registers
	// (false: close it); an allowed persistent one has persistent set.
	onPersistent func(app string) bool
	persistent   bool
}

func (l *wsLink) appRegistered() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.registeredApp
}

type restAnswer struct {
	status int
	body   []byte
}

// envelope is the part of every message read before deciding what it is.
type envelope struct {
	Type        string `json:"type"`
	Application string `json:"application"`
	RequestID   string `json:"request_id"`
	StatusCode  int    `json:"status_code"`
	MessageBody string `json:"message_body"`
}

func (l *wsLink) receive(data []byte, skipped *atomic.Int64, log *logrus.Entry) {
	// Most messages are events: decode them once. Only a message that names
	// one of the types read here pays for the envelope first.
	if !bytes.Contains(data, []byte("RESTResponse")) && !bytes.Contains(data, []byte("ApplicationRe")) {
		if ev := decodeOrCount(data, skipped, log); ev != nil {
			l.link.handle(ev)
		}
		return
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		skipped.Add(1)
		return
	}
	switch env.Type {
	case "RESTResponse":
		l.mu.Lock()
		ch := l.pending[env.RequestID]
		delete(l.pending, env.RequestID)
		l.mu.Unlock()
		if ch != nil {
			ch <- restAnswer{status: env.StatusCode, body: []byte(env.MessageBody)}
		}
	case "ApplicationRegistered", "ApplicationReplaced":
		l.mu.Lock()
		if env.Application != "" {
			l.link.app = env.Application
			l.registeredApp = env.Application
		}
		first := !l.registered
		l.registered = true
		app := l.registeredApp
		l.mu.Unlock()
		if first && l.onPersistent != nil && !l.onPersistent(app) {
			l.close()
			return
		}
		if first {
			go l.srv.filterEvents(l.srv.life, l, app)
		}
		if first && env.Type == "ApplicationRegistered" {
			// A per-call websocket that reconnected (its first instance
			// died) gets no StasisStart: find its call and hand it over.
			go l.reconcileIfIdle()
		}
	default:
		if ev := decodeOrCount(data, skipped, log); ev != nil {
			l.link.handle(ev)
		}
	}
}

// reconcileIfIdle reconciles once the grace has passed if no StasisStart
// came on this websocket.
func (l *wsLink) reconcileIfIdle() {
	t := time.NewTimer(perCallStartGrace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.srv.life.Done():
		return
	}
	if !l.link.started.Load() && !l.isClosed() {
		l.link.reconcile(l.srv.life)
	}
}

func (l *wsLink) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *wsLink) close() {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.mu.Unlock()
	if !already {
		_ = l.ws.Close()
	}
}

func (l *wsLink) failPending() {
	l.mu.Lock()
	p := l.pending
	l.pending = map[string]chan restAnswer{}
	l.mu.Unlock()
	for _, ch := range p {
		close(ch)
	}
}

// errLinkClosed is a REST request on a websocket that has gone.
var errLinkClosed = errors.New("ARI websocket closed")

type queryString struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type restRequest struct {
	Type         string        `json:"type"`
	RequestID    string        `json:"request_id"`
	Method       string        `json:"method"`
	URI          string        `json:"uri"`
	QueryStrings []queryString `json:"query_strings,omitempty"`
	ContentType  string        `json:"content_type,omitempty"`
	MessageBody  string        `json:"message_body,omitempty"`
}

// do sends one RESTRequest and waits for its RESTResponse, the context or
// the request's own deadline, whichever comes first.
func (l *wsLink) do(ctx context.Context, method, path string, q url.Values, out any) error {
	return l.request(ctx, restRequest{Type: "RESTRequest", Method: method, URI: path}, q, out)
}

// doJSON sends body as the RESTRequest's message_body, as JSON.
func (l *wsLink) doJSON(ctx context.Context, method, path string, body []byte) error {
	req := restRequest{Type: "RESTRequest", Method: method, URI: path, ContentType: "application/json", MessageBody: string(body)}
	return l.request(ctx, req, nil, nil)
}

func (l *wsLink) request(ctx context.Context, req restRequest, q url.Values, out any) error {
	method, path := req.Method, req.URI
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	for k, vs := range q {
		for _, v := range vs {
			req.QueryStrings = append(req.QueryStrings, queryString{Name: k, Value: v})
		}
	}
	ch := make(chan restAnswer, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("ARI %s %s: %w", method, path, errLinkClosed)
	}
	l.seq++
	req.RequestID = strconv.FormatUint(l.seq, 10)
	l.pending[req.RequestID] = ch
	l.mu.Unlock()
	forget := func() {
		l.mu.Lock()
		delete(l.pending, req.RequestID)
		l.mu.Unlock()
	}
	msg, err := json.Marshal(req)
	if err != nil {
		forget()
		return err
	}
	if err := l.send(ctx, msg); err != nil {
		forget()
		return fmt.Errorf("ARI %s %s: %w", method, path, err)
	}
	select {
	case a, ok := <-ch:
		if !ok {
			return fmt.Errorf("ARI %s %s: %w", method, path, errLinkClosed)
		}
		if a.status < 200 || a.status > 299 {
			return answerError(method, path, a.status, a.body)
		}
		defer wipeFrame(a.body) // an answer can hold a variable (a transferred card number)
		if out != nil && len(a.body) > 0 {
			return json.Unmarshal(a.body, out)
		}
		return nil
	case <-ctx.Done():
		forget()
		return fmt.Errorf("ARI %s %s: %w", method, path, ctx.Err())
	}
}

// send writes one message with a write deadline from ctx.
func (l *wsLink) send(ctx context.Context, msg []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if d, ok := ctx.Deadline(); ok {
		_ = l.ws.SetWriteDeadline(d)
	}
	return websocket.Message.Send(l.ws, string(msg))
}
