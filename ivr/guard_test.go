package ivr_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"golang.org/x/net/websocket"

	"github.com/ivr-pin/ivr-pin/ivr"
)

// loginRequest is an upgrade request with basic auth, as raw HTTP.
func loginRequest(user, pass string) string {
	return "GET /ari HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Protocol: ari\r\n" +
		"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + "\r\n\r\n"
}

// status sends one login on c and reads the status code.
func status(t *testing.T, c net.Conn, user, pass string) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, loginRequest(user, pass)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// 2,000 connections that send nothing, or take their 401 and go quiet, are
// all closed within 15 s, and the server's goroutines come back to where
// they were.
func TestIdleConnectionsAreClosed(t *testing.T) {
	before := runtime.NumGoroutine()
	tr := outboundTransport(nil) // the default 10 s
	s := serving(t, tr, echo)
	addr := listenAddr(t, tr)
	serverBase := runtime.NumGoroutine()
	const n = 2000
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c := dialFrom(t, "127.0.0.1", addr)
		conns = append(conns, c)
		if i%2 == 1 {
			// A keep-alive request that takes its 401 and goes quiet.
			_, _ = io.WriteString(c, "GET /ari HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "+
				base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("asterisk:guess-%d", i)))+"\r\n\r\n")
		}
	}
	start := time.Now()
	var closed atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, err := io.Copy(io.Discard, c) // until the server closes it
			if err == nil {
				closed.Add(1)
			}
		}(c)
	}
	wg.Wait()
	if closed.Load() != n {
		t.Fatalf("%d of %d idle connections closed within 15 s", closed.Load(), n)
	}
	t.Logf("all %d closed after %v", n, time.Since(start).Round(100*time.Millisecond))
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > serverBase+5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > serverBase+5 {
		t.Fatalf("%d goroutines, %d before the connections (%d before the server)", g, serverBase, before)
	}
	// Those that sent nothing met the 5 s header timeout; those that took
	// their 401 and went quiet, the 10 s upgrade deadline.
	if st, _ := s.ListenerStats(); st.NotUpgraded != n/2 {
		t.Fatalf("closed at the upgrade deadline: %d, want %d", st.NotUpgraded, n/2)
	}
}

// Past the cap a connection is closed at once and counted.
func TestConnectionCap(t *testing.T) {
	tr := outboundTransport(func(c *ivr.OutboundConfig) { c.MaxConnections = 5 })
	s := serving(t, tr, echo)
	addr := listenAddr(t, tr)
	var held []net.Conn
	for i := 0; i < 5; i++ {
		held = append(held, dialFrom(t, "127.0.0.1", addr))
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond) // accepted
	extra := dialFrom(t, "127.0.0.1", addr)
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the connection past the cap: %v, want closed at once", err)
	}
	if st, _ := s.ListenerStats(); st.ConnectionsOverLimit != 1 {
		t.Fatalf("over the cap: %+v", st)
	}
	held[0].Close()
	held = held[1:]
	time.Sleep(100 * time.Millisecond)
	again := dialFrom(t, "127.0.0.1", addr)
	defer again.Close()
	if code := status(t, again, "asterisk", "s3cret-outbound-wrong"); code != 401 {
		t.Fatalf("a connection after one closed: %d", code)
	}
}

