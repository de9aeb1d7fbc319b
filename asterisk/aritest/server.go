// Package aritest is an ARI test server: it speaks Asterisk's REST routes and
// its /ari/events WebSocket with the JSON shapes a real Asterisk 22 sends
// (see ../shared/ari-fixtures), so the application under test talks to it
// through the real ari/v5 native client. A test places calls into the app,
// presses keys with chosen timing, lets prompts play for realistic (scaled)
// durations, hangs up at any point, sends event types ari/v5 cannot decode,
// drops the WebSocket or restarts the whole server, and then asserts on what
// was played and on every REST request the app made.
//
// It binds to 127.0.0.1 only. It is a test peer, also used by the console;
// production code never depends on it.
package aritest

import (
	"cmp"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/websocket"
)

// Options configure the server. Zero values take the defaults shown.
type Options struct {
	Username string // "ivr-pin"
	Password string // "aritest-password-0001"
	// Addr is the listen address ("127.0.0.1:0"); it must be loopback.
	Addr string
	// PlaybackScale multiplies every prompt's duration (1 = real time; tests
	// use 0.01 or less).
	PlaybackScale float64
	// Duration gives a media URI's real-time length. The default takes 1.8 s
	// for a sound and 0.45 s per digit read back.
	Duration func(mediaURI string) time.Duration
	// SoundExists says whether a sound: URI exists (default: all do). A
	// missing sound plays as PlaybackStarted then PlaybackFinished "failed".
	SoundExists func(name string) bool
	// AnnounceRegistration sends ApplicationRegistered when an app connects
	// (ari/v5 v5.3.1 cannot decode it). Off by default: Asterisk 22.10.1
	// sends none on an inbound events connection (measured with the real
	// Asterisk: asterisk/asterisktest, and none in ../shared/ari-fixtures);
	// it sends one first on an outbound websocket.
	AnnounceRegistration bool
	// OnPlay is called when a playback starts (the console prints prompts
	// from it).
	OnPlay func(ch *Channel, mediaURI string)
	// EntityID is the asterisk_id on every event.
	EntityID string
	// TLS, when set, serves https and wss (Asterisk's http.conf tlsenable).
	TLS *tls.Config
}

// Server is a running ARI test server.
type Server struct {
	opts Options
	// URL is the ARI base URL (http://127.0.0.1:port/ari) and WSURL the
	// events URL.
	URL, WSURL string

	addr    string
	mu      sync.Mutex
	httpSrv *http.Server
	ln      net.Listener
	apps    map[string]*wsConn
	chans   map[string]*Channel
	pbs     map[string]*playback
	log     []RESTEntry
	seq     atomic.Int64
	connWG  sync.WaitGroup
	closed  bool
	regWait chan struct{} // closed and replaced on every app (re)connection
	// outbound, when set, makes the server dial the app (see Outbound).
	outbound *Outbound
}

// RESTEntry is one REST request the app made.
type RESTEntry struct {
	Method, Path, Query string
	Body                string
	Status              int
	Time                time.Time
}

// ErrNoApp is returned when a call is placed to an app that is not connected
// (Asterisk's Stasis() fails the same way).
var ErrNoApp = errors.New("stasis application is not connected")

// Start listens and serves.
func Start(opts Options) (*Server, error) {
	opts.Username = cmp.Or(opts.Username, "ivr-pin")
	opts.Password = cmp.Or(opts.Password, "aritest-password-0001")
	opts.Addr = cmp.Or(opts.Addr, "127.0.0.1:0")
	if opts.PlaybackScale <= 0 {
		opts.PlaybackScale = 1
	}
	if opts.Duration == nil {
		opts.Duration = DefaultDuration
	}
	if opts.SoundExists == nil {
		opts.SoundExists = func(string) bool { return true }
	}
	opts.EntityID = cmp.Or(opts.EntityID, "02:fc:00:00:00:01")
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, errors.New("the ARI test server listens on loopback only")
	}
	s := &Server{opts: opts, apps: map[string]*wsConn{}, chans: map[string]*Channel{}, pbs: map[string]*playback{},
		regWait: make(chan struct{})}
	if err := s.listen(opts.Addr); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	s.URL = "http://" + s.addr + "/ari"
	s.WSURL = "ws://" + s.addr + "/ari/events"
	if s.opts.TLS != nil {
		ln = tls.NewListener(ln, s.opts.TLS)
		s.URL = "https://" + s.addr + "/ari"
		s.WSURL = "wss://" + s.addr + "/ari/events"
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.ln, s.httpSrv = ln, srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// DefaultDuration is 1.8 s for a sound and 0.45 s per digit read back.
func DefaultDuration(uri string) time.Duration {
	if d, ok := strings.CutPrefix(uri, "digits:"); ok {
		return time.Duration(len(d)) * 450 * time.Millisecond
	}
	return 1800 * time.Millisecond
}

// Close stops the server: sockets close, calls vanish.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	srv := s.httpSrv
	s.mu.Unlock()
	s.DropWebSockets()
	_ = srv.Close()
	s.connWG.Wait()
	s.mu.Lock()
	chans := s.chans
	s.chans = map[string]*Channel{}
	s.mu.Unlock()
	for _, ch := range chans {
		ch.vanish()
	}
}

