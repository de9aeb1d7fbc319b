package asterisktest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/asterisktest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/redistest"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
)

// changeSteps are a whole PIN change from the main menu.
func changeSteps(pan, exp, oldPIN, newPIN string) []step {
	return []step{{media: "menu-change", keys: "1"}, {media: "enter-card", keys: pan + "#"}, {media: "enter-expiry", keys: printed(exp)},
		{media: "enter-current-pin", keys: oldPIN + "#"}, {media: "enter-new-pin", keys: newPIN + "#"},
		{media: "confirm-new-pin", keys: newPIN + "#"}}
}

// auditRecords are the call records a serve process wrote, by channel
// (its start and stop records are left out).
func auditRecords(out string) map[string]map[string]any {
	recs := map[string]map[string]any{}
	for _, ln := range strings.Split(out, "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(ln), &r) == nil && r["log"] == "audit" && r["record"] == "call" {
			id, _ := r["channel_id"].(string)
			recs[id] = r
		}
	}
	return recs
}

// TestRealAsteriskOutbound: Asterisk 22 dials serve (IVRPIN_ARI_LISTEN)
// through the shipped websocket_client.conf and ari.conf, one websocket per
// call, and serve drives each call with REST over it.
func TestRealAsteriskOutbound(t *testing.T) {
	t.Parallel()
	l := startLineWith(t, lineOptions{outbound: true})
	d := l.ast.NewDriver(t)

	t.Run("change", scenarioChange(l, d))

	t.Run("first setup", scenarioFirstSetup(l, d))

	t.Run("transferred in by an agent and returned to the agent", scenarioTransferInAndBack(l, d))

	t.Run("hang-up mid-entry", func(t *testing.T) {
		t.Parallel()
		pan, _ := l.changeCard("8264")
		c := d.Call(t, asterisktest.CallOptions{})
		run(t, c, step{media: "menu-change", keys: "1"}, step{media: "enter-card", keys: pan[:8]})
		c.Hangup()
		if err := c.WaitGone(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if !l.sims.CardHost.PINIs(pan, "8264") {
			t.Fatal("the PIN changed")
		}
	})

	t.Cleanup(func() {
		// After the drain, every call has its record.
		if err := l.stopServe(); err != nil {
			t.Error(err)
		}
		recs := auditRecords(l.out.String())
		if len(recs) < 4 {
			t.Errorf("%d audit records, want 4", len(recs))
		}
		for id, r := range recs {
			if r["transport"] != "outbound" {
				t.Errorf("%s: transport %v", id, r["transport"])
			}
		}
	})
}

// TestRealAsteriskOutboundPersistent: the same client with connection_type
// = persistent: Asterisk keeps one websocket to serve for every call of
// the app (application "ivr-pin", not per channel).
func TestRealAsteriskOutboundPersistent(t *testing.T) {
	t.Parallel()
	// The listener pings the persistent websocket every second; Asterisk
	// must answer (GET /asterisk/ping over the websocket) or it is closed.
	l := startLineWith(t, lineOptions{outbound: true, persistent: true, env: []string{"IVRPIN_ARI_PERSISTENT_PING=1s"}})
	d := l.ast.NewDriver(t)
	t.Run("change", scenarioChange(l, d))
	t.Run("transferred in by an agent and returned to the agent", scenarioTransferInAndBack(l, d))
	t.Cleanup(func() {
		if err := l.stopServe(); err != nil {
			t.Error(err)
		}
		l.mu.Lock()
		logs := l.errs.String()
		l.mu.Unlock()
		if !strings.Contains(logs, "answered its ping") || strings.Contains(logs, "did not answer its ping") {
			t.Error("the real Asterisk did not answer the listener's pings on its persistent websocket")
		}
		recs := auditRecords(l.out.String())
		if len(recs) != 2 {
			t.Errorf("%d audit records, want 2", len(recs))
		}
		for id, r := range recs {
			if r["transport"] != "outbound" {
				t.Errorf("%s: transport %v", id, r["transport"])
			}
		}
	})
}

// proc is one process of a test (serve or haproxy) with its output.
type proc struct {
	cmd    *exec.Cmd
	out    *syncbuf.Buffer
	exited chan error
	// onStop, when set, runs once the process has stopped at the end of
	// the test (to scan all it wrote, including what a drain wrote).
	onStop func()
}

// scannedBy makes everything p writes part of l's leak scan.
func (p *proc) scannedBy(l *line) *proc {
	p.onStop = func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.errs.Write([]byte(p.out.String()))
	}
	return p
}

