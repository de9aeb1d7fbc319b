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

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
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
	// The default 10 s; one source may hold them all here.
	tr := outboundTransport(func(c *ivr.OutboundConfig) { c.MaxConnectionsPerSource = 10000 })
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
	tr := outboundTransport(func(c *ivr.OutboundConfig) {
		c.MaxConnections, c.ReservedConnections, c.MaxConnectionsPerSource = 5, -1, 5
	})
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

// flood re-opens idle connections from each source as fast as the listener
// closes or refuses them, until stop is closed or max dials were made; it
// returns how many it made.
func flood(addr string, sources []string, perSource int, max int64, stop <-chan struct{}) int64 {
	var dials atomic.Int64
	var wg sync.WaitGroup
	for _, src := range sources {
		for range perSource {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
				for dials.Add(1) <= max {
					select {
					case <-stop:
						return
					default:
					}
					c, err := d.Dial("tcp", addr)
					if err != nil {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
					_, _ = io.Copy(io.Discard, c) // held until the listener closes it
					c.Close()
				}
			}()
		}
	}
	wg.Wait()
	return min(dials.Load(), max)
}

// A flood of idle connections, re-opened as the listener closes them,
// from one address and then from 25, never keeps Asterisk out: with the
// cap at 200, Asterisk logs in for the first time during the one-source
// flood (the source's share leaves room), and its calls go on through the
// many-source flood (the slots reserved for sources that logged in).
func TestAFloodLeavesAsteriskItsLoginsAndCalls(t *testing.T) {
	tr := outboundTransport(func(c *ivr.OutboundConfig) { c.MaxConnections = 200 })
	s := serving(t, tr, echo)
	addr := listenAddr(t, tr)
	ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.002})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	ari.SetOutbound(&aritest.Outbound{URL: "ws://" + addr + "/ari", Username: "asterisk", Password: "s3cret-outbound"})
	var many []string
	for i := range 25 {
		many = append(many, fmt.Sprintf("127.0.1.%d", i+1))
	}
	for _, phase := range []struct {
		name    string
		sources []string
		workers int
	}{{"one source", []string{"127.0.0.2"}, 200}, {"25 sources", many, 20}} {
		t.Run(phase.name, func(t *testing.T) {
			stop := make(chan struct{})
			made := make(chan int64, 1)
			go func() { made <- flood(addr, phase.sources, phase.workers, 10000, stop) }()
			// The flood holds its share before Asterisk calls.
			deadline := time.Now().Add(10 * time.Second)
			for st, _ := s.ListenerStats(); st.ConnectionsSourceShare+st.ConnectionsReserved == 0; st, _ = s.ListenerStats() {
				if time.Now().After(deadline) {
					t.Fatalf("the flood was never refused: %+v", st)
				}
				time.Sleep(10 * time.Millisecond)
			}
			for range 10 {
				runEcho(t, ari)
			}
			close(stop)
			n := <-made
			st, _ := s.ListenerStats()
			t.Logf("%d flood connections; refused by source share %d, by the reserve %d, at the cap %d",
				n, st.ConnectionsSourceShare, st.ConnectionsReserved, st.ConnectionsOverLimit)
		})
	}
}

// persistentSocket logs in and registers as the persistent websocket;
// answering, it answers every RESTRequest (the listener's pings) with 200.
func persistentSocket(t *testing.T, addr string, answering bool) *websocket.Conn {
	t.Helper()
	cfg, _ := websocket.NewConfig("ws://"+addr+"/ari", "http://localhost")
	cfg.Protocol = []string{"ari"}
	cfg.Header = http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("asterisk:s3cret-outbound"))}}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if err := websocket.Message.Send(ws, `{"type":"ApplicationRegistered","application":"ivr-pin"}`); err != nil {
		t.Fatal(err)
	}
	if answering {
		go func() {
			for {
				var req struct {
					Type      string `json:"type"`
					RequestID string `json:"request_id"`
				}
				if err := websocket.JSON.Receive(ws, &req); err != nil {
					return
				}
				if req.Type == "RESTRequest" {
					_ = websocket.Message.Send(ws, `{"type":"RESTResponse","request_id":"`+req.RequestID+`","status_code":200,"message_body":"[]"}`)
				}
			}
		}()
	}
	return ws
}

