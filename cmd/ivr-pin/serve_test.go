package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/leakcheck"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
	"github.com/ivr-pin/ivr-pin/prompts"
)

func get(t *testing.T, url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeAsAProcess runs `ivr-pin serve` as its own process against the
// ARI test server and the host simulators, as a deployment runs it.
func TestServeAsAProcess(t *testing.T) {
	bin := binary(t)
	zpkHex, zpk := testZPK(37, 11)
	const apiSecret = "0123456789abcdef0123456789abcdef"
	sims, err := simrun.Start(simrun.Options{BankID: "TB01", APIKey: "test-api-key", ZPK: zpk, APISecret: apiSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()

	dir := t.TempDir()
	metricsAddr := testkit.FreeAddr(t)
	auditPath := filepath.Join(dir, "audit.jsonl")
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"IVRPIN_ARI_URL="+ari.URL, "IVRPIN_ARI_USERNAME=ivr-pin", "IVRPIN_ARI_PASSWORD=aritest-password-0001",
		"IVRPIN_NI_URL="+sims.CardHostURL, "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK="+zpkHex, "IVRPIN_LAB=true",
		"IVRPIN_KEYSECURE_URL="+sims.KeySecureURL, "IVRPIN_KEYSECURE_API_KEY=test-api-key", "IVRPIN_KEYSECURE_API_SECRET="+apiSecret,
		"IVRPIN_METRICS_ADDR="+metricsAddr, "IVRPIN_AUDIT_FILE="+auditPath, "IVRPIN_LIMIT_STORE="+filepath.Join(dir, "attempts.db"),
		"IVRPIN_AUDIT_KEY_FILE="+auditKeyFile(t), "IVRPIN_LIMIT_KEY=73657276652d746573742d6c696d69742d6b6579", "IVRPIN_LOG_LEVEL=debug", "IVRPIN_DRAIN_TIMEOUT=20s", "IVRPIN_FIRST_DIGIT_TIMEOUT=3s",
	)
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := testkit.Start(t, cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	if err := ari.WaitConnected("ivr-pin", 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}

	// One complete call.
	typeChange(t, ari, logs)
	if !sims.CardHost.PINIs("4111111111111111", "4829") {
		t.Fatal("PIN not changed")
	}

	code, body := get(t, "http://"+metricsAddr+"/metrics")
	// The call's record is written just before it leaves the registry.
	for i := 0; i < 100 && !strings.Contains(body, "ivrpin_active_calls 0"); i++ {
		time.Sleep(20 * time.Millisecond)
		code, body = get(t, "http://"+metricsAddr+"/metrics")
	}
	for _, want := range []string{`ivrpin_calls_total{end="outcome",outcome="changed",path="change"} 1`, `ivrpin_ari_ready{transport="inbound"} 1`,
		`ivrpin_host_request_seconds_count{host="cardhost",result="changed"} 1`, "ivrpin_active_calls 0", "ivrpin_build_info{goversion=\"go1.",
		`ivrpin_ari_calls_refused_total{reason="channel_taken"} 0`, `ivrpin_pin_key_ready{where="software"} 1`,
		"ivrpin_audit_write_errors_total 0", `ivrpin_keysecure_requests_total{kind="set"} 0`, "ivrpin_line_guard_active 0"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, body := get(t, "http://"+metricsAddr+"/readyz"); code != 200 || !strings.Contains(body, `"ari_connected":true`) {
		t.Errorf("/readyz %d %s", code, body)
	}
	// Memory locked against swap where the limit allows (root, or
	// LimitMEMLOCK=infinity), else a warning: the metric, /readyz and the
	// kernel's own count (VmLck) agree either way.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	locked := false
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmLck:"); ok {
			locked = strings.Fields(v)[0] != "0"
		}
	}
	_, body = get(t, "http://"+metricsAddr+"/metrics")
	_, ready := get(t, "http://"+metricsAddr+"/readyz")
	if locked && (!strings.Contains(body, "ivrpin_memory_locked 1") || !strings.Contains(ready, `"memory_locked":true`)) ||
		!locked && (!strings.Contains(body, "ivrpin_memory_locked 0") || !strings.Contains(logs.String(), "memory not locked")) {
		t.Errorf("VmLck says locked=%v; /readyz %s; metric line present: %v", locked, ready, strings.Contains(body, "ivrpin_memory_locked"))
	}
	if code, _ := get(t, "http://"+metricsAddr+"/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	// The container's health check asks the same.
	var rout, rerr strings.Builder
	if code := run([]string{"ready", "--addr", metricsAddr}, nil, &rout, &rerr); code != 0 || !strings.Contains(rout.String(), `"ready":true`) {
		t.Errorf("ivr-pin ready: %d %s %s", code, rout.String(), rerr.String())
	}

	// logrotate: the file is moved away and SIGHUP reopens it; the calls
	// below are audited in the new file.
	if err := os.Rename(auditPath, auditPath+".1"); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	for i := 0; i < 100 && !strings.Contains(logs.String(), "audit file reopened"); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "audit file reopened") {
		t.Fatalf("SIGHUP did not reopen the audit file:\n%s", logs.String())
	}

	// SIGTERM with a call in progress: it may finish; a new call is turned away.
	active, _ := ari.PlaceCall(aritest.CallOptions{})
	if err := active.WaitPlayed(5*time.Second, "menu-change", 1); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	late, err := ari.PlaceCall(aritest.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := late.WaitPlayed(5*time.Second, "service-closing", 1); err != nil {
		t.Fatalf("a call during the drain did not hear the closing message: %v", err)
	}
	if err := active.PressEachWhenAsked(prompts.AsksMedia, 20*time.Second, "2", "4012888888881881#", "0130", "731", "482915#", "482915#"); err != nil {
		t.Logf("the caller stopped typing: %v", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after the drain")
	}
	if !sims.KeySecure.PINIs("C202605220001", "482915") {
		t.Fatal("the call in progress at SIGTERM was not allowed to finish")
	}

	rotated, err := os.ReadFile(auditPath + ".1")
	if err != nil {
		t.Fatal(err)
	}
	current, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	calls := func(b []byte) int { return strings.Count(string(b), `"record":"call"`) }
	attempts := func(b []byte) int { return strings.Count(string(b), `"record":"attempt"`) }
	if calls(rotated) != 1 || calls(current) != 2 || attempts(rotated) != 1 || attempts(current) != 1 {
		t.Fatalf("audit records: rotated file\n%s\ncurrent file\n%s\nwant 1 call and its attempt, then 2 calls (one turned away) and 1 attempt", rotated, current)
	}
	var out, errb strings.Builder
	if code := run([]string{"audit", "check", "--key-file", auditKeyFile(t), auditPath + ".1", auditPath}, nil, &out, &errb); code != 0 {
		t.Fatalf("audit check: %s %s", out.String(), errb.String())
	}
	auditData := append(rotated, current...)
	written := logs.String() + string(auditData)
	for _, s := range []string{"4111111111111111", "4012888888881881", zpkHex, apiSecret, "aritest-password-0001"} {
		if strings.Contains(written, s) {
			t.Errorf("serve wrote a secret or full PAN (%s…)", s[:4])
		}
	}
	for _, leak := range leakcheck.Find(written, leakcheck.Secrets{Short: []string{"7392", "4829", "482915", "731"}, Keys: []string{"7392#", "4829#", "482915#"}}) {
		t.Errorf("serve: %s", leak)
	}
	if !strings.Contains(string(auditData), `"pan":"411111******1111"`) {
		t.Error("audit record lacks the masked PAN")
	}
}

// A start-up failure names the setting to fix: a metrics address that is
// taken, an attempt store whose directory does not exist.
func TestServeStartupFailuresNameTheSetting(t *testing.T) {
	bin := binary(t)
	ari, err := aritest.Start(aritest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	base := []string{"IVRPIN_ARI_URL=" + ari.URL, "IVRPIN_ARI_PASSWORD=aritest-password-0001",
		"IVRPIN_NI_URL=http://127.0.0.1:1/pin", "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK=0123456789ABCDEFFEDCBA9876543210", "IVRPIN_LAB=true",
		"IVRPIN_LIMIT_KEY=00112233445566778899aabbccddeeff", "IVRPIN_AUDIT_FILE=" + filepath.Join(dir, "audit.jsonl")}
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"IVRPIN_METRICS_ADDR=" + taken.Addr().String(), "IVRPIN_LIMIT_STORE=" + filepath.Join(dir, "a.db")}, "IVRPIN_METRICS_ADDR"},
		{[]string{"IVRPIN_METRICS_ADDR=", "IVRPIN_LIMIT_STORE=" + filepath.Join(dir, "missing", "a.db")}, "IVRPIN_LIMIT_STORE"},
		{[]string{"IVRPIN_METRICS_ADDR=", "IVRPIN_LIMIT_STORE=" + filepath.Join(dir, "b.db"), "IVRPIN_LIMIT_KEY="}, "IVRPIN_LIMIT_KEY"},
	} {
		cmd := exec.Command(bin, "serve")
		cmd.Env = append(append(os.Environ(), base...), c.env...)
		done := make(chan struct{})
		var out []byte
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("serve did not stop (want an error naming %s):\n%s", c.want, out)
		}
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Fatalf("serve: %v, want an error naming %s:\n%s", err, c.want, out)
		}
	}
}

