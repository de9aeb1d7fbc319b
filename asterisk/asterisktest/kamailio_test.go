package asterisktest_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/asterisktest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/kamailiotest"
	"github.com/ivr-pin/ivr-pin/internal/testkit/redistest"
	"github.com/ivr-pin/ivr-pin/internal/testkit/testpki"
)

func freeUDP(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// callsProcessed is an Asterisk's count of calls so far.
func callsProcessed(t *testing.T, a *asterisktest.Asterisk) int {
	out, err := a.CLI("core show channels count")
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(`(\d+) calls? processed`).FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestRealAsteriskKamailioInFrontOfTwoAsterisks is the bank's topology on one
// machine: Debian's Kamailio with the shipped configuration spreads SIP
// calls over two Asterisk servers, both of which dial the same two ivr-pin
// instances over wss through HAProxy (deploy/haproxy.cfg: TLS on both legs),
// the instances sharing their limits in Redis behind Sentinel. The drills:
//  1. calls from `ivr-pin-lab dial` spread over both Asterisks and change;
//  2. the Redis master is killed mid-call: calls whose limit write falls in
//     the gap fail closed (nothing reaches the card host), later ones
//     change, and a card's wrong-PIN count from before the failover still
//     stops it at the card limit; the old master rejoins as a replica;
//  3. one Asterisk is killed mid-call: its callers are lost, no PIN is half
//     changed, and every call placed from the kill on reaches the other;
//  4. the killed Asterisk, restarted, takes calls again.
//
// Nothing else is restarted at any step.
func TestRealAsteriskKamailioInFrontOfTwoAsterisks(t *testing.T) {
	t.Parallel()
	needHAProxy(t)
	testkit.Program(t, "kamailio", "kamailio")
	// Sentinel declares the master down after 3 s; the drill holds the
	// promotion until the calls it places in the gap have ended.
	sen := redistest.StartSentinel(t, 3*time.Second)
	pki := testpki.New(t)
	front, stats := testkit.FreeAddr(t), testkit.FreeAddr(t)
	listens, metrics := []string{testkit.FreeAddr(t), testkit.FreeAddr(t)}, []string{testkit.FreeAddr(t), testkit.FreeAddr(t)}
	l := startLineWith(t, lineOptions{outbound: true, front: front, pki: pki, env: []string{
		"IVRPIN_REDIS_SENTINELS=" + sen.Addr, "IVRPIN_REDIS_MASTER=" + sen.Master, "IVRPIN_REDIS_WAIT_TIMEOUT=1s",
		"IVRPIN_LIMIT_KEY=" + randomHex(16), "IVRPIN_LIMIT_CARD_MAX=2",
	}})
	var pw string
	for _, v := range l.env {
		if p, ok := strings.CutPrefix(v, "IVRPIN_ARI_LISTEN_PASSWORD="); ok {
			pw = p
		}
	}
	// Each Asterisk has a system name of its own (asterisk.conf), so their
	// channel ids never collide at the fleet.
	ast2 := asterisktest.Start(t, asterisktest.Options{OutboundURI: "wss://" + front + "/ari", OutboundCA: pki.CAFile,
		OutboundPassword: pw, SystemName: "pin-ast2"})
	asts := []*asterisktest.Asterisk{l.ast, ast2}
	serves := startTLSFleet(t, l, pki, front, stats, listens, metrics)

	kdir := t.TempDir()
	list := filepath.Join(kdir, "dispatcher.list")
	if err := os.WriteFile(list, []byte(fmt.Sprintf("1 sip:%s 2\n1 sip:%s 2\n", l.ast.SIPAddr, ast2.SIPAddr)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The callers (ivr-pin-lab dial) stand for the SBC: on this machine
	// they send from 127.0.0.1, any port.
	sbcs := filepath.Join(kdir, "sbc.list")
	if err := os.WriteFile(sbcs, []byte("1 127.0.0.1 32 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kaddr := freeUDP(t)
	args := kamailiotest.Write(t, kdir, kamailiotest.Files{Listen: kaddr, DispatcherList: list, SBCList: sbcs})
	kam := startProc(t, nil, "kamailio", args...).scannedBy(l)
	time.Sleep(3 * time.Second) // the first OPTIONS probes
	target := "sip:1000@" + kaddr

	// What reached the card host, card by card.
	var hostMu sync.Mutex
	hostSaw := map[string]int{}
	l.sims.CardHost.Observe(func(pan string) {
		hostMu.Lock()
		hostSaw[pan]++
		hostMu.Unlock()
	})
	requests := func(pan string) int {
		hostMu.Lock()
		defer hostMu.Unlock()
		return hostSaw[pan]
	}

	// call places one change through Kamailio: the card's current PIN is
	// typed as cur (wrong when it is not the card's).
	type placed struct {
		pan, from, to string
		code          int
		out           string
	}
	callWith := func(t *testing.T, pan, exp, cur, to string, timeout time.Duration) placed {
		code, out := l.dial(t, target, "--keys", "1 "+pan+"# "+printed(exp)+" "+cur+"# "+to+"# "+to+"#", "--timeout", timeout.String())
		return placed{pan: pan, to: to, code: code, out: out}
	}
	call := func(t *testing.T) error {
		pan, exp := l.changeCard("7392")
		l.typed("", "4829")
		p := callWith(t, pan, exp, "7392", "4829", 90*time.Second)
		if p.code != 0 {
			return fmt.Errorf("dial exit %d:\n%s", p.code, p.out)
		}
		if !l.sims.CardHost.PINIs(pan, "4829") {
			return fmt.Errorf("not changed:\n%s", p.out)
		}
		return nil
	}
	batch := func(t *testing.T, n int) {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := call(t); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	// started places n changes at once in the background; wait collects
	// them. Each keeps its card's PIN (7392) until the host changes it.
	started := func(n int, timeout time.Duration) (wait func() []placed) {
		out := make([]placed, n)
		var wg sync.WaitGroup
		for i := range out {
			pan, exp := l.changeCard("7392")
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i] = callWith(t, pan, exp, "7392", "4829", timeout)
				out[i].from = "7392"
			}()
		}
		l.typed("", "4829")
		return func() []placed { wg.Wait(); return out }
	}
	// whole: every card holds its old PIN or its new one, never anything
	// else, and a card whose request never reached the host kept its old.
	whole := func(t *testing.T, ps []placed) (changed, lost int) {
		for _, p := range ps {
			switch {
			case l.sims.CardHost.PINIs(p.pan, p.to):
				changed++
			case l.sims.CardHost.PINIs(p.pan, p.from):
				lost++
			default:
				t.Fatalf("a card holds neither its old PIN nor its new one:\n%s", p.out)
			}
		}
		return changed, lost
	}

	// A call with a wrong current PIN is hung up by the tester once the
	// line has sent it (a change takes about 70 s of prompts): its one
	// attempt counts against the card.
	const wrongPINCall, changeCall = 85 * time.Second, 120 * time.Second
	limitPAN, limitExp := l.changeCard("1470")
	l.typed("", "1357", "4829")

	// 1. Calls spread over both Asterisks (and both instances) and change;
	// beside the last batch, the first wrong-PIN attempt on the limit card.
	before := []int{callsProcessed(t, asts[0]), callsProcessed(t, asts[1])}
	for i := 0; i < 4; i++ {
		if i < 3 {
			batch(t, 5)
			continue
		}
		wrong := make(chan struct{})
		go func() { defer close(wrong); callWith(t, limitPAN, limitExp, "1357", "4829", wrongPINCall) }()
		batch(t, 5)
		<-wrong
	}
	if t.Failed() {
		t.Fatalf("kamailio:\n%s", kam.out.String())
	}
	took := []int{callsProcessed(t, asts[0]) - before[0], callsProcessed(t, asts[1]) - before[1]}
	if took[0] < 5 || took[1] < 5 {
		t.Fatalf("calls per Asterisk %v: not spread", took)
	}
	t.Logf("20 calls through Kamailio over wss: %v per Asterisk (tester half and line half each count)", took)

	// 2. The Redis master dies mid-call. The limit card has used one of
	// its two attempts.
	if requests(limitPAN) != 1 {
		t.Fatalf("the wrong-PIN attempt reached the host %d times", requests(limitPAN))
	}
	// Sentinel may not promote until the calls placed at the kill have met
	// the gap: on a busy machine a call takes longer to reach its first
	// limit check than Sentinel takes to promote, and a drill racing that
	// clock once tested nothing.
	sen.HoldPromotion(t)
	inFlight := started(3, changeCall)
	time.Sleep(20 * time.Second) // the callers are typing
	killed := time.Now()
	sen.Kill("master")
	inGap := started(3, changeCall)() // each meets the dead store and ends
	sen.ReleasePromotion(t)
	promoted := sen.WaitPromoted(t, 60*time.Second)
	gap := promoted.Sub(killed)
	results := append(inFlight(), inGap...)
	changed, refused := whole(t, results)
	for _, p := range results {
		if l.sims.CardHost.PINIs(p.pan, p.from) && requests(p.pan) != 0 {
			t.Fatalf("a call that did not change its PIN still reached the card host (%d requests):\n%s", requests(p.pan), p.out)
		}
	}
	for _, p := range inGap {
		if !l.sims.CardHost.PINIs(p.pan, p.from) {
			t.Fatalf("a call placed while no Redis master was reachable changed its PIN: the line did not fail closed\n%s", p.out)
		}
	}
	// After the promotion: the card's second attempt (wrong again) is
	// counted on the new master, and a third call is stopped at the card
	// limit although it types the right PIN: the first attempt, written
	// before the failover, still counts.
	wrong := make(chan struct{})
	go func() { defer close(wrong); callWith(t, limitPAN, limitExp, "1357", "4829", wrongPINCall) }()
	batch(t, 2)
	<-wrong
	// The old master rejoins as a replica while the third call runs.
	sen.RestartOldMaster()
	third := make(chan struct{})
	go func() { defer close(third); callWith(t, limitPAN, limitExp, "1470", "4829", changeCall) }()
	time.Sleep(2 * time.Second)
	batch(t, 2)
	<-third
	if got := requests(limitPAN); got != 2 || !l.sims.CardHost.PINIs(limitPAN, "1470") {
		t.Fatalf("card limit after the failover: %d requests reached the host (want 2) and the PIN changed=%v",
			got, !l.sims.CardHost.PINIs(limitPAN, "1470"))
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("Redis master killed mid-call: a replica was promoted %s later, once the calls placed in the gap had ended; of 6 calls around the kill %d changed and %d failed closed with nothing sent to the card host; the card limit still held across the failover; the old master rejoined as a replica",
		gap.Round(100*time.Millisecond), changed, refused)

	// 3. Asterisk 2 killed mid-call: its callers are lost, no PIN is half
	// changed, and every call placed from that instant on reaches
	// Asterisk 1 and changes. How long Kamailio still chose the dead
	// server: the last of its "call ... to Asterisk" lines naming it after
	// the kill, and the last fail-over from it (2 s later: the INVITE
	// timer). Kamailio's lines carry no time: watched here.
	chose := func() int { return strings.Count(kam.out.String(), "to Asterisk sip:"+ast2.SIPAddr) }
	failovers := func() int {
		return strings.Count(kam.out.String(), "Asterisk sip:"+ast2.SIPAddr+" failed")
	}
	var mu sync.Mutex
	var lastChosen, lastFailover time.Duration
	stopWatch := make(chan struct{})
	midCall := started(4, changeCall)
	for deadline := time.Now().Add(20 * time.Second); activeCalls(t, ast2) < 1 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(15 * time.Second) // the callers are typing
	astKilled := time.Now()
	go func() {
		seenChose, seenFailed := chose(), failovers()
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			mu.Lock()
			if n := chose(); n > seenChose {
				seenChose, lastChosen = n, time.Since(astKilled)
			}
			if n := failovers(); n > seenFailed {
				seenFailed, lastFailover = n, time.Since(astKilled)
			}
			mu.Unlock()
		}
	}()
	_ = syscall.Kill(ast2.PID(), syscall.SIGKILL)
	// Three pairs of calls, placed at the kill and 1 s and 2 s after it
	// (before and after Kamailio's next probe).
	var after sync.WaitGroup
	for i := 0; i < 3; i++ {
		after.Add(1)
		go func() { defer after.Done(); batch(t, 2) }()
		time.Sleep(time.Second)
	}
	after.Wait()
	close(stopWatch)
	if t.Failed() {
		t.Fatalf("calls after the kill failed; kamailio:\n%s", kam.out.String())
	}
	changed, lost := whole(t, midCall())
	mu.Lock()
	t.Logf("Asterisk 2 killed mid-call: of 4 calls under way %d changed and %d were lost (their PINs unchanged); 6 new calls placed from the kill on all changed through Asterisk 1; Kamailio chose the dead server for the last time %s after the kill, and failed that call over to Asterisk 1 at %s (0s: never)",
		changed, lost, lastChosen.Round(10*time.Millisecond), lastFailover.Round(10*time.Millisecond))
	if lastChosen > 6*time.Second {
		t.Errorf("Kamailio still chose the dead Asterisk %s after the kill: three probe intervals", lastChosen)
	}
	mu.Unlock()

	// 4. Asterisk 2 back: probing returns it to the set.
	if err := ast2.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	back := callsProcessed(t, ast2)
	batch(t, 4)
	if got := callsProcessed(t, ast2) - back; got < 1 {
		t.Fatalf("the restarted Asterisk took no call (%d)", got)
	}
	for _, p := range serves {
		select {
		case err := <-p.exited:
			t.Fatalf("an instance exited during the drills (%v):\n%s", err, p.out.String())
		default:
		}
	}
}

// activeCalls is an Asterisk's count of calls up now.
func activeCalls(t *testing.T, a *asterisktest.Asterisk) int {
	out, err := a.CLI("core show channels count")
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(`(\d+) active calls?`).FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
