package deploy

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/kamailiotest"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
)

// sipPeer is a UDP SIP endpoint of the test at its own loopback address: it
// sends requests and keeps what it receives. As an Asterisk it answers
// every request at once (OPTIONS, the dispatcher's probes, are not kept).
type sipPeer struct {
	conn     *net.UDPConn
	asterisk bool
	probed   chan struct{} // closed at the first probe answered (an Asterisk's)
	mu       sync.Mutex
	got      []string
	arrived  chan string
}

func newPeer(t *testing.T, ip string, asterisk bool) *sipPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	p := &sipPeer{conn: c, asterisk: asterisk, arrived: make(chan string, 1000), probed: make(chan struct{})}
	t.Cleanup(func() { c.Close() })
	go p.read()
	return p
}

func (p *sipPeer) addr() string { return p.conn.LocalAddr().String() }

func (p *sipPeer) read() {
	buf := make([]byte, 65535)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg := string(buf[:n])
		if p.asterisk && !strings.HasPrefix(msg, "SIP/2.0") {
			// Every request answered at once and finally, so the proxy
			// retransmits nothing: probes and in-dialog requests 200, a
			// new call 486 (its ACK is hop by hop, and not kept).
			switch {
			case strings.HasPrefix(msg, "ACK "):
				continue
			case strings.HasPrefix(msg, "INVITE "):
				_, _ = p.conn.WriteToUDP([]byte(reply(msg, "486 Busy Here")), from)
			default:
				_, _ = p.conn.WriteToUDP([]byte(reply(msg, "200 OK")), from)
			}
			if strings.HasPrefix(msg, "OPTIONS ") {
				select {
				case <-p.probed:
				default:
					close(p.probed)
				}
				continue
			}
		}
		p.mu.Lock()
		p.got = append(p.got, msg)
		p.mu.Unlock()
		p.arrived <- msg
	}
}