func startProc(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), out: &syncbuf.Buffer{}, exited: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := testkit.Start(t, p.cmd); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(60 * time.Second):
				_ = p.cmd.Process.Kill()
			}
		}
		if p.onStop != nil {
			p.onStop()
		}
	})
	return p
}

func (p *proc) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.out.String(), text) {
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited: %v\n%s", p.cmd.Path, err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never said %q:\n%s", p.cmd.Path, text, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// haproxyConfig is deploy/haproxy.cfg with this test's addresses.
func haproxyConfig(t *testing.T, front, stats string, backends, checks []string) string {
	b, err := os.ReadFile(filepath.Join(asterisktest.ConfDir(), "..", "..", "deploy", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	replace := func(pattern, with string) {
		re := regexp.MustCompile(pattern)
		if !re.MatchString(cfg) {
			t.Fatalf("deploy/haproxy.cfg: nothing matches %s", pattern)
		}
		cfg = re.ReplaceAllLiteralString(cfg, with)
	}
	// The shipped file encrypts both legs (deploy/haproxy_test.go runs it
	// so, with the ARI test server dialling wss). Here the legs stay in
	// clear on loopback, and so does the PROXY header's absence: this test
	// is about the spread, the limits and the kill.
	replace(`(?m)^    bind :8443 ssl crt \S+ alpn http/1\.1$`, "    bind "+front)
	replace(` ssl verify required ca-file \S+ send-proxy-v2 no-check-ssl`, "")
	replace(`(?m)^    bind 127\.0\.0\.1:8404$`, "    bind "+stats)
	servers := ""
	for i := range backends {
		servers += fmt.Sprintf("    server ivr-pin-%d %s check port %s\n", i+1, backends[i], checks[i][strings.LastIndex(checks[i], ":")+1:])
	}
	replace(`(?m)(^    server ivr-pin-\d .*\n)+`, servers)
	return cfg
}

// serversUp counts the backend servers HAProxy's stats page shows UP.
func serversUp(stats string) int {
	resp, err := http.Get("http://" + stats + "/stats;csv")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	up := 0
	for _, ln := range strings.Split(sb.String(), "\n") {
		f := strings.Split(ln, ",")
		if len(f) > 17 && f[0] == "ivr_pin" && strings.HasPrefix(f[1], "ivr-pin-") && strings.HasPrefix(f[17], "UP") {
			up++
		}
	}
	return up
}

// TestRealAsteriskOutboundThroughHAProxy is the scale-out picture on one
// machine: Asterisk dials HAProxy (deploy/haproxy.cfg), HAProxy spreads the
// per-call websockets over two serve instances that share their limits in
// Redis. One instance is killed mid-call: the calls on the survivor finish,
// the killed instance's calls are ended politely, every new call succeeds,
// and the card limit counts attempts made on both instances.
func TestRealAsteriskOutboundThroughHAProxy(t *testing.T) {
	t.Parallel()
	needHAProxy(t)
	redisURL, _ := redistest.Start(t)
	front, stats := testkit.FreeAddr(t), testkit.FreeAddr(t)
	listens, metrics := []string{testkit.FreeAddr(t), testkit.FreeAddr(t)}, []string{testkit.FreeAddr(t), testkit.FreeAddr(t)}
	l := startLineWith(t, lineOptions{outbound: true, front: front, env: []string{
		"IVRPIN_REDIS_URL=" + redisURL, "IVRPIN_LIMIT_KEY=" + randomHex(16),
	}})
	d := l.ast.NewDriver(t)

	// The card limit: 2 attempts per card, across instances.
	serves := startInstances(t, l, listens, metrics, func(int) []string { return []string{"IVRPIN_LIMIT_CARD_MAX=2"} })
	startHAProxy(t, l, haproxyConfig(t, front, stats, listens, metrics), stats, 2)
	on := func(id string) int {
		for i, p := range serves {
			if _, ok := auditRecords(p.out.String())[id]; ok {
				return i
			}
		}
		return -1
	}
	servedBy := func(c *asterisktest.LocalCall) int {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if i := on(c.ID); i >= 0 {
				return i
			}
			time.Sleep(50 * time.Millisecond)
		}
		return -1
	}

	// 1. The card limit holds across both instances: two wrong current
	// PINs on one card, then the third attempt is refused.
	limitPAN, limitExp := l.changeCard("1470")
	l.typed("", "1357", "4829")
	var usedInstances []int
	for i := 0; i < 2; i++ {
		c := d.Call(t, asterisktest.CallOptions{CallerID: fmt.Sprintf("1555000%04d", i)})
		run(t, c, append(changeSteps(limitPAN, limitExp, "1357", "4829"), step{media: "reason-details-mismatch"}, step{media: "enter-card", n: 2})...)
		c.Hangup()
		if err := c.WaitGone(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		usedInstances = append(usedInstances, servedBy(c))
	}
	if usedInstances[0] == usedInstances[1] || usedInstances[0] < 0 || usedInstances[1] < 0 {
		t.Fatalf("the two attempts were served by instances %v; the test needs one on each", usedInstances)
	}
	c := d.Call(t, asterisktest.CallOptions{CallerID: "15550009999"})
	// The line offers an agent (IVRPIN_AGENT_TRANSFER is set) and, with
	// no key pressed, says goodbye.
	run(t, c, append(changeSteps(limitPAN, limitExp, "1470", "4829"), step{media: "limit-reached"}, step{media: "agent-offer"}, step{media: "goodbye"})...)
	if err := c.WaitGone(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !l.sims.CardHost.PINIs(limitPAN, "1470") {
		t.Fatal("the limited card's PIN changed")
	}

	// 2. Twenty calls at once, spread over both; instance 1 is killed while
	// every caller is typing.
	const calls = 20
	type placed struct {
		c        *asterisktest.LocalCall
		pan, exp string
	}
	all := make([]placed, calls)
	for i := range all {
		pan, exp := l.changeCard("2580")
		all[i] = placed{c: d.Call(t, asterisktest.CallOptions{CallerID: fmt.Sprintf("1555100%04d", i)}), pan: pan, exp: exp}
	}
	l.typed("", "4829")
	for _, p := range all {
		if err := p.c.WaitPlayed("menu-change", 1, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	perInstance := [2]int{}
	for _, s := range serves {
		_ = s
	}
	// Who has which call: each instance logs the channel of every call it
	// takes (debug level).
	owner := func(id string) int {
		for i, s := range serves {
			if strings.Contains(s.out.String(), `"channel":"`+id+`"`) {
				return i
			}
		}
		return -1
	}
	owners := make([]int, calls)
	for i, p := range all {
		owners[i] = owner(p.c.ID)
		if owners[i] >= 0 {
			perInstance[owners[i]]++
		}
	}
	if perInstance[0] == 0 || perInstance[1] == 0 {
		t.Fatalf("calls per instance %v: HAProxy did not spread them", perInstance)
	}
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	killed := make(chan struct{})
	for i, p := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			steps := changeSteps(p.pan, p.exp, "2580", "4829")
			if owners[i] == 0 {
				// The killed instance's callers get as far as they can.
				<-killed
				if err := p.c.WaitGone(30 * time.Second); err != nil {
					errs <- fmt.Errorf("a call of the killed instance: %v", err)
				}
				// Asterisk dialled again through HAProxy; the survivor found
				// the call unclaimed and told the caller.
				if !slices.Contains(p.c.Played(), "sound:ivr-pin/result-unavailable") {
					errs <- fmt.Errorf("a call of the killed instance was not told (played %v)", p.c.Played())
				}
				return
			}
			for _, s := range append(steps, step{media: "result-changed"}) {
				if err := p.c.WaitPlayed(s.media, 1, 30*time.Second); err != nil {
					errs <- err
					return
				}
				if s.keys != "" {
					if err := p.c.Press(s.keys); err != nil {
						errs <- err
						return
					}
				}
				if s.media == "enter-card" {
					select {
					case <-killed:
					case <-time.After(30 * time.Second):
					}
				}
			}
			if err := p.c.WaitGone(20 * time.Second); err != nil {
				errs <- err
			}
		}()
	}
	// Every survivor caller is at the card number: kill instance 1 (index 0).
	for i, p := range all {
		if owners[i] != 0 {
			if err := p.c.WaitPlayed("enter-card", 1, 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = serves[0].cmd.Process.Kill()
	<-serves[0].exited
	close(killed)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, p := range all {
		if owners[i] == 1 && !l.sims.CardHost.PINIs(p.pan, "4829") {
			t.Errorf("call %d on the survivor: PIN not changed", i)
		}
		if owners[i] == 0 && !l.sims.CardHost.PINIs(p.pan, "2580") {
			t.Errorf("call %d on the killed instance: PIN changed", i)
		}
	}

	// 3. Every new call succeeds: HAProxy sends them all to the survivor.
	var nwg sync.WaitGroup
	for i := 0; i < 5; i++ {
		pan, exp := l.changeCard("3690")
		nwg.Add(1)
		go func() {
			defer nwg.Done()
			c := d.Call(t, asterisktest.CallOptions{CallerID: fmt.Sprintf("1555200%04d", i)})
			for _, s := range append(changeSteps(pan, exp, "3690", "4829"), step{media: "result-changed"}) {
				if err := c.WaitPlayed(s.media, 1, 30*time.Second); err != nil {
					t.Errorf("new call %d: %v", i, err)
					return
				}
				if s.keys != "" {
					_ = c.Press(s.keys)
				}
			}
			if err := c.WaitGone(20 * time.Second); err != nil {
				t.Errorf("new call %d: %v", i, err)
			}
			if !l.sims.CardHost.PINIs(pan, "4829") {
				t.Errorf("new call %d: not changed", i)
			}
		}()
	}
	nwg.Wait()
	t.Logf("calls per instance before the kill: %v", perInstance)
}

// needHAProxy skips without Debian's HAProxy, and fails in CI.
func needHAProxy(t *testing.T) {
	t.Helper()
	testkit.Program(t, "haproxy", "haproxy")
}

// startInstances starts one serve per listen address, each with l's
// settings, its own listener and metrics addresses, and extra(i) on top;
// it returns once each listens. Everything they write is in l's leak scan.
func startInstances(t *testing.T, l *line, listens, metrics []string, extra func(i int) []string) []*proc {
	t.Helper()
	var serves []*proc
	for i := range listens {
		e := append([]string{}, l.env...)
		for j, v := range e {
			if strings.HasPrefix(v, "IVRPIN_ARI_LISTEN=") {
				e[j] = "IVRPIN_ARI_LISTEN=" + listens[i]
			}
			if strings.HasPrefix(v, "IVRPIN_METRICS_ADDR=") {
				e[j] = "IVRPIN_METRICS_ADDR=" + metrics[i]
			}
		}
		if extra != nil {
			e = append(e, extra(i)...)
		}
		p := startProc(t, e, bin, "serve").scannedBy(l)
		p.waitFor(t, "listening for Asterisk's outbound ARI websockets")
		serves = append(serves, p)
	}
	return serves
}

// startHAProxy runs HAProxy on cfg and waits until its stats page shows
// every instance up.
func startHAProxy(t *testing.T, l *line, cfg, stats string, instances int) *proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	hap := startProc(t, nil, "haproxy", "-db", "-f", path).scannedBy(l)
	deadline := time.Now().Add(20 * time.Second)
	for serversUp(stats) != instances {
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy never saw the %d instances up:\n%s", instances, hap.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return hap
}