// Restart simulates an Asterisk restart: every socket drops, every call
// vanishes without events, nothing answers for down, then the server listens
// again on the same address.
func (s *Server) Restart(down time.Duration) error {
	s.mu.Lock()
	srv := s.httpSrv
	chans := s.chans
	s.chans = map[string]*Channel{}
	s.pbs = map[string]*playback{}
	s.mu.Unlock()
	// Calls vanish first: a per-call websocket that then drops is not
	// dialled again (the channel is gone with the restart).
	for _, ch := range chans {
		ch.vanish()
	}
	s.DropWebSockets()
	_ = srv.Close()
	time.Sleep(down)
	return s.listen(s.addr)
}

// DropWebSockets closes every events connection, as a network fault does.
func (s *Server) DropWebSockets() {
	s.mu.Lock()
	conns := make([]*wsConn, 0, len(s.apps))
	for name, c := range s.apps {
		conns = append(conns, c)
		delete(s.apps, name)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// Connected reports whether app has an events connection.
func (s *Server) Connected(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.apps[app]
	return ok
}

// WaitConnected waits (bounded) until app is connected.
func (s *Server) WaitConnected(app string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		_, ok := s.apps[app]
		wait := s.regWait
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-wait:
		case <-deadline.C:
			return fmt.Errorf("app %q did not connect within %s", app, timeout)
		}
	}
}

// RESTLog returns every REST request made so far.
func (s *Server) RESTLog() []RESTEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RESTEntry(nil), s.log...)
}

// Channels returns the calls currently in the server.
func (s *Server) Channels() []*Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Channel, 0, len(s.chans))
	for _, c := range s.chans {
		out = append(out, c)
	}
	return out
}

// SendRaw sends a raw event document to app, as Asterisk would send an event
// type the client may not know.
func (s *Server) SendRaw(app string, doc []byte) error {
	s.mu.Lock()
	c := s.apps[app]
	s.mu.Unlock()
	if c == nil {
		return ErrNoApp
	}
	return c.send(doc)
}

// emit sends an event to app, adding the envelope fields Asterisk adds.
func (s *Server) emit(app string, ev map[string]any) {
	ev["timestamp"] = stamp(time.Now())
	ev["asterisk_id"] = s.opts.EntityID
	ev["application"] = app
	s.mu.Lock()
	c := s.apps[app]
	s.mu.Unlock()
	if c == nil {
		return
	}
	if t, _ := ev["type"].(string); !c.allows(t) {
		return
	}
	b, _ := json.Marshal(ev)
	_ = c.send(b)
}

func stamp(t time.Time) string { return t.Format("2006-01-02T15:04:05.000-0700") }

// wsConn is one app's events connection; writes are serialised.
type wsConn struct {
	outbound bool // dialled by us (outbound websocket)
	mu       sync.Mutex
	ws       *websocket.Conn
	closed   bool
	done     chan struct{}
	// The app's event filter (PUT /applications/{app}/eventFilter), kept
	// with the connection: a new connection starts without one (Asterisk
	// keeps it with the application, which a per-call websocket makes anew).
	allowed, disallowed []string
}

// allows applies the event filter as res/stasis/app.c's
// stasis_app_event_allowed does: not disallowed, and allowed when an
// allowed list is set.
func (c *wsConn) allows(eventType string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.Contains(c.disallowed, eventType) {
		return false
	}
	return len(c.allowed) == 0 || slices.Contains(c.allowed, eventType)
}

func (c *wsConn) send(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("closed")
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return websocket.Message.Send(c.ws, string(b))
}

func (c *wsConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		_ = c.ws.Close()
		close(c.done)
	}
}

