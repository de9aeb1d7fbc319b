package asterisktest_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/asterisktest"
	"github.com/ivr-pin/ivr-pin/internal/redistest"
)

// kamailioConfig is deploy/kamailio/kamailio.cfg with this test's address
// and dispatcher list: addresses rewritten only.
func kamailioConfig(t *testing.T, listen, list string) string {
	b, err := os.ReadFile(filepath.Join(asterisktest.ConfDir(), "..", "..", "deploy", "kamailio", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, r := range []struct{ pattern, with string }{
		{`!LISTEN!udp:127\.0\.0\.1:5060!g`, "!LISTEN!udp:" + listen + "!g"},
		{`!DISPATCHER_LIST!/etc/kamailio/dispatcher\.list!g`, "!DISPATCHER_LIST!" + list + "!g"},
	} {
		re := regexp.MustCompile(r.pattern)
		if !re.MatchString(cfg) {
			t.Fatalf("deploy/kamailio/kamailio.cfg: nothing matches %s", r.pattern)
		}
		cfg = re.ReplaceAllLiteralString(cfg, r.with)
	}
	return cfg
}

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
// instances through HAProxy, sharing their limits in Redis. Calls from
// `ivr-pin dial` spread over both Asterisks and change; one Asterisk is
// killed and every call placed from then on reaches the other; brought
// back, it takes calls again without a restart of anything else.
func TestRealAsteriskKamailioInFrontOfTwoAsterisks(t *testing.T) {
	t.Parallel()
	needHAProxy(t)
	if _, err := exec.LookPath("kamailio"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kamailio is not installed (.ci/run installs it)")
		}
		t.Skip("kamailio is not installed")
	}
	redisURL, _ := redistest.Start(t)
	front, stats := freeAddr(t), freeAddr(t)
	listens, metrics := []string{freeAddr(t), freeAddr(t)}, []string{freeAddr(t), freeAddr(t)}
	l := startLineWith(t, lineOptions{outbound: true, front: front, env: []string{"IVRPIN_REDIS_URL=" + redisURL}})
	var pw string
	for _, v := range l.env {
		if p, ok := strings.CutPrefix(v, "IVRPIN_ARI_LISTEN_PASSWORD="); ok {
			pw = p
		}
	}
	// Each Asterisk has a system name of its own (asterisk.conf), so their
	// channel ids never collide at the fleet.
	ast2 := asterisktest.Start(t, asterisktest.Options{OutboundURI: "ws://" + front + "/ari", OutboundPassword: pw, SystemName: "pin-ast2"})
	asts := []*asterisktest.Asterisk{l.ast, ast2}
	startInstances(t, l, listens, metrics, nil)
	startHAProxy(t, l, haproxyConfig(t, front, stats, listens, metrics), stats, 2)

	kdir := t.TempDir()
	list := filepath.Join(kdir, "dispatcher.list")
	if err := os.WriteFile(list, []byte(fmt.Sprintf("1 sip:%s 2\n1 sip:%s 2\n", l.ast.SIPAddr, ast2.SIPAddr)), 0o600); err != nil {
		t.Fatal(err)
	}
	kaddr := freeUDP(t)
	kcfg := filepath.Join(kdir, "kamailio.cfg")
	if err := os.WriteFile(kcfg, []byte(kamailioConfig(t, kaddr, list)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(kdir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	kam := startProc(t, nil, "kamailio", "-DD", "-E", "-f", kcfg, "-Y", filepath.Join(kdir, "run")).scannedBy(l)
	time.Sleep(3 * time.Second) // the first OPTIONS probes
	target := "sip:1000@" + kaddr

	// call places one change through Kamailio and says whether it worked.
	call := func(t *testing.T) error {
		pan, exp := l.changeCard("7392")
		l.typed("", "4829")
		code, out := l.dial(t, target, "--keys", "1 "+pan+"# "+printed(exp)+" 7392# 4829# 4829#", "--timeout", "90s")
		if code != 0 {
			return fmt.Errorf("dial exit %d:\n%s", code, out)
		}
		if !l.sims.CardHost.PINIs(pan, "4829") {
			return fmt.Errorf("not changed:\n%s", out)
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

	// 1. Calls spread over both Asterisks (and both instances) and change.
	before := []int{callsProcessed(t, asts[0]), callsProcessed(t, asts[1])}
	for i := 0; i < 4; i++ {
		batch(t, 5)
	}
	if t.Failed() {
		t.Fatalf("kamailio:\n%s", kam.out.String())
	}
	took := []int{callsProcessed(t, asts[0]) - before[0], callsProcessed(t, asts[1]) - before[1]}
	if took[0] < 5 || took[1] < 5 {
		t.Fatalf("calls per Asterisk %v: not spread", took)
	}
	t.Logf("20 calls through Kamailio: %v per Asterisk (tester half and line half each count)", took)

	// 2. Asterisk 2 killed: every call placed from that instant on
	// reaches Asterisk 1 and changes.
	// How long Kamailio still chose the dead server: the time of its last
	// fail-over from it (Kamailio's lines carry no time: watched here).
	failovers := func() int {
		return strings.Count(kam.out.String(), "Asterisk sip:"+ast2.SIPAddr+" failed")
	}
	var mu sync.Mutex
	var lastFailover time.Duration
	stopWatch := make(chan struct{})
	killed := time.Now()
	go func() {
		seen := failovers()
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if n := failovers(); n > seen {
				seen = n
				mu.Lock()
				lastFailover = time.Since(killed)
				mu.Unlock()
			}
		}
	}()
	_ = syscall.Kill(ast2.PID(), syscall.SIGKILL)
	for i := 0; i < 3; i++ {
		batch(t, 2)
	}
	close(stopWatch)
	if t.Failed() {
		t.Fatalf("calls after the kill failed; kamailio:\n%s", kam.out.String())
	}
	mu.Lock()
	t.Logf("Asterisk 2 killed: 6 new calls placed from the kill on all changed through Asterisk 1; Kamailio's last fail-over from the dead one came %s after the kill (0s: it never chose it)", lastFailover.Round(10*time.Millisecond))
	mu.Unlock()

	// 3. Asterisk 2 back: probing returns it to the set.
	if err := ast2.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	back := callsProcessed(t, ast2)
	batch(t, 4)
	if got := callsProcessed(t, ast2) - back; got < 1 {
		t.Fatalf("the restarted Asterisk took no call (%d)", got)
	}
}