// typeChange places the test card's change (7392 to 4829) on ari, typing
// each group once the line is quiet, and waits for it to end.
func typeChange(t *testing.T, ari *aritest.Server, logs *syncbuf.Buffer) {
	t.Helper()
	ch, err := ari.PlaceCall(aritest.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.PressEachWhenAsked(prompts.AsksMedia, 20*time.Second, "1", "4111111111111111#", "1228", "7392#", "4829#", "4829#"); err != nil {
		t.Logf("the caller stopped typing: %v", err)
	}
	if _, err := ch.WaitEnded(20 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
}

// serve started before Asterisk waits for it: /healthz answers, /readyz is
// 503 and says why, and calls are taken once Asterisk comes up. A refused
// password stays fatal (TestServeStartupFailuresNameTheSetting's cousin in
// ivr: TestInboundFailsFast).
func TestServeWaitsForAsterisk(t *testing.T) {
	bin := binary(t)
	ariAddr, metricsAddr, dir := testkit.FreeAddr(t), testkit.FreeAddr(t), t.TempDir()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "IVRPIN_ARI_URL=http://"+ariAddr+"/ari", "IVRPIN_ARI_PASSWORD=aritest-password-0001",
		"IVRPIN_NI_URL=http://127.0.0.1:1/pin", "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK=0123456789ABCDEFFEDCBA9876543210", "IVRPIN_LAB=true",
		"IVRPIN_LIMIT_KEY=00112233445566778899aabbccddeeff", "IVRPIN_LIMIT_STORE="+filepath.Join(dir, "a.db"),
		"IVRPIN_METRICS_ADDR="+metricsAddr, "IVRPIN_AUDIT_FILE="+filepath.Join(dir, "audit.jsonl"))
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := testkit.Start(t, cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	for i := 0; !strings.Contains(logs.String(), "waiting for it"); i++ {
		select {
		case err := <-exited:
			t.Fatalf("serve exited before Asterisk came up: %v\n%s", err, logs.String())
		default:
		}
		if i > 400 {
			t.Fatalf("serve never said it waits:\n%s", logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	var code int
	var body string
	for i := 0; i < 200; i++ {
		if resp, err := http.Get("http://" + metricsAddr + "/readyz"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if code != 503 || !strings.Contains(body, `"ari_waiting":"asterisk unreachable`) {
		t.Fatalf("/readyz while waiting: %d %s", code, body)
	}
	ari, err := aritest.Start(aritest.Options{Addr: ariAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	if err := ari.WaitConnected("ivr-pin", 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
}

// testZPK is a test zone PIN key (TDES, odd parity) whose byte i is
// i*mul+add: its hex for serve's environment and its ISO 0 key for the
// simulated card host.
func testZPK(mul, add int) (string, *pinblock.ZPK) {
	raw := make([]byte, 16)
	for i := range raw {
		raw[i] = byte(i*mul + add)
	}
	secret.SetOddParity(raw)
	zpkHex := strings.ToUpper(hex.EncodeToString(raw))
	key, _ := secret.ParseHexKey(secret.TDES, zpkHex)
	zpk, _ := pinblock.NewZPK(key, pinblock.ISO0)
	return zpkHex, zpk
}

// testAuditKey chains the audit records of the serves these tests start.
const testAuditKey = "5e7a1c93d04b26f88a11ce7305b9d42e61f0a8c3b7d29e54c18f6a0b3d7e92c4"

// auditKeyFile writes testAuditKey to a file only its owner reads, as serve
// and `audit check` take it.
func auditKeyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "audit-key")
	if err := os.WriteFile(p, []byte(testAuditKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
