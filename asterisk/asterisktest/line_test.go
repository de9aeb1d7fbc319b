package asterisktest_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/asterisktest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/leakcheck"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
	"github.com/ivr-pin/ivr-pin/internal/testkit/testpki"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/keysecuresim"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

// bin is the ivr-pin binary the tests run, and labBin ivr-pin-lab (the SIP
// phone), both built once by TestMain when a real Asterisk is configured.
var bin, labBin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Getenv(asterisktest.EnvVar) != "" {
			dir, err := os.MkdirTemp("", "ivrpin-bin-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			bin, labBin = filepath.Join(dir, "ivr-pin"), filepath.Join(dir, "ivr-pin-lab")
			// IVRPIN_TEST_TAGS builds them with tags (pprof, to profile
			// serve in BenchmarkRealAsteriskCalls).
			args := []string{"build", "-tags", os.Getenv("IVRPIN_TEST_TAGS"), "-o", dir + "/", "github.com/ivr-pin/ivr-pin/cmd/ivr-pin", "github.com/ivr-pin/ivr-pin/cmd/ivr-pin-lab"}
			if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build ivr-pin and ivr-pin-lab: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// The keys shared by the simulators and serve (test values, generated
// here, never real).
var (
	zpkHex = func() string {
		raw := []byte("ivr-pin-test-zpk")
		secret.SetOddParity(raw) // a DES key has odd parity, as an HSM makes it
		return strings.ToUpper(hex.EncodeToString(raw))
	}()
	apiSecret = "0123456789abcdef0123456789abcdef"
	limitKey  = "6c696d69742d6b65792d6f662d7468652d746573742d6c696e65"
)

// line is the PIN line on a real Asterisk: Asterisk, the host simulators,
// and `ivr-pin serve` as its own process.
type line struct {
	ast   *asterisktest.Asterisk
	sims  *simrun.Running
	serve *exec.Cmd
	// out is serve's standard output (the audit records), errs its logs.
	out, errs *syncbuf.Buffer
	exited    chan error
	env       []string
	secrets   leakcheck.Secrets
	mu        sync.Mutex
}

func startLine(t testing.TB, env ...string) *line {
	t.Helper()
	return startLineWith(t, lineOptions{env: env})
}

// lineOptions shape a line: outbound has Asterisk dial serve (outbound
// ARI websockets through the shipped websocket_client.conf) instead of
// serve dialling Asterisk.
type lineOptions struct {
	outbound bool
	// persistent, with outbound: one websocket for all calls.
	persistent bool
	env        []string
	// front, with outbound, is where Asterisk dials instead (a load
	// balancer): serve is not started, the test runs its own instances
	// with IVRPIN_ARI_LISTEN of their own.
	front string
	// pki encrypts the ARI link with the test CA's certificates: outbound,
	// Asterisk's websocket client dials wss:// and verifies serve's (or
	// the front's) certificate; inbound, serve dials Asterisk's TLS HTTP
	// server over https/wss and verifies Asterisk's.
	pki *testpki.PKI
	// noCalls: the test expects no call to reach serve (no audit record
	// to scan).
	noCalls bool
}

func startLineWith(t testing.TB, o lineOptions) *line {
	t.Helper()
	var env []string
	var astOpts asterisktest.Options
	if o.outbound {
		listen, pw := testkit.FreeAddr(t), randomHex(12)
		if o.front != "" {
			listen = o.front
		}
		astOpts.OutboundURI, astOpts.OutboundPassword = "ws://"+listen+"/ari", pw
		astOpts.OutboundPersistent = o.persistent
		env = append(env, "IVRPIN_ARI_LISTEN="+listen, "IVRPIN_ARI_LISTEN_PASSWORD="+pw)
		if o.pki != nil {
			astOpts.OutboundURI, astOpts.OutboundCA = "wss://"+listen+"/ari", o.pki.CAFile
			env = append(env, "IVRPIN_ARI_LISTEN_TLS_CERT="+o.pki.ServerCert, "IVRPIN_ARI_LISTEN_TLS_KEY="+o.pki.ServerKey)
		}
	} else if o.pki != nil {
		astOpts.HTTPSCert, astOpts.HTTPSKey = o.pki.ServerCert, o.pki.ServerKey
	}
	ast := asterisktest.Start(t, astOpts)
	if !o.outbound && o.pki != nil {
		env = append(env, "IVRPIN_ARI_URL="+ast.ARIURLTLS, "IVRPIN_ARI_TLS_CA="+o.pki.CAFile)
	}
	env = append(env, o.env...) // the test's own settings win
	key, err := secret.ParseHexKey(secret.TDES, zpkHex)
	if err != nil {
		t.Fatal(err)
	}
	zpk, _ := pinblock.NewZPK(key, pinblock.ISO0)
	sims, err := simrun.Start(simrun.Options{BankID: "TB01", APIKey: "test-api-key", ZPK: zpk, APISecret: apiSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sims.Close)
	l := &line{ast: ast, sims: sims}
	dir := t.TempDir()
	l.env = append([]string{
		"IVRPIN_ARI_URL=" + ast.ARIURL, "IVRPIN_ARI_USERNAME=" + asterisktest.ARIUser, "IVRPIN_ARI_PASSWORD=" + ast.ARIPassword,
		"IVRPIN_NI_URL=" + sims.CardHostURL, "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK=" + zpkHex, "IVRPIN_LAB=true",
		"IVRPIN_KEYSECURE_URL=" + sims.KeySecureURL, "IVRPIN_KEYSECURE_API_KEY=test-api-key", "IVRPIN_KEYSECURE_API_SECRET=" + apiSecret,
		"IVRPIN_LIMIT_STORE=" + filepath.Join(dir, "attempts.db"), "IVRPIN_METRICS_ADDR=" + testkit.FreeAddr(t), "IVRPIN_LIMIT_KEY=" + limitKey,
		"IVRPIN_LOG_LEVEL=debug", "IVRPIN_LOG_FORMAT=json", "IVRPIN_AGENT_TRANSFER=agents,queue,1",
		"IVRPIN_FIRST_DIGIT_TIMEOUT=6s", "IVRPIN_INTER_DIGIT_TIMEOUT=4s", "IVRPIN_DRAIN_TIMEOUT=30s",
		// Many scenarios share the test caller ids: the limits are tested elsewhere.
		"IVRPIN_LIMIT_CALLER_MAX=1000", "IVRPIN_LIMIT_WITHHELD_MAX=1000",
	}, env...)
	if o.front == "" {
		l.startServe(t)
	} else {
		l.out, l.errs = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	}
	t.Cleanup(func() {
		l.stopServe()
		if !o.noCalls {
			l.checkNothingLeaked(t)
		}
		if t.Failed() {
			// What Asterisk said is most of a failure's story.
			logs := l.ast.Logs()
			if len(logs) > 60000 {
				logs = logs[len(logs)-60000:]
			}
			t.Logf("Asterisk's logs (end):\n%s", logs)
			l.mu.Lock()
			serveLog := l.errs.String()
			l.mu.Unlock()
			if len(serveLog) > 4000 {
				serveLog = serveLog[len(serveLog)-4000:]
			}
			t.Logf("serve's log (end):\n%s", serveLog)
		}
	})
	return l
}

func (l *line) startServe(t testing.TB) {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), l.env...)
	out, errs := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	prior := 0 // what earlier processes wrote: not this one's readiness
	l.mu.Lock()
	if l.out != nil {
		prior = len(l.errs.String())
		// Keep what an earlier process wrote: every byte is scanned at the end.
		out.Write([]byte(l.out.String()))
		errs.Write([]byte(l.errs.String()))
	}
	l.out, l.errs = out, errs
	l.mu.Unlock()
	cmd.Stdout, cmd.Stderr = out, errs
	if err := testkit.Start(t, cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	l.serve, l.exited = cmd, exited
	ready := "ARI events connected"
	if slices.ContainsFunc(l.env, func(v string) bool { return strings.HasPrefix(v, "IVRPIN_ARI_LISTEN=") }) {
		ready = "listening for Asterisk's outbound ARI websockets"
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(errs.String()[prior:], ready) {
		select {
		case err := <-exited:
			t.Fatalf("serve exited: %v\n%s", err, errs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not connect to Asterisk:\n%s", errs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopServe sends SIGTERM and waits for the drain.
func (l *line) stopServe() error {
	if l.serve == nil || l.exited == nil || l.serve.ProcessState != nil {
		return nil
	}
	_ = l.serve.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-l.exited:
		return err
	case <-time.After(60 * time.Second):
		_ = l.serve.Process.Kill()
		return fmt.Errorf("serve did not exit after SIGTERM")
	}
}

// typed records what a scenario typed, for the final leak scan.
func (l *line) typed(pan string, short ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pan != "" {
		l.secrets.PANs = append(l.secrets.PANs, pan)
	}
	for _, s := range short {
		l.secrets.Short = append(l.secrets.Short, s)
		if len(s) >= 4 {
			l.secrets.Keys = append(l.secrets.Keys, s+"#")
		}
	}
}

// checkNothingLeaked scans everything Asterisk (its logs, CDRs, spool and
// database) and ivr-pin wrote for the card numbers, PINs and security codes the
// scenarios typed, and checks that Asterisk has no channel left.
func (l *line) checkNothingLeaked(t testing.TB) {
	t.Helper()
	if err := l.ast.WaitNoChannels(10 * time.Second); err != nil {
		t.Error(err)
	}
	l.mu.Lock()
	written := scrubLogMeta(l.ast.Logs()) + "\n" + l.ast.Spool() + "\n" + l.ast.Database() + "\n" + l.out.String() + "\n" + l.errs.String()
	secrets := l.secrets
	l.mu.Unlock()
	if !strings.Contains(written, `"log":"audit"`) {
		t.Error("no audit record was written")
	}
	if !strings.Contains(written, "astdb.sqlite3 <==") {
		t.Error("Asterisk's database was not read: the scan would miss what it holds")
	}
	for _, leak := range leakcheck.Find(written, secrets) {
		t.Error(leak)
	}
}

// asteriskMeta is the metadata Asterisk puts before each log message: the
// timestamp and the thread id after the level ("[2026-11-28 22:00:54.860]
// ERROR[2580]"). A thread id may equal a typed PIN by chance; the message
// that follows is scanned whole.
var asteriskMeta = regexp.MustCompile(`\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\]|\b(ERROR|WARNING|NOTICE|VERBOSE|DEBUG|DTMF|SECURITY)\[\d+\](\[[^\]]*\])?`)

func scrubLogMeta(s string) string { return asteriskMeta.ReplaceAllString(s, "") }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cards makes test cards of the scenarios' own, so scenarios run in
// parallel on one line without sharing a card.
var cardSeq atomic.Int64

func newPAN() string {
	n := cardSeq.Add(1)
	body := "4000" + fmt.Sprintf("%011d", 77000000000+n) // 15 digits
	for d := 0; d <= 9; d++ {
		if pan := body + strconv.Itoa(d); policy.Luhn(pan) {
			return pan
		}
	}
	panic("no check digit")
}

// changeCard adds a card to the card host with current PIN pin.
func (l *line) changeCard(pin string) (pan, expiry string) {
	pan, expiry = newPAN(), "2911"
	l.sims.CardHost.AddCard(pan, expiry, "", "active", pin)
	l.typed(pan, pin)
	return pan, expiry
}

// setupCard adds a physical, activated card without a PIN to KeySecure.
func (l *line) setupCard(cvv string) (pan, expiry, cardNo string) {
	pan, expiry = newPAN(), "3003"
	n := cardSeq.Add(1)
	cardNo = fmt.Sprintf("C2026112%05d", n)
	l.sims.KeySecure.AddCard(keysecuresim.Card{CardNo: cardNo, CardholderNo: fmt.Sprintf("U2026112%05d", n), Type: "Physical",
		Status: "Activated", Created: time.Now().Add(-48 * time.Hour), PAN: pan, Expiry: expiry, CVV: cvv})
	l.typed(pan, cvv)
	return pan, expiry, cardNo
}

// step is one thing the caller does: wait until a prompt has started n
// times, then press keys ("" presses nothing).
type step struct {
	media string
	n     int
	keys  string
}

func run(t testing.TB, c *asterisktest.LocalCall, steps ...step) {
	t.Helper()
	for _, s := range steps {
		n := s.n
		if n == 0 {
			n = 1
		}
		if err := c.WaitPlayed(s.media, n, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if s.keys != "" {
			if err := c.Press(s.keys); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// scenarioChange is one scenario, run on any line (inbound or outbound).
func scenarioChange(l *line, d *asterisktest.Driver) func(*testing.T) {
	return func(t *testing.T) {
		t.Parallel()
		pan, exp := l.changeCard("7392")
		l.typed("", "4829")
		c := d.Call(t, asterisktest.CallOptions{})
		run(t, c, step{media: "menu-change", keys: "1"}, step{media: "enter-card", keys: pan + "#"}, step{media: "enter-expiry", keys: printed(exp)},
			step{media: "enter-current-pin", keys: "7392#"}, step{media: "enter-new-pin", keys: "4829#"}, step{media: "confirm-new-pin", keys: "4829#"},
			step{media: "result-changed"}, step{media: "goodbye"})
		if err := c.WaitGone(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		if !l.sims.CardHost.PINIs(pan, "4829") {
			t.Fatal("the card host does not hold the new PIN")
		}
	}
}

// scenarioFirstSetup is one scenario, run on any line (inbound or outbound).
func scenarioFirstSetup(l *line, d *asterisktest.Driver) func(*testing.T) {
	return func(t *testing.T) {
		t.Parallel()
		pan, exp, cardNo := l.setupCard("562")
		l.typed("", "730164")
		c := d.Call(t, asterisktest.CallOptions{})
		run(t, c, step{media: "menu-setup", keys: "2"}, step{media: "enter-card", keys: pan + "#"}, step{media: "enter-expiry", keys: printed(exp)},
			step{media: "enter-security-code", keys: "562"}, step{media: "enter-new-pin", keys: "730164#"},
			step{media: "confirm-new-pin", keys: "730164#"}, step{media: "result-set"})
		if err := c.WaitGone(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		if !l.sims.KeySecure.PINIs(cardNo, "730164") {
			t.Fatal("KeySecure does not hold the first PIN")
		}
	}
}

// scenarioTransferInAndBack is one scenario, run on any line (inbound or outbound).
func scenarioTransferInAndBack(l *line, d *asterisktest.Driver) func(*testing.T) {
	return func(t *testing.T) {
		t.Parallel()
		pan, exp := l.changeCard("3917")
		l.typed("", "4829")
		c := d.Call(t, asterisktest.CallOptions{Context: "ivr-pin-transfer", Exten: "change",
			Variables: map[string]string{"IVRPIN_AGENT": "agent7", "IVRPIN_PAN": pan, "IVRPIN_EXPIRY": exp}})
		run(t, c, step{media: "enter-current-pin", keys: "3917#"}, step{media: "enter-new-pin", keys: "4829#"},
			step{media: "confirm-new-pin", keys: "4829#"}, step{media: "result-changed"}, step{media: "returning-to-agent"})
		if err := c.WaitDialplan("ivr-pin-return", "agent7", "Dial", 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if !l.sims.CardHost.PINIs(pan, "4829") {
			t.Fatal("not changed")
		}
		c.Hangup()
	}
}

// printed is a card's expiry as the caller types it: as printed on the card
// (MMYY, the line's default IVRPIN_EXPIRY_ORDER), from the host's YYMM.
func printed(yymm string) string { return yymm[2:] + yymm[:2] }