// Twenty failures in a minute from one source: it is answered 429 until the
// minute ends, even with the right password; Asterisk on another address
// logs in meanwhile.
func TestPasswordGuessingIsThrottledPerSource(t *testing.T) {
	tr := outboundTransport(nil)
	s := serving(t, tr, echo)
	addr := listenAddr(t, tr)
	guesser := dialFrom(t, "127.0.0.2", addr)
	defer guesser.Close()
	for i := 0; i < 20; i++ {
		if code := status(t, guesser, "asterisk", fmt.Sprintf("guess-%d", i)); code != 401 {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if code := status(t, guesser, "asterisk", "s3cret-outbound"); code != 429 {
		t.Fatalf("the 21st login from the guesser: %d, want 429", code)
	}
	asterisk := dialFrom(t, "127.0.0.1", addr)
	defer asterisk.Close()
	if code := status(t, asterisk, "asterisk", "s3cret-outbound"); code != 101 {
		t.Fatalf("Asterisk's own login: %d, want 101", code)
	}
	st, _ := s.ListenerStats()
	if st.LoginsRefused != 20 || st.LoginsThrottled != 1 {
		t.Fatalf("%+v", st)
	}
}

// Behind a trusted balancer the PROXY protocol header names the source:
// one guesser is throttled, another client through the same balancer is
// not; a connection from the balancer without the header is refused.
func TestProxyProtocolFromTrustedBalancers(t *testing.T) {
	tr := outboundTransport(func(c *ivr.OutboundConfig) { c.TrustedProxies = []string{"127.0.0.3"} })
	serving(t, tr, echo)
	addr := listenAddr(t, tr)
	via := func(src string) net.Conn {
		c := dialFrom(t, "127.0.0.3", addr)
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP(src), Port: 40000}, c.RemoteAddr())
		if _, err := h.WriteTo(c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	guesser := via("192.0.2.7")
	defer guesser.Close()
	for i := 0; i < 20; i++ {
		_ = status(t, guesser, "asterisk", "guess")
	}
	if code := status(t, guesser, "asterisk", "s3cret-outbound"); code != 429 {
		t.Fatalf("the guesser behind the balancer: %d", code)
	}
	other := via("192.0.2.8")
	defer other.Close()
	if code := status(t, other, "asterisk", "s3cret-outbound"); code != 101 {
		t.Fatalf("another source behind the balancer: %d", code)
	}
	bare := dialFrom(t, "127.0.0.3", addr)
	defer bare.Close()
	_ = bare.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(bare, loginRequest("asterisk", "s3cret-outbound"))
	if resp, err := http.ReadResponse(bufio.NewReader(bare), nil); err == nil && resp.StatusCode == 101 {
		t.Fatal("a connection from the balancer without its PROXY header was let in")
	}
}

// An authenticated websocket that brings no call is closed; the persistent
// one, which waits for calls, is kept.
func TestWebsocketWithoutACallIsClosed(t *testing.T) {
	tr := outboundTransport(func(c *ivr.OutboundConfig) { c.NoCallTimeout = 300 * time.Millisecond })
	s := serving(t, tr, echo)
	dial := func() *websocket.Conn {
		cfg, _ := websocket.NewConfig("ws://"+listenAddr(t, tr)+"/ari", "http://localhost")
		cfg.Protocol = []string{"ari"}
		cfg.Header = http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("asterisk:s3cret-outbound"))}}
		ws, err := websocket.DialConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	silent := dial()
	defer silent.Close()
	persistent := dial()
	defer persistent.Close()
	_ = websocket.Message.Send(persistent, `{"type":"ApplicationRegistered","application":"ivr-pin"}`)
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m string
	if err := websocket.Message.Receive(silent, &m); err == nil {
		t.Fatalf("the silent websocket got %q", m)
	}
	time.Sleep(500 * time.Millisecond)
	// Still open: it hears the line's request for its application's
	// channels (the reconcile after registering), or nothing yet.
	_ = persistent.SetReadDeadline(time.Now().Add(2 * time.Second))
	if err := websocket.Message.Receive(persistent, &m); err != nil && !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("the persistent websocket was closed: %v", err)
	}
	if st, _ := s.ListenerStats(); st.NoCall != 1 {
		t.Fatalf("%+v", st)
	}
}

// A per-call websocket carries one call; a persistent one at most its
// maximum; a channel another live websocket holds cannot be claimed, and
// no handler runs for it.
func TestCallsPerSocketAndChannelOwnership(t *testing.T) {
	tr := outboundTransport(func(c *ivr.OutboundConfig) { c.MaxCallsPerSocket = 2 })
	var handled sync.Map
	var runs atomic.Int64
	s := serving(t, tr, func(c *ivr.Call) {
		runs.Add(1)
		handled.Store(c.ID, true)
		<-c.Context().Done()
	})
	url := "ws://" + listenAddr(t, tr) + "/ari"
	victim := fakeAsterisk(t, url, "victim", nil)
	defer victim.Close()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the victim's call", func() bool { _, ok := handled.Load("victim"); return ok })
	// A second StasisStart on the victim's per-call socket.
	_ = websocket.Message.Send(victim, `{"type":"StasisStart","application":"ivr-pin:PJSIP/second","args":[],"channel":{"id":"second","name":"PJSIP/second"}}`)
	// Another socket claiming the victim's channel.
	thief := fakeAsterisk(t, url, "victim", nil)
	defer thief.Close()
	// A persistent socket with three calls, one past its maximum of two.
	cfg, _ := websocket.NewConfig(url, "http://localhost")
	cfg.Protocol = []string{"ari"}
	cfg.Header = http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("asterisk:s3cret-outbound"))}}
	persistent, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer persistent.Close()
	_ = websocket.Message.Send(persistent, `{"type":"ApplicationRegistered","application":"ivr-pin"}`)
	for _, id := range []string{"p1", "p2", "p3"} {
		_ = websocket.Message.Send(persistent, `{"type":"StasisStart","application":"ivr-pin","args":[],"channel":{"id":"`+id+`","name":"PJSIP/`+id+`"}}`)
	}
	waitFor("the refusals", func() bool {
		r := s.RefusedCalls()
		return r[ivr.RefusedPerCallBusy] == 1 && r[ivr.RefusedChannelTaken] == 1 && r[ivr.RefusedSocketFull] == 1
	})
	time.Sleep(50 * time.Millisecond)
	if runs.Load() != 3 { // victim, p1, p2
		t.Fatalf("%d handlers ran, want 3", runs.Load())
	}
	for _, id := range []string{"second", "p3"} {
		if _, ok := handled.Load(id); ok {
			t.Fatalf("a handler ran for refused %s", id)
		}
	}
}