// ---- HTTP ----

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) authorised(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	if !ok {
		if k := r.URL.Query().Get("api_key"); k != "" {
			u, p, ok = strings.Cut(k, ":")
		}
	}
	return ok && u == s.opts.Username && p == s.opts.Password
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func message(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

// params merges query parameters and a JSON body, as Asterisk accepts both.
func params(r *http.Request, body []byte) url.Values {
	v := r.URL.Query()
	if len(body) > 0 {
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			for k, val := range m {
				switch x := val.(type) {
				case string:
					v.Set(k, x)
				case float64:
					v.Set(k, strconv.FormatFloat(x, 'f', -1, 64))
				case bool:
					v.Set(k, strconv.FormatBool(x))
				}
			}
		}
	}
	return v
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, "/ari/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if path == "events" {
		s.serveEvents(w, r)
		return
	}
	// The whole body, bounded (one Read may return part of it); a 64 KiB
	// buffer per request was a tenth of the load driver's CPU in a burst.
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(r.Body, 64<<10))
	}
	rec := &recorder{ResponseWriter: w, status: 200}
	defer func() {
		s.mu.Lock()
		s.log = append(s.log, RESTEntry{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body), Status: rec.status, Time: time.Now()})
		s.mu.Unlock()
	}()
	if !s.authorised(r) {
		rec.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
		message(rec, http.StatusUnauthorized, "Authentication required")
		return
	}
	s.route(rec, r, segments(r.URL), params(r, body), body)
}

// segments splits the path after /ari/ as Asterisk does: split on "/"
// first, then decode each segment, so an application named
// "ivr-pin:PJSIP/x" travels as ivr-pin:PJSIP%2Fx.
func segments(u *url.URL) []string {
	raw := strings.TrimPrefix(u.EscapedPath(), "/ari/")
	parts := strings.Split(strings.Trim(raw, "/"), "/")
	for i, p := range parts {
		if d, err := url.PathUnescape(p); err == nil {
			parts[i] = d
		}
	}
	return parts
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, p []string, q url.Values, body []byte) {
	switch {
	case len(p) == 3 && p[0] == "applications" && p[2] == "eventFilter" && r.Method == http.MethodPut:
		s.setEventFilter(w, p[1], body)
	case len(p) == 2 && p[0] == "asterisk" && p[1] == "info" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{
			"build":  map[string]any{"os": "Linux", "kernel": "6.1.0", "machine": "x86_64", "user": "asterisk", "date": "2026-11-01 00:00:00 UTC"},
			"system": map[string]any{"version": "22.10.1", "entity_id": s.opts.EntityID},
			"config": map[string]any{"name": "", "default_language": "en", "setid": map[string]any{"user": "asterisk", "group": "asterisk"}},
			"status": map[string]any{"startup_time": stamp(time.Now()), "last_reload_time": stamp(time.Now())},
		})
	case len(p) == 2 && p[0] == "asterisk" && p[1] == "ping":
		writeJSON(w, 200, map[string]any{"asterisk_id": s.opts.EntityID, "ping": "pong", "timestamp": stamp(time.Now())})
	case len(p) == 1 && p[0] == "applications" && r.Method == http.MethodGet:
		s.mu.Lock()
		list := []any{}
		for name := range s.apps {
			list = append(list, s.appJSON(name))
		}
		s.mu.Unlock()
		writeJSON(w, 200, list)
	case len(p) == 2 && p[0] == "applications" && r.Method == http.MethodGet:
		s.mu.Lock()
		_, ok := s.apps[p[1]]
		var doc map[string]any
		if ok {
			doc = s.appJSON(p[1])
		}
		s.mu.Unlock()
		if !ok {
			message(w, 404, "Application not found")
			return
		}
		writeJSON(w, 200, doc)
	case len(p) == 3 && p[0] == "applications" && p[2] == "subscription" && r.Method == http.MethodPost:
		id, _ := strings.CutPrefix(q.Get("eventSource"), "channel:")
		ch := s.channel(id)
		if ch == nil {
			message(w, 422, "Event source does not exist")
			return
		}
		ch.mu.Lock()
		ch.subscribed = true
		ch.mu.Unlock()
		s.mu.Lock()
		doc := s.appJSON(p[1])
		s.mu.Unlock()
		writeJSON(w, 200, doc)
	case len(p) == 1 && p[0] == "channels" && r.Method == http.MethodGet:
		list := []any{}
		for _, ch := range s.Channels() {
			if ch.inStasis() {
				list = append(list, ch.json())
			}
		}
		writeJSON(w, 200, list)
	case len(p) >= 2 && p[0] == "channels":
		s.channelRoute(w, r, p[1:], q)
	case len(p) == 2 && p[0] == "playbacks":
		s.playbackRoute(w, r, p[1])
	case len(p) == 2 && p[0] == "sounds" && r.Method == http.MethodGet:
		if !s.opts.SoundExists(p[1]) {
			message(w, 404, "Sound not found")
			return
		}
		writeJSON(w, 200, map[string]any{"id": p[1], "formats": []any{map[string]string{"language": "en", "format": "ulaw"}}})
	default:
		message(w, 404, "Resource not found")
	}
}