// reply is a response to req that copies the headers a UA must copy.
func reply(req, status string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	for _, l := range strings.Split(req, "\r\n") {
		for _, h := range []string{"Via:", "From:", "To:", "Call-ID:", "CSeq:"} {
			if strings.HasPrefix(l, h) {
				b.WriteString(l + "\r\n")
			}
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// send sends a request to the proxy; toTag makes it an in-dialog request,
// route adds a Route header, extra any other header lines.
func (p *sipPeer) send(t *testing.T, proxy, method, ruri, toTag, route string, extra ...string) {
	t.Helper()
	call := fmt.Sprintf("%d@test", time.Now().UnixNano())
	to := "<" + ruri + ">"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	msg := method + " " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + p.addr() + ";branch=z9hG4bK" + call[:12] + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:caller@" + p.addr() + ">;tag=f" + call[:8] + "\r\n" +
		"To: " + to + "\r\n" +
		"Call-ID: " + call + "\r\n" +
		"CSeq: 1 " + method + "\r\n" +
		"Contact: <sip:caller@" + p.addr() + ">\r\n"
	if route != "" {
		msg += "Route: " + route + "\r\n"
	}
	for _, h := range extra {
		msg += h + "\r\n"
	}
	msg += "Content-Length: 0\r\n\r\n"
	dst, _ := net.ResolveUDPAddr("udp", proxy)
	if _, err := p.conn.WriteToUDP([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
}

// next waits for the next message starting with prefix (replies 1xx are
// skipped), or "" after wait.
func (p *sipPeer) next(prefix string, wait time.Duration) string {
	deadline := time.After(wait)
	for {
		select {
		case m := <-p.arrived:
			if strings.HasPrefix(m, "SIP/2.0 1") {
				continue
			}
			if strings.HasPrefix(m, prefix) {
				return m
			}
		case <-deadline:
			return ""
		}
	}
}

// TestKamailioRelaysOnlyForTheLine runs Debian's Kamailio with the shipped
// kamailio.cfg (addresses rewritten) between a listed SBC (127.0.0.1), an
// Asterisk of dispatcher.list (127.0.0.3), a stranger (127.0.0.2) and an
// address of the stranger's choosing (127.0.0.4): a new call goes from the
// SBC to the Asterisk, identity headers the SBC does not assert removed; a
// stranger is refused; a made-up in-dialog request (a To-tag, a Route
// naming the proxy) is relayed to the chosen address by nobody, the SBC and
// the Asterisk included; and a flood from a stranger goes unanswered.
func TestKamailioRelaysOnlyForTheLine(t *testing.T) {
	bin := testkit.Program(t, "kamailio", "kamailio")
	dir := t.TempDir()
	sbc, stranger := newPeer(t, "127.0.0.1", false), newPeer(t, "127.0.0.2", false)
	ast, target := newPeer(t, "127.0.0.3", true), newPeer(t, "127.0.0.4", false)
	list, sbcs := filepath.Join(dir, "dispatcher.list"), filepath.Join(dir, "sbc.list")
	if err := os.WriteFile(list, []byte("1 sip:"+ast.addr()+" 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sbcs, []byte("1 127.0.0.1 32 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy := c.LocalAddr().String()
	c.Close()
	cmd := exec.Command(bin, kamailiotest.Write(t, dir, kamailiotest.Files{Listen: proxy, DispatcherList: list, SBCList: sbcs})...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Kamailio's children hold its output open: the wait stops reading it
	// soon after the main process is gone.
	cmd.WaitDelay = 5 * time.Second
	if err := testkit.Start(t, cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	// Up once it answers the SBC's keep-alive, and the Asterisk answered a
	// probe (the dispatcher chooses only servers that answer).
	up := false
	for i := 0; i < 100 && !up; i++ {
		sbc.send(t, proxy, "OPTIONS", "sip:"+proxy, "", "")
		up = strings.HasPrefix(sbc.next("SIP/2.0", 100*time.Millisecond), "SIP/2.0 200")
	}
	if !up {
		t.Fatalf("Kamailio did not answer:\n%s", out.String())
	}
	select {
	case <-ast.probed:
	case <-time.After(10 * time.Second):
		t.Fatalf("Kamailio never probed the Asterisk:\n%s", out.String())
	}
	route := "<sip:" + proxy + ";lr>"
	nothingAt := func(what string, p *sipPeer) {
		t.Helper()
		if m := p.next("", 500*time.Millisecond); m != "" {
			t.Errorf("%s: it arrived at %s:\n%s", what, p.addr(), m)
		}
	}

	// The control: a new call from the SBC reaches the Asterisk, without
	// the identity headers the SBC did not assert for the line.
	sbc.send(t, proxy, "INVITE", "sip:1000@"+proxy, "", "", "P-Preferred-Identity: <sip:+15550000@evil>", "Remote-Party-ID: <sip:+15551111@evil>")
	inv := ast.next("INVITE ", 5*time.Second)
	if inv == "" {
		t.Fatalf("a new call from the SBC did not reach the Asterisk:\n%s", out.String())
	}
	if strings.Contains(inv, "P-Preferred-Identity") || strings.Contains(inv, "Remote-Party-ID") {
		t.Errorf("identity headers passed:\n%s", inv)
	}
	// And a request inside a dialog goes from the SBC to the Asterisk.
	sbc.send(t, proxy, "BYE", "sip:ivr@"+ast.addr(), "t1", route)
	if ast.next("BYE ", 5*time.Second) == "" {
		t.Errorf("an in-dialog request from the SBC to the Asterisk was not relayed:\n%s", out.String())
	}

	// What the control calls brought is done with.
	for _, p := range []*sipPeer{sbc, ast} {
		for p.next("", 300*time.Millisecond) != "" {
		}
	}
	for _, c := range []struct {
		what          string
		from          *sipPeer
		method, ruri  string
		toTag, route  string
		want, nowhere *sipPeer
	}{
		{"a new call from a stranger", stranger, "INVITE", "sip:1000@" + proxy, "", "", nil, ast},
		{"a stranger's in-dialog INVITE to its chosen address", stranger, "INVITE", "sip:x@" + target.addr(), "t2", route, nil, target},
		{"a stranger's in-dialog MESSAGE to its chosen address", stranger, "MESSAGE", "sip:x@" + target.addr(), "t3", route, nil, target},
		{"the SBC's in-dialog request to an address that is no Asterisk", sbc, "INVITE", "sip:x@" + target.addr(), "t4", route, nil, target},
		{"an Asterisk's in-dialog request to an address that is no SBC", ast, "BYE", "sip:x@" + target.addr(), "t5", route, nil, target},
		{"a new call from an Asterisk", ast, "INVITE", "sip:1000@" + proxy, "", "", nil, ast},
	} {
		c.from.send(t, proxy, c.method, c.ruri, c.toTag, c.route)
		// (Other answers are skipped: the control call's 486 is sent again
		// until the SBC, which never ACKs it here, is given up on.)
		if r := c.from.next("SIP/2.0 403", 5*time.Second); r == "" {
			t.Errorf("%s: no 403 within 5 s:\n%s", c.what, out.String())
		}
		nothingAt(c.what, c.nowhere)
	}

	// A flood from a stranger: after pike's density (20 in 2 s) the rest
	// go unanswered.
	flood := newPeer(t, "127.0.0.5", false)
	for i := 0; i < 200; i++ {
		flood.send(t, proxy, "OPTIONS", "sip:"+proxy, "", "")
	}
	answered := 0
	for flood.next("SIP/2.0", 500*time.Millisecond) != "" {
		answered++
	}
	if answered >= 100 {
		t.Errorf("a flood of 200 requests from a stranger: %d answered, want most dropped", answered)
	}
	t.Logf("a flood of 200 requests from a stranger: %d answered (403), the rest dropped", answered)
}
