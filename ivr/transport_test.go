package ivr_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"
	"golang.org/x/net/websocket"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/testkit/testpki"
	"github.com/ivr-pin/ivr-pin/ivr"
	"github.com/ivr-pin/ivr-pin/ivr/keypad"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// echo is a small handler: it answers, plays a greeting, reads four digits
// and says them back, then hangs up.
func echo(c *ivr.Call) {
	ctx := c.Context()
	if c.Answer(ctx) != nil {
		return
	}
	_ = c.Play(ctx, "sound:hello")
	e, err := c.Collect(ctx, keypad.Spec{Max: 4, FirstDigitTimeout: 5 * time.Second, InterDigitTimeout: time.Second})
	if err != nil {
		return
	}
	_ = c.Say(ctx, "digits:"+string(e.Digits))
	_ = c.Hangup(ctx)
}

// serving runs a server until the test ends.
func serving(t *testing.T, tr ivr.Transport, h ivr.Handler) *ivr.Server {
	t.Helper()
	s, err := ivr.New(ivr.Config{Transport: tr, DrainTimeout: 2 * time.Second, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for !s.Ready() {
		select {
		case err := <-done:
			t.Fatalf("Serve: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

func listenAddr(t *testing.T, tr ivr.Transport) string {
	a, ok := tr.(interface{ Addr() string })
	if !ok || a.Addr() == "" {
		t.Fatal("no listen address")
	}
	return a.Addr()
}

func outboundTransport(extra func(*ivr.OutboundConfig)) ivr.Transport {
	cfg := ivr.OutboundConfig{Listen: "127.0.0.1:0", Username: "asterisk", Password: "s3cret-outbound",
		Application: "ivr-pin", Timeout: time.Second, Log: quietLog()}
	if extra != nil {
		extra(&cfg)
	}
	return ivr.Outbound(cfg)
}

func runEcho(t *testing.T, ari *aritest.Server) {
	t.Helper()
	ch, err := ari.PlaceCall(aritest.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.WaitPlayed(5*time.Second, "sound:hello", 1); err != nil {
		t.Fatal(err)
	}
	if err := ch.Press("4711", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	snap, err := ch.WaitEnded(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if snap.EndReason != "app-hangup" || aritest.Count(snap.Played, "digits:4711") != 1 {
		t.Fatalf("%+v", snap)
	}
}

func TestEchoOverEveryTransport(t *testing.T) {
	for _, mode := range []string{"inbound", "outbound per call", "outbound persistent"} {
		t.Run(mode, func(t *testing.T) {
			ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.002})
			if err != nil {
				t.Fatal(err)
			}
			defer ari.Close()
			var tr ivr.Transport
			if mode == "inbound" {
				tr = ivr.Inbound(ivr.InboundConfig{URL: ari.URL, WSURL: ari.WSURL, Username: "ivr-pin", Password: "aritest-password-0001",
					Application: "ivr-pin", Timeout: time.Second, Log: quietLog()})
			} else {
				tr = outboundTransport(nil)
			}
			s := serving(t, tr, echo)
			if mode != "inbound" {
				ari.SetOutbound(&aritest.Outbound{URL: "ws://" + listenAddr(t, tr) + "/ari", Username: "asterisk",
					Password: "s3cret-outbound", Persistent: mode == "outbound persistent"})
			}
			for i := 0; i < 3; i++ {
				runEcho(t, ari)
			}
			if s.Handled() != 3 {
				t.Fatalf("handled %d", s.Handled())
			}
			answers := 0
			for _, e := range ari.RESTLog() {
				if e.Method == "POST" && strings.HasSuffix(e.Path, "/answer") && e.Status == 204 {
					answers++
				}
			}
			if answers != 3 {
				t.Fatalf("%d answers in the REST log", answers)
			}
			// Asterisk is asked to leave out the events no call reads, on
			// every websocket: the inbound one, each call's own, the
			// persistent one.
			// The filter is asked for beside the call, not before it: wait
			// (bounded) for the last one.
			want := map[string]int{"inbound": 1, "outbound per call": 3, "outbound persistent": 1}[mode]
			filters := 0
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				filters = 0
				for _, e := range ari.RESTLog() {
					if e.Method == "PUT" && strings.HasSuffix(e.Path, "/eventFilter") && e.Status == 200 && strings.Contains(e.Body, `{"type":"PlaybackStarted"}`) {
						filters++
					}
				}
				if filters >= want || time.Now().After(deadline) {
					break
				}
			}
			if filters != want {
				t.Fatalf("%d event filters set, want %d", filters, want)
			}
		})
	}
}

func TestOutboundRefusesWrongCredentials(t *testing.T) {
	tr := outboundTransport(nil)
	s := serving(t, tr, echo)
	url := "http://" + listenAddr(t, tr) + "/ari"
	for _, c := range []struct{ name, user, pass string }{
		{"no credentials", "", ""}, {"wrong password", "asterisk", "guess"}, {"wrong user", "root", "s3cret-outbound"},
	} {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")))
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: HTTP %d, want 401", c.name, resp.StatusCode)
		}
	}
	// And the test server, as Asterisk, fails Stasis().
	ari, err := aritest.Start(aritest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	ari.SetOutbound(&aritest.Outbound{URL: "ws://" + listenAddr(t, tr) + "/ari", Username: "asterisk", Password: "nope"})
	if _, err := ari.PlaceCall(aritest.CallOptions{}); !errors.Is(err, aritest.ErrStasisFailed) {
		t.Fatalf("PlaceCall = %v", err)
	}
	if s.Handled() != 0 {
		t.Fatal("a call was taken without credentials")
	}
}

// fakeAsterisk dials the server as Asterisk would and sends a StasisStart;
// it never answers a REST request.
func fakeAsterisk(t *testing.T, url, channel string, tlsCfg *tls.Config) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig(url, "http://localhost")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Protocol = []string{"ari"}
	cfg.TlsConfig = tlsCfg
	cfg.Header = http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("asterisk:s3cret-outbound"))}}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app := "ivr-pin:PJSIP/" + channel
	for _, m := range []string{
		`{"type":"ApplicationRegistered","application":"` + app + `"}`,
		`{"type":"StasisStart","application":"` + app + `","args":[],"channel":{"id":"` + channel + `","name":"PJSIP/` + channel + `"}}`,
	} {
		if err := websocket.Message.Send(ws, m); err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

// A websocket whose Asterisk never answers: the call's request fails at its
// deadline (the handler goes on), and another call on its own websocket is
// served meanwhile.
func TestOutboundRequestsHaveADeadlineAndConnectionsAreIndependent(t *testing.T) {
	tr := outboundTransport(func(c *ivr.OutboundConfig) { c.Timeout = 300 * time.Millisecond })
	var mu sync.Mutex
	errs := map[string]error{}
	answered := make(chan struct{})
	s := serving(t, tr, func(c *ivr.Call) {
		err := c.Answer(c.Context())
		mu.Lock()
		errs[c.ID] = err
		mu.Unlock()
		if c.ID == "silent" {
			close(answered)
		}
	})
	silent := fakeAsterisk(t, "ws://"+listenAddr(t, tr)+"/ari", "silent", nil)
	defer silent.Close()
	// The silent one's request is pending; a real call on its own socket is
	// served in full meanwhile.
	ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.002})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	ari.SetOutbound(&aritest.Outbound{URL: "ws://" + listenAddr(t, tr) + "/ari", Username: "asterisk", Password: "s3cret-outbound"})
	ch, err := ari.PlaceCall(aritest.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.WaitEnded(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the request on the silent websocket never ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(errs["silent"], context.DeadlineExceeded) {
		t.Fatalf("silent: %v", errs["silent"])
	}
	if errs[ch.ID] != nil {
		t.Fatalf("the other call: %v", errs[ch.ID])
	}
	_ = s
}

func TestOutboundServesTLS(t *testing.T) {
	pki := testpki.New(t)
	tr := outboundTransport(func(c *ivr.OutboundConfig) { c.TLSCert, c.TLSKey = pki.ServerCert, pki.ServerKey })
	got := make(chan string, 1)
	serving(t, tr, func(c *ivr.Call) { got <- c.Application })
	ws := fakeAsterisk(t, "wss://"+listenAddr(t, tr)+"/ari", "tls1", &tls.Config{RootCAs: pki.CAPool})
	defer ws.Close()
	select {
	case app := <-got:
		if app != "ivr-pin:PJSIP/tls1" {
			t.Fatalf("application %q", app)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no call over wss")
	}
	// Plain ws to a TLS listener is refused.
	cfg, _ := websocket.NewConfig("ws://"+listenAddr(t, tr)+"/ari", "http://localhost")
	if c, err := websocket.DialConfig(cfg); err == nil {
		c.Close()
		t.Fatal("plain websocket accepted by a TLS listener")
	}
}

// On drain the listener closes (a load balancer sends new calls elsewhere)
// while a call in progress finishes on its open websocket.
func TestOutboundDrainClosesTheListenerAndFinishesCalls(t *testing.T) {
	ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.002})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	tr := outboundTransport(nil)
	s, err := ivr.New(ivr.Config{Transport: tr, DrainTimeout: 10 * time.Second, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, echo) }()
	for !s.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	addr := listenAddr(t, tr)
	ari.SetOutbound(&aritest.Outbound{URL: "ws://" + addr + "/ari", Username: "asterisk", Password: "s3cret-outbound"})
	ch, err := ari.PlaceCall(aritest.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.WaitPlayed(5*time.Second, "sound:hello", 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for s.Ready() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.Ready() {
		t.Fatal("still ready while draining")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the listener still accepts while draining")
	}
	if err := ch.Press("1234", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	snap, err := ch.WaitEnded(5 * time.Second)
	if err != nil || aritest.Count(snap.Played, "digits:1234") != 1 {
		t.Fatalf("the call in progress: %v %+v", err, snap)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestInboundFailsFast(t *testing.T) {
	ari, err := aritest.Start(aritest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := ln.Addr().String()
	ln.Close()
	for _, c := range []struct {
		name string
		cfg  ivr.InboundConfig
		want error
	}{
		{"wrong password", ivr.InboundConfig{URL: ari.URL, WSURL: ari.WSURL, Username: "ivr-pin", Password: "wrong"}, ivr.ErrUnauthorized},
		{"asterisk down", ivr.InboundConfig{URL: "http://" + down + "/ari", WSURL: "ws://" + down + "/ari/events", Username: "ivr-pin", Password: "x"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Application, c.cfg.Timeout, c.cfg.Log = "ivr-pin", time.Second, quietLog()
			s, err := ivr.New(ivr.Config{Transport: ivr.Inbound(c.cfg), Log: quietLog()})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Serve(context.Background(), echo)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("Serve = %v, want %v", err, c.want)
			}
		})
	}
}

// A hung Asterisk (accepts REST, never answers) must not hang a call: every
// request has a deadline.
// A stop that lands while serve still waits for Asterisk, or in the middle
// of its websocket dial, is a clean stop: no call was taken, so Serve
// returns nil and serve exits 0 (a CI run once saw exit 1 when SIGTERM
// came between the upgrade and the dial's return).
func TestAStopWhileConnectingIsClean(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := ln.Addr().String()
	ln.Close()
	// hangs holds the events websocket's upgrade until the test ends, so
	// the stop lands mid-dial.
	release := make(chan struct{})
	defer close(release)
	hangs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	defer hangs.Close()
	for _, c := range []struct {
		name string
		cfg  ivr.InboundConfig
	}{
		{"waiting", ivr.InboundConfig{URL: "http://" + down + "/ari", WSURL: "ws://" + down + "/ari/events"}},
		{"mid-dial", ivr.InboundConfig{URL: hangs.URL + "/ari", WSURL: "ws" + strings.TrimPrefix(hangs.URL, "http") + "/ari/events"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Application, c.cfg.Username, c.cfg.Password = "ivr-pin", "ivr-pin", "aritest-password-0001"
			c.cfg.Timeout, c.cfg.Log, c.cfg.WaitForAsterisk = 30*time.Second, quietLog(), true
			tr := ivr.Inbound(c.cfg)
			s, err := ivr.New(ivr.Config{Transport: tr, Log: quietLog()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx, echo) }()
			for i := 0; c.name == "waiting" && s.Waiting() == ""; i++ {
				if i > 400 {
					t.Fatal("never said it waits")
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Serve after a stop while connecting = %v, want nil", err)
			}
		})
	}
}

func TestHungAsteriskDoesNotHangACall(t *testing.T) {
	ari, err := aritest.Start(aritest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/asterisk/info") {
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{}`))
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	// Events from the test server, REST to the hung one.
	answerErr := make(chan error, 1)
	tr := ivr.Inbound(ivr.InboundConfig{URL: hung.URL + "/ari", WSURL: ari.WSURL, Username: "ivr-pin", Password: "aritest-password-0001",
		Application: "ivr-pin", Timeout: 200 * time.Millisecond, Log: quietLog()})
	serving(t, tr, func(c *ivr.Call) { answerErr <- c.Answer(c.Context()) })
	if _, err := ari.PlaceCall(aritest.CallOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-answerErr:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("answer on a hung Asterisk: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("REST call still hanging: no deadline")
	}
}

// Inbound over https and wss: Asterisk's certificate is verified against
// the configured roots; without them the connection is refused.
func TestInboundOverTLSVerifiesAsterisk(t *testing.T) {
	pki := testpki.New(t)
	ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.002,
		TLS: &tls.Config{Certificates: []tls.Certificate{pki.Server}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	if !strings.HasPrefix(ari.URL, "https://") || !strings.HasPrefix(ari.WSURL, "wss://") {
		t.Fatalf("%s %s", ari.URL, ari.WSURL)
	}
	// A timeout a busy machine's TLS handshake cannot run out: what ends
	// the first connection must be the certificate.
	untrusted := ivr.Inbound(ivr.InboundConfig{URL: ari.URL, WSURL: ari.WSURL, Username: "ivr-pin", Password: "aritest-password-0001",
		Application: "ivr-pin", Timeout: 30 * time.Second, Log: quietLog()})
	s, err := ivr.New(ivr.Config{Transport: untrusted, CallTimeout: time.Minute, DrainTimeout: time.Second, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	switch err := s.Serve(context.Background(), echo); {
	case err == nil:
		t.Fatal("an Asterisk with a certificate from no trusted CA was accepted")
	case !strings.Contains(err.Error(), "certificate"):
		t.Fatalf("the connection to an Asterisk with an untrusted certificate failed, but not on its certificate: %v", err)
	}
	tr := ivr.Inbound(ivr.InboundConfig{URL: ari.URL, WSURL: ari.WSURL, Username: "ivr-pin", Password: "aritest-password-0001",
		Application: "ivr-pin", Timeout: 30 * time.Second, Log: quietLog(), TLS: &tls.Config{RootCAs: pki.CAPool}})
	serving(t, tr, echo)
	runEcho(t, ari)
}