// setEventFilter is PUT /applications/{app}/eventFilter: a body of
// {"allowed": [{"type": T}], "disallowed": [...]} sets the lists it names
// (an empty object clears both), each entry must name a type, and the
// answer is the application, as resource_applications.c answers.
func (s *Server) setEventFilter(w http.ResponseWriter, app string, body []byte) {
	s.mu.Lock()
	c := s.apps[app]
	s.mu.Unlock()
	if c == nil {
		message(w, 404, "Application not found")
		return
	}
	var f map[string][]struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(body, &f) != nil {
		message(w, 400, "Invalid format definition")
		return
	}
	lists := map[string][]string{}
	for _, kind := range []string{"allowed", "disallowed"} {
		for _, e := range f[kind] {
			if e.Type == "" {
				message(w, 400, "Invalid format definition")
				return
			}
			lists[kind] = append(lists[kind], e.Type)
		}
	}
	c.mu.Lock()
	for kind, list := range map[string]*[]string{"allowed": &c.allowed, "disallowed": &c.disallowed} {
		if _, named := f[kind]; named || len(f) == 0 {
			*list = lists[kind]
		}
	}
	c.mu.Unlock()
	s.mu.Lock()
	doc := s.appJSON(app)
	s.mu.Unlock()
	writeJSON(w, 200, doc)
}

// EventFilter is what app's event filter holds now (nil, nil: none).
func (s *Server) EventFilter(app string) (allowed, disallowed []string) {
	s.mu.Lock()
	c := s.apps[app]
	s.mu.Unlock()
	if c == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.allowed), slices.Clone(c.disallowed)
}

func (s *Server) appJSON(name string) map[string]any {
	ids := []string{}
	for id, ch := range s.chans {
		if ch.App == name {
			ids = append(ids, id)
		}
	}
	allowed, disallowed := []any{}, []any{}
	if c := s.apps[name]; c != nil {
		c.mu.Lock()
		for _, t := range c.allowed {
			allowed = append(allowed, map[string]string{"type": t})
		}
		for _, t := range c.disallowed {
			disallowed = append(disallowed, map[string]string{"type": t})
		}
		c.mu.Unlock()
	}
	return map[string]any{"name": name, "channel_ids": ids, "bridge_ids": []string{}, "endpoint_ids": []string{},
		"device_names": []string{}, "events_allowed": allowed, "events_disallowed": disallowed}
}

func (s *Server) channel(id string) *Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chans[id]
}