// closedWithin reports whether the listener closes ws within d.
func closedWithin(ws *websocket.Conn, d time.Duration) bool {
	_ = ws.SetReadDeadline(time.Now().Add(d))
	for {
		var m string
		if err := websocket.Message.Receive(ws, &m); err != nil {
			return !strings.Contains(err.Error(), "timeout")
		}
	}
}

// Persistent websockets are bounded (IVRPIN_ARI_PERSISTENT_MAX) and must
// answer the listener's ARI ping: past the maximum one is closed at once,
// one that stops answering is closed, one that answers stays.
func TestPersistentWebsocketsAreBoundedAndMustShowLife(t *testing.T) {
	tr := outboundTransport(func(c *ivr.OutboundConfig) { c.MaxPersistent, c.PingInterval = 2, 200*time.Millisecond })
	s := serving(t, tr, echo)
	addr := listenAddr(t, tr)
	alive := persistentSocket(t, addr, true)
	silent := persistentSocket(t, addr, false)
	time.Sleep(50 * time.Millisecond) // both registered
	extra := persistentSocket(t, addr, true)
	if !closedWithin(extra, 2*time.Second) {
		t.Fatal("a persistent websocket past the maximum was kept")
	}
	if !closedWithin(silent, 5*time.Second) {
		t.Fatal("a persistent websocket that never answered its ping was kept")
	}
	if closedWithin(alive, time.Second) {
		t.Fatal("the persistent websocket that answers was closed")
	}
	if st, _ := s.ListenerStats(); st.PersistentRefused != 1 || st.NoLife != 1 {
		t.Fatalf("%+v", st)
	}
	// The silent one's place is free again.
	again := persistentSocket(t, addr, true)
	if closedWithin(again, time.Second) {
		t.Fatal("a persistent websocket was refused after a place was freed")
	}
}

// Only the sources IVRPIN_ARI_PERSISTENT_SOURCES names may hold one.
func TestPersistentWebsocketsOnlyFromTheirSources(t *testing.T) {
	tr := outboundTransport(func(c *ivr.OutboundConfig) { c.PersistentSources = []string{"192.0.2.0/24"} })
	s := serving(t, tr, echo)
	if ws := persistentSocket(t, listenAddr(t, tr), true); !closedWithin(ws, 2*time.Second) {
		t.Fatal("a persistent websocket from a source not listed was kept")
	}
	if st, _ := s.ListenerStats(); st.PersistentRefused != 1 {
		t.Fatalf("%+v", st)
	}
}

// Thirty IPv6 addresses of one /64, behind the trusted balancer, are one
// source to the throttle: twenty failures among them and the next, from
// any address of that /64, is answered 429; another /64 is not.
func TestIPv6SourcesAreThrottledByTheirSlash64(t *testing.T) {
	tr := outboundTransport(func(c *ivr.OutboundConfig) { c.TrustedProxies = []string{"127.0.0.3"} })
	s := serving(t, tr, echo)
	addr := listenAddr(t, tr)
	via := func(src string) net.Conn {
		c := dialFrom(t, "127.0.0.3", addr)
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP(src), Port: 40000}, &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 8090})
		if _, err := h.WriteTo(c); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var codes []int
	for i := range 30 {
		codes = append(codes, status(t, via(fmt.Sprintf("2001:db8:0:7::%x", i+1)), "asterisk", "guess"))
	}
	if codes[19] != 401 || codes[20] != 429 || codes[29] != 429 {
		t.Fatalf("answers to the /64: %v", codes)
	}
	if code := status(t, via("2001:db8:0:8::1"), "asterisk", "s3cret-outbound"); code != 101 {
		t.Fatalf("another /64: %d", code)
	}
	if st, _ := s.ListenerStats(); st.LoginsRefused != 20 || st.LoginsThrottled != 10 {
		t.Fatalf("%+v", st)
	}
}
