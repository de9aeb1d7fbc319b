package ivr

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	return &outbound{cfg: cfg, log: cfg.Log.WithField("component", "ari-outbound")}
}

type outbound struct {
	cfg OutboundConfig
	log *logrus.Entry
	srv *Server

	ln        net.Listener
	errLog    io.Closer
	addr      atomic.Value // string, once listening
	http      *http.Server
	listening atomic.Bool
	conns     sync.WaitGroup
	mu        sync.Mutex
	open      map[*wsLink]struct{}
	refused   atomic.Int64
}

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
		return fmt.Errorf("IVRPIN_ARI_LISTEN: %w", err)
	}
	if t.cfg.TLSCert != "" || t.cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(t.cfg.TLSCert, t.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("IVRPIN_ARI_LISTEN_TLS_CERT/_KEY: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ari", t.upgrade)
	t.ln = ln
	t.addr.Store(ln.Addr().String())
	// The HTTP server's own complaints (a failed TLS handshake, a client
	// speaking plain HTTP to TLS) go to our log, not to stderr unformatted.
	errLog := t.log.WriterLevel(logrus.DebugLevel)
	t.errLog = errLog
	t.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: stdlog.New(errLog, "", 0)}
	t.listening.Store(true)
	return nil
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
	_ = t.errLog.Close()
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

// authorised checks HTTP basic auth in constant time (both fields always
// compared).
func (t *outbound) authorised(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	userOK := subtle.ConstantTimeCompare([]byte(u), []byte(t.cfg.Username))
	passOK := subtle.ConstantTimeCompare([]byte(p), []byte(t.cfg.Password))
	return ok && userOK&passOK == 1
}

func (t *outbound) upgrade(w http.ResponseWriter, r *http.Request) {
	if !t.authorised(r) {
		t.refused.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="ivr-pin"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		t.log.WithField("remote", r.RemoteAddr).Warn("refused an ARI websocket: wrong or missing credentials")
		return
	}
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
		Handler: t.serveConn,
	}.ServeHTTP(w, r)
}

// accepts says whether a StasisStart's application is ours: the configured
// app (persistent) or "<app>:<channel name>" (per call).
func (t *outbound) accepts(app string) bool {
	return app == t.cfg.Application || strings.HasPrefix(app, t.cfg.Application+":")
}

func (t *outbound) serveConn(ws *websocket.Conn) {
	ws.MaxPayloadBytes = 1 << 20
	l := &wsLink{ws: ws, timeout: t.cfg.Timeout, pending: map[string]chan restAnswer{}}
	l.link = t.srv.newLink(l, t.cfg.Application, t.accepts, t.cfg.Log)
	t.mu.Lock()
	t.open[l] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.open, l)
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
	}
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
	pending    map[string]chan restAnswer
	registered bool
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
		if env.Application != "" {
			l.link.app = env.Application
		}
		l.mu.Lock()
		first := !l.registered
		l.registered = true
		l.mu.Unlock()
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
	t := time.NewTimer(reconcileGrace)
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
}

// do sends one RESTRequest and waits for its RESTResponse, the context or
// the request's own deadline, whichever comes first.
func (l *wsLink) do(ctx context.Context, method, path string, q url.Values, out any) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	req := restRequest{Type: "RESTRequest", Method: method, URI: path}
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