func (s *Server) channelRoute(w http.ResponseWriter, r *http.Request, p []string, q url.Values) {
	ch := s.channel(p[0])
	if ch == nil || !ch.inStasis() {
		message(w, 404, "Channel not found")
		return
	}
	op := ""
	if len(p) > 1 {
		op = p[1]
	}
	switch {
	case op == "" && r.Method == http.MethodGet:
		writeJSON(w, 200, ch.json())
	case op == "" && r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
		go ch.end(endAppHangup, 32, nil)
	case op == "answer" && r.Method == http.MethodPost:
		ch.answer()
		w.WriteHeader(http.StatusNoContent)
	case op == "ring" || op == "ring_stop":
		w.WriteHeader(http.StatusNoContent)
	case op == "play" && r.Method == http.MethodPost:
		id := q.Get("playbackId")
		if len(p) > 2 {
			id = p[2]
		}
		media := q.Get("media")
		if media == "" {
			message(w, 500, "Failed to queue media for playback")
			return
		}
		id = cmp.Or(id, fmt.Sprintf("%x-%x", time.Now().UnixNano(), s.seq.Add(1)))
		pb := ch.queuePlayback(id, media, q.Get("lang"))
		writeJSON(w, 201, pb.json("queued"))
	case op == "continue" && r.Method == http.MethodPost:
		prio, _ := strconv.Atoi(q.Get("priority"))
		t := Target{Context: q.Get("context"), Extension: q.Get("extension"), Priority: prio, Label: q.Get("label")}
		w.WriteHeader(http.StatusNoContent)
		go ch.end(endContinue, 0, &t)
	case op == "variable" && r.Method == http.MethodGet:
		name := q.Get("variable")
		if name == "" {
			message(w, 400, "Variable name is required")
			return
		}
		v, ok := ch.variable(name)
		if !ok {
			message(w, 404, "Provided variable was not found")
			return
		}
		writeJSON(w, 200, map[string]string{"value": v})
	case op == "variable" && r.Method == http.MethodPost:
		name := q.Get("variable")
		if name == "" {
			message(w, 400, "Variable name is required")
			return
		}
		ch.setVariable(name, q.Get("value"))
		w.WriteHeader(http.StatusNoContent)
	case op == "dtmf" && r.Method == http.MethodPost:
		if q.Get("dtmf") == "" {
			message(w, 400, "DTMF is required")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		message(w, 404, "Resource not found")
	}
}

func (s *Server) playbackRoute(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	pb := s.pbs[id]
	s.mu.Unlock()
	if pb == nil {
		message(w, 404, "Playback not found")
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, 200, pb.json(pb.stateNow()))
	case http.MethodDelete:
		pb.stop()
		w.WriteHeader(http.StatusNoContent)
	default:
		message(w, 405, "Method not allowed")
	}
}

// serveEvents upgrades to the events WebSocket after the checks Asterisk
// makes: credentials (401) and an app name (400).
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: 101}
	logEntry := func() {
		s.mu.Lock()
		s.log = append(s.log, RESTEntry{Method: "GET(websocket-upgrade)", Path: r.URL.Path, Query: redactAPIKey(r.URL.Query()), Status: rec.status, Time: time.Now()})
		s.mu.Unlock()
	}
	if !s.authorised(r) {
		rec.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
		message(rec, http.StatusUnauthorized, "Authentication required")
		logEntry()
		return
	}
	apps := strings.Split(r.URL.Query().Get("app"), ",")
	if apps[0] == "" {
		rec.Header().Set("Content-Type", "text/html")
		rec.WriteHeader(http.StatusBadRequest)
		_, _ = rec.Write([]byte("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\r\n<html><head>\r\n<title>400 Bad Request</title>\r\n</head><body>\r\n<h1>Bad Request</h1>\r\n<p>HTTP request is missing param: [app]</p>\r\n</body></html>\r\n"))
		logEntry()
		return
	}
	logEntry()
	s.connWG.Add(1)
	defer s.connWG.Done()
	websocket.Server{Handshake: func(*websocket.Config, *http.Request) error { return nil }, Handler: func(ws *websocket.Conn) {
		c := &wsConn{ws: ws, done: make(chan struct{})}
		s.mu.Lock()
		if s.closed {
			// Close has already dropped every socket it knew: one that
			// upgraded since (a client reconnecting with a near-zero
			// backoff) must not be left for Close to wait on for ever
			// (http.Server.Close does not close hijacked connections).
			s.mu.Unlock()
			return
		}
		var replaced []*wsConn
		for _, a := range apps {
			if old := s.apps[a]; old != nil {
				replaced = append(replaced, old)
			}
			s.apps[a] = c
		}
		close(s.regWait)
		s.regWait = make(chan struct{})
		s.mu.Unlock()
		for _, old := range replaced {
			old.close() // a second connection for the same app replaces the first
		}
		if s.opts.AnnounceRegistration {
			for _, a := range apps {
				s.emit(a, map[string]any{"type": "ApplicationRegistered"})
			}
		}
		// Read until the client goes away (the client sends nothing we need).
		go func() {
			var discard string
			for websocket.Message.Receive(ws, &discard) == nil {
			}
			s.mu.Lock()
			for _, a := range apps {
				if s.apps[a] == c {
					delete(s.apps, a)
				}
			}
			s.mu.Unlock()
			c.close()
		}()
		<-c.done
	}}.ServeHTTP(w, r)
}

func redactAPIKey(q url.Values) string {
	if k := q.Get("api_key"); k != "" {
		u, _, _ := strings.Cut(k, ":")
		q.Set("api_key", u+":xxxxx")
	}
	return q.Encode()
}
