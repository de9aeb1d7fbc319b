package aritest

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

const fixtures = "../../../shared/ari-fixtures"

// keys lists the JSON paths of a document ("channel.dialplan.app_name").
func keys(prefix string, v any, out map[string]bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	for k, val := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out[p] = true
		keys(p, val, out)
	}
}

func keySet(t *testing.T, doc []byte) map[string]bool {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	keys("", v, out)
	return out
}

// connect opens the events WebSocket as the app, as ari/v5 does.
func connect(t *testing.T, s *Server, app string) *websocket.Conn {
	cfg, err := websocket.NewConfig(s.WSURL+"?app="+app, "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header = http.Header{}
	cfg.Header.Set("Authorization", "Basic aXZyLXBpbjphcml0ZXN0LXBhc3N3b3JkLTAwMDE=") // ivr-pin:aritest-password-0001
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitConnected(app, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return ws
}

func rest(t *testing.T, s *Server, method, path string, q url.Values) int {
	return restJSON(t, s, method, path, q, "")
}

// restJSON is rest with a JSON body ("" for none).
func restJSON(t *testing.T, s *Server, method, path string, q url.Values, body string) int {
	req, _ := http.NewRequest(method, s.URL+path+"?"+q.Encode(), strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth("ivr-pin", "aritest-password-0001")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestEventsHaveAsterisksShape drives one call and compares every event the
// server sends, field for field, with the events recorded from Asterisk
// 22.10.1 in shared/ari-fixtures.
func TestEventsHaveAsterisksShape(t *testing.T) {
	if _, err := os.Stat(fixtures); err != nil {
		t.Skip("shared/ari-fixtures is not beside the checkout")
	}
	s, err := Start(Options{PlaybackScale: 0.001, SoundExists: func(n string) bool { return n != "missing" }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws := connect(t, s, "ivr-pin")
	defer ws.Close()
	got := map[string][]byte{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var b []byte
			if websocket.Message.Receive(ws, &b) != nil {
				return
			}
			var e struct{ Type string }
			_ = json.Unmarshal(b, &e)
			if _, seen := got[e.Type]; !seen {
				got[e.Type] = b
			}
			if e.Type == "StasisEnd" {
				return
			}
		}
	}()
	ch, err := s.PlaceCall(CallOptions{Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if rest(t, s, "POST", "/channels/"+ch.ID+"/answer", nil) != 204 {
		t.Fatal("answer")
	}
	if rest(t, s, "POST", "/channels/"+ch.ID+"/play", url.Values{"media": {"sound:hello-world"}, "playbackId": {"pb-1"}}) != 201 {
		t.Fatal("play")
	}
	if err := ch.WaitPlayed(time.Second, "hello-world", 1); err != nil {
		t.Fatal(err)
	}
	if rest(t, s, "POST", "/channels/"+ch.ID+"/variable", url.Values{"variable": {"X"}, "value": {"1"}}) != 204 {
		t.Fatal("variable")
	}
	_ = ch.Press("1", 0)
	time.Sleep(20 * time.Millisecond)
	ch.Hangup()
	<-done

	for _, typ := range []string{"StasisStart", "ChannelStateChange", "PlaybackStarted", "PlaybackFinished", "ChannelVarset", "ChannelDtmfReceived", "ChannelHangupRequest", "StasisEnd"} {
		doc, ok := got[typ]
		if !ok {
			t.Errorf("server never sent %s", typ)
			continue
		}
		want, err := os.ReadFile(filepath.Join(fixtures, typ+"-1.json"))
		if err != nil {
			t.Fatal(err)
		}
		have, need := keySet(t, doc), keySet(t, want)
		var missing, extra []string
		for k := range need {
			if !have[k] {
				missing = append(missing, k)
			}
		}
		for k := range have {
			if !need[k] {
				extra = append(extra, k)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing)+len(extra) > 0 {
			t.Errorf("%s: missing %v, extra %v", typ, missing, extra)
		}
	}
}

func TestRESTErrorsMatchAsterisk(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws := connect(t, s, "ivr-pin")
	defer ws.Close()
	cases := []struct {
		name, method, path string
		q                  url.Values
		status             int
	}{
		{"unknown channel", "POST", "/channels/1.99/answer", nil, 404},
		{"unknown playback", "DELETE", "/playbacks/no-such-playback", nil, 404},
		{"app info", "GET", "/applications/ivr-pin", nil, 200},
		{"asterisk info", "GET", "/asterisk/info", nil, 200},
	}
	for _, c := range cases {
		if got := rest(t, s, c.method, c.path, c.q); got != c.status {
			t.Errorf("%s: %d, want %d", c.name, got, c.status)
		}
	}
	ch, _ := s.PlaceCall(CallOptions{})
	if got := rest(t, s, "POST", "/channels/"+ch.ID+"/play", nil); got != 500 {
		t.Errorf("play without media: %d, want 500", got)
	}
	if got := rest(t, s, "POST", "/channels/"+ch.ID+"/dtmf", nil); got != 400 {
		t.Errorf("dtmf without digits: %d, want 400", got)
	}
	// Bad credentials: 401 on REST and on the WebSocket upgrade.
	req, _ := http.NewRequest("GET", s.URL+"/asterisk/info", nil)
	req.SetBasicAuth("ivr-pin", "wrong")
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Asterisk REST Interface") {
		t.Errorf("bad credentials: %d", resp.StatusCode)
	}
	cfg, _ := websocket.NewConfig(s.WSURL+"?app=ivr-pin&api_key=ivr-pin:wrong", "http://localhost/")
	if _, err := websocket.DialConfig(cfg); err == nil {
		t.Error("WebSocket upgrade with a wrong api_key accepted")
	}
	resp, _ = http.Get(strings.Replace(s.WSURL, "ws:", "http:", 1) + "?api_key=ivr-pin:aritest-password-0001")
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("WebSocket without app: %d, want 400", resp.StatusCode)
	}
	// A hung-up channel answers 404 to everything.
	ch.Hangup()
	if got := rest(t, s, "POST", "/channels/"+ch.ID+"/answer", nil); got != 404 {
		t.Errorf("answer after hang-up: %d", got)
	}
}

func TestSecondConnectionReplacesTheFirst(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := connect(t, s, "ivr-pin")
	defer first.Close()
	second := connect(t, s, "ivr-pin")
	defer second.Close()
	_ = first.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b []byte
	if err := websocket.Message.Receive(first, &b); err == nil {
		t.Fatal("the first connection still receives")
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	if _, err := Start(Options{Addr: "0.0.0.0:0"}); err == nil {
		t.Fatal("listened on all interfaces")
	}
}

// TestOutboundSpeaksAsterisksRESTOverWebsocket plays the app's side of an
// outbound per-call websocket: the server (as Asterisk 22) dials with basic
// auth and subprotocol ari, sends ApplicationRegistered then StasisStart
// for "<app>:<channel name>", and answers a RESTRequest with the
// RESTResponse fields of res/ari/ari_websocket_requests.c (message_body a
// JSON string).
func TestOutboundSpeaksAsterisksRESTOverWebsocket(t *testing.T) {
	got := make(chan *websocket.Conn, 1)
	// stop releases every handler before the server closes: Close waits for
	// its readers, and a per-call socket closed by the app is re-dialled
	// (a second handler) before Close begins.
	stop := make(chan struct{})
	var auth, proto string
	mux := http.NewServeMux()
	mux.Handle("/ari", websocket.Server{
		Handshake: func(c *websocket.Config, r *http.Request) error {
			auth = r.Header.Get("Authorization")
			proto = strings.Join(c.Protocol, ",")
			c.Protocol = []string{"ari"}
			return nil
		},
		Handler: func(ws *websocket.Conn) {
			select {
			case got <- ws:
			default:
			}
			<-stop
		},
	})
	app := httptestServer(t, mux)
	s, err := Start(Options{PlaybackScale: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer close(stop)
	s.SetOutbound(&Outbound{URL: "ws://" + app + "/ari", Username: "asterisk", Password: "pw"})
	ch, err := s.PlaceCall(CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ws := <-got
	defer ws.Close()
	if auth != "Basic YXN0ZXJpc2s6cHc=" || proto != "ari" {
		t.Fatalf("auth %q protocol %q", auth, proto)
	}
	read := func() map[string]any {
		var m map[string]any
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := websocket.JSON.Receive(ws, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	first, second := read(), read()
	if first["type"] != "ApplicationRegistered" || second["type"] != "StasisStart" ||
		second["application"] != "ivr-pin:"+ch.Name || ch.App != "ivr-pin:"+ch.Name {
		t.Fatalf("%v / %v", first, second)
	}
	if err := websocket.Message.Send(ws, `{"type":"RESTRequest","transaction_id":"t1","request_id":"r1","method":"GET","uri":"channels/`+ch.ID+`/variable","query_strings":[{"name":"variable","value":"CALLERID(num)"}]}`); err != nil {
		t.Fatal(err)
	}
	var resp map[string]any
	for resp == nil || resp["type"] != "RESTResponse" {
		resp = read()
	}
	want := []string{"content_type", "message_body", "reason_phrase", "request_id", "status_code", "transaction_id", "type", "uri"}
	keys := []string{}
	for k := range resp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != strings.Join(want, ",") || resp["status_code"] != float64(200) || resp["request_id"] != "r1" ||
		resp["transaction_id"] != "t1" || resp["message_body"] != `{"value":"15551230001"}` {
		t.Fatalf("%v", resp)
	}
	// An application name with a "/" travels escaped, as Asterisk decodes
	// each segment after splitting.
	if err := websocket.Message.Send(ws, `{"type":"RESTRequest","request_id":"r2","method":"GET","uri":"applications/`+url.PathEscape(ch.App)+`"}`); err != nil {
		t.Fatal(err)
	}
	for resp["request_id"] != "r2" {
		resp = read()
	}
	if resp["status_code"] != float64(200) || !strings.Contains(resp["message_body"].(string), ch.ID) {
		t.Fatalf("%v", resp)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestEventFilterAsAsteriskAppliesIt: PUT /applications/{app}/eventFilter
// takes {"allowed"/"disallowed": [{"type": T}]} and the app's events obey
// it as res/stasis/app.c's stasis_app_event_allowed does; a bad filter is
// 400 and an unknown app 404, as resource_applications.c answers.
func TestEventFilterAsAsteriskAppliesIt(t *testing.T) {
	s, err := Start(Options{PlaybackScale: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws := connect(t, s, "ivr-pin")
	defer ws.Close()
	put := func(app, body string) int {
		return restJSON(t, s, http.MethodPut, "/applications/"+app+"/eventFilter", nil, body)
	}
	for _, c := range []struct {
		name, app, body string
		status          int
		allowed, denied []string
	}{
		{"unknown app", "nobody", `{"disallowed":[{"type":"PlaybackStarted"}]}`, 404, nil, nil},
		{"an entry without a type", "ivr-pin", `{"disallowed":[{"kind":"PlaybackStarted"}]}`, 400, nil, nil},
		{"disallowed", "ivr-pin", `{"disallowed":[{"type":"PlaybackStarted"}]}`, 200, nil, []string{"PlaybackStarted"}},
		{"allowed keeps disallowed", "ivr-pin", `{"allowed":[{"type":"StasisStart"}]}`, 200, []string{"StasisStart"}, []string{"PlaybackStarted"}},
		{"an empty object clears both", "ivr-pin", `{}`, 200, nil, nil},
		{"disallowed again", "ivr-pin", `{"disallowed":[{"type":"PlaybackStarted"}]}`, 200, nil, []string{"PlaybackStarted"}},
	} {
		if got := put(c.app, c.body); got != c.status {
			t.Fatalf("%s: status %d, want %d", c.name, got, c.status)
		}
		if c.status != 200 {
			continue
		}
		a, d := s.EventFilter("ivr-pin")
		if strings.Join(a, ",") != strings.Join(c.allowed, ",") || strings.Join(d, ",") != strings.Join(c.denied, ",") {
			t.Fatalf("%s: filter allowed %v disallowed %v", c.name, a, d)
		}
	}
	ch, err := s.PlaceCall(CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !slices.Contains(types, "PlaybackFinished") {
		var ev struct{ Type string }
		if err := websocket.JSON.Receive(ws, &ev); err != nil {
			t.Fatalf("after %v: %v", types, err)
		}
		types = append(types, ev.Type)
		if ev.Type == "StasisStart" {
			if rest(t, s, "POST", "/channels/"+ch.ID+"/play/pb-1", url.Values{"media": {"sound:hello"}}) != 201 {
				t.Fatal("play")
			}
		}
	}
	if slices.Contains(types, "PlaybackStarted") {
		t.Fatalf("a disallowed event was sent: %v", types)
	}
}
