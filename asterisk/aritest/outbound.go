package aritest

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/websocket"
)

// Outbound makes the server behave as an Asterisk 22 configured with an
// outbound websocket (websocket_client.conf + an ari.conf outbound_websocket
// section): instead of waiting for the app to dial /ari/events, it dials the
// app, subprotocol "ari", with HTTP basic auth, and answers RESTRequest
// messages on that websocket with RESTResponse. Per call (the default), each
// call opens its own websocket and its application is "<app>:<channel
// name>"; persistent, one websocket carries every call of the app.
type Outbound struct {
	URL                string // ws://127.0.0.1:port/ari
	Username, Password string
	Persistent         bool
	// TLS verifies the line's certificate on a wss URL (Asterisk's
	// tls_enabled = yes with ca_list_file).
	TLS *tls.Config
}

// SetOutbound switches the server to outbound websockets (nil: back to
// inbound).
func (s *Server) SetOutbound(o *Outbound) {
	s.mu.Lock()
	s.outbound = o
	s.mu.Unlock()
}

func (s *Server) outboundTarget() *Outbound {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outbound
}

// ErrStasisFailed is PlaceCall's error when the app's websocket could not
// be opened (Asterisk fails Stasis() and the dialplan goes on).
var ErrStasisFailed = errors.New("stasis: outbound websocket could not connect")

// dialOutbound opens one websocket to the app, as res_websocket_client does.
func (s *Server) dialOutbound(o *Outbound) (*wsConn, error) {
	cfg, err := websocket.NewConfig(o.URL, "http://localhost")
	if err == nil && o.TLS != nil {
		cfg.TlsConfig = o.TLS
	}
	if err != nil {
		return nil, err
	}
	cfg.Protocol = []string{"ari"}
	cfg.Header = http.Header{}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(o.Username+":"+o.Password)))
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStasisFailed, err)
	}
	return &wsConn{ws: ws, done: make(chan struct{}), outbound: true}, nil
}

// attach registers c as app's connection and serves its REST requests until
// it closes; onClose runs after.
func (s *Server) attach(app string, c *wsConn, onClose func()) {
	s.mu.Lock()
	old := s.apps[app]
	s.apps[app] = c
	close(s.regWait)
	s.regWait = make(chan struct{})
	s.mu.Unlock()
	if old != nil && old != c {
		old.close()
	}
	s.connWG.Add(1)
	go func() {
		defer s.connWG.Done()
		for {
			var msg []byte
			if err := websocket.Message.Receive(c.ws, &msg); err != nil {
				break
			}
			// In line, one at a time, as Asterisk does: its session thread
			// reads a message and answers it before reading the next
			// (res/ari/ari_websockets.c, session_read then
			// ari_websocket_process_request).
			s.restOverWebsocket(c, msg)
		}
		s.mu.Lock()
		if s.apps[app] == c {
			delete(s.apps, app)
		}
		s.mu.Unlock()
		c.close()
		if onClose != nil {
			onClose()
		}
	}()
}

type restRequestMsg struct {
	Type          string `json:"type"`
	TransactionID string `json:"transaction_id"`
	RequestID     string `json:"request_id"`
	Method        string `json:"method"`
	URI           string `json:"uri"`
	QueryStrings  []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"query_strings"`
	MessageBody string `json:"message_body"`
	ContentType string `json:"content_type"`
}

// restOverWebsocket answers one RESTRequest through the same routes HTTP
// requests take (so the REST log and every answer are the same), with the
// RESTResponse shape of res/ari/ari_websocket_requests.c: message_body is
// the JSON answer as a string.
func (s *Server) restOverWebsocket(c *wsConn, msg []byte) {
	var req restRequestMsg
	resp := map[string]any{"type": "RESTResponse"}
	if err := json.Unmarshal(msg, &req); err != nil || req.Type != "RESTRequest" || req.URI == "" || req.Method == "" {
		resp["status_code"], resp["reason_phrase"] = 400, "Bad request"
		resp["transaction_id"], resp["request_id"], resp["uri"] = req.TransactionID, req.RequestID, req.URI
		b, _ := json.Marshal(resp)
		_ = c.send(b)
		return
	}
	path, rawQuery, _ := strings.Cut(req.URI, "?")
	q, _ := url.ParseQuery(rawQuery)
	for _, kv := range req.QueryStrings {
		q.Add(kv.Name, kv.Value)
	}
	u, err := url.Parse("/ari/" + strings.TrimPrefix(path, "/"))
	if err != nil {
		u = &url.URL{Path: "/ari/"}
	}
	u.RawQuery = q.Encode()
	var body *strings.Reader
	if req.MessageBody != "" {
		body = strings.NewReader(req.MessageBody)
	} else {
		body = strings.NewReader("")
	}
	hr, _ := http.NewRequest(req.Method, u.String(), body)
	if req.ContentType != "" {
		hr.Header.Set("Content-Type", req.ContentType)
	}
	hr.SetBasicAuth(s.opts.Username, s.opts.Password) // local_ari_user
	rec := httptest.NewRecorder()
	s.serveHTTP(rec, hr)
	resp["transaction_id"], resp["request_id"], resp["uri"] = req.TransactionID, req.RequestID, req.URI
	resp["status_code"], resp["reason_phrase"] = rec.Code, http.StatusText(rec.Code)
	if b := strings.TrimSpace(rec.Body.String()); b != "" {
		resp["content_type"], resp["message_body"] = "application/json", b
	}
	b, _ := json.Marshal(resp)
	_ = c.send(b)
}

// placeOutbound opens the call's websocket (per call) or makes sure the
// persistent one is up, then registers ch's application on it.
func (s *Server) placeOutbound(o *Outbound, ch *Channel) error {
	if o.Persistent {
		if !s.Connected(ch.App) {
			c, err := s.dialOutbound(o)
			if err != nil {
				return err
			}
			s.attach(ch.App, c, nil)
			s.emit(ch.App, map[string]any{"type": "ApplicationRegistered"})
		}
		return nil
	}
	ch.App = ch.App + ":" + ch.Name
	c, err := s.dialOutbound(o)
	if err != nil {
		return err
	}
	s.attach(ch.App, c, func() { s.perCallLost(o, ch) })
	s.emit(ch.App, map[string]any{"type": "ApplicationRegistered"})
	return nil
}

// perCallLost is Asterisk's answer to a per-call websocket that closed
// while its channel is still in Stasis: dial again (through a load balancer
// that reaches another instance), announce the app but send no
// StasisStart; if that fails, the channel returns to the dialplan.
func (s *Server) perCallLost(o *Outbound, ch *Channel) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || !ch.inStasis() {
		return
	}
	c, err := s.dialOutbound(o)
	if err != nil {
		ch.end(endContinue, 0, nil)
		return
	}
	s.attach(ch.App, c, func() { s.perCallLost(o, ch) })
	s.emit(ch.App, map[string]any{"type": "ApplicationRegistered"})
}

// closePerCall closes a per-call websocket a while after StasisEnd, as
// Asterisk does (3 s, scaled), so late events still arrive.
func (s *Server) closePerCall(ch *Channel) {
	if s.outboundTarget() == nil || !strings.Contains(ch.App, ":") {
		return
	}
	s.mu.Lock()
	c := s.apps[ch.App]
	delete(s.apps, ch.App)
	s.mu.Unlock()
	if c == nil {
		return
	}
	wait := time.Duration(float64(3*time.Second) * s.opts.PlaybackScale)
	time.AfterFunc(wait, c.close)
}
