package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

// runCheck runs `ivr-pin check` in an environment of env only.
func runCheck(t *testing.T, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary(t), "check", "--timeout", "2s")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// On a fresh machine check lists every problem at once, each naming its
// variable, never a value.
func TestCheckListsEveryProblemAtOnce(t *testing.T) {
	taken := testkit.FreeAddr(t)
	code, out := runCheck(t, "IVRPIN_LANGAUGES=en,ar", "IVRPIN_CALL_TIMEOUT=soon-SECRET", "IVRPIN_MAX_TRIES=three",
		"IVRPIN_LIMIT_STORE=/nonexistent/ivr-pin/attempts.db", "IVRPIN_ARI_URL=http://"+taken+"/ari",
		"IVRPIN_EXPIRY_ORDER=DDMM")
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		"IVRPIN_LANGAUGES: not a setting: did you mean IVRPIN_LANGUAGES?",
		"IVRPIN_CALL_TIMEOUT: malformed value (want a duration such as",
		"IVRPIN_MAX_TRIES: malformed value (want a whole number)",
		"IVRPIN_NI_URL: required",
		"IVRPIN_NI_BANK_ID: required",
		"IVRPIN_NI_ZPK_LABEL: required",
		"IVRPIN_LIMIT_KEY: required",
		"IVRPIN_EXPIRY_ORDER: must be MMYY or YYMM",
		"IVRPIN_LIMIT_STORE: cannot create a file in /nonexistent/ivr-pin",
		"IVRPIN_ARI_URL: Asterisk's ARI is not reachable",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("a value was echoed:\n%s", out)
	}
}

// On a good configuration, with Asterisk and the hosts up, check exits 0;
// a wrong ARI password is named.
func TestCheckPassesAGoodConfiguration(t *testing.T) {
	sims, err := simrun.Start(simrun.Options{BankID: "TB01", APIKey: "test-api-key", APISecret: "0123456789abcdef0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	ari, err := aritest.Start(aritest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	dir := t.TempDir()
	env := []string{"IVRPIN_ARI_URL=" + ari.URL, "IVRPIN_ARI_PASSWORD=aritest-password-0001",
		"IVRPIN_NI_URL=" + sims.CardHostURL, "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK=0123456789ABCDEFFEDCBA9876543210", "IVRPIN_LAB=true",
		"IVRPIN_KEYSECURE_URL=" + sims.KeySecureURL, "IVRPIN_KEYSECURE_API_KEY=test-api-key", "IVRPIN_KEYSECURE_API_SECRET=0123456789abcdef0123456789abcdef",
		"IVRPIN_LIMIT_KEY=00112233445566778899aabbccddeeff", "IVRPIN_LIMIT_STORE=" + filepath.Join(dir, "a.db"),
		"IVRPIN_AUDIT_FILE=" + filepath.Join(dir, "audit.jsonl"), "IVRPIN_METRICS_ADDR=" + testkit.FreeAddr(t)}
	if code, out := runCheck(t, env...); code != 0 || !strings.Contains(out, "serve would start") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if code, out := runCheck(t, append(env, "IVRPIN_ARI_PASSWORD=wrong-password-of-length")...); code != 1 || !strings.Contains(out, "Asterisk refused IVRPIN_ARI_USERNAME / IVRPIN_ARI_PASSWORD") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// check says what serve does, case by case: it exits 0 exactly when serve
// starts, a warning is what serve runs with, and one cause gives one
// message.
func TestCheckIsServesVerdict(t *testing.T) {
	sims, err := simrun.Start(simrun.Options{BankID: "TB01", APIKey: "test-api-key", APISecret: "0123456789abcdef0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	ari, err := aritest.Start(aritest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	dir := t.TempDir()
	loose := filepath.Join(dir, "ari-password")
	if err := os.WriteFile(loose, []byte("aritest-password-0001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(loose, 0o644)
	base := map[string]string{"IVRPIN_ARI_URL": ari.URL, "IVRPIN_ARI_PASSWORD": "aritest-password-0001",
		"IVRPIN_NI_URL": sims.CardHostURL, "IVRPIN_NI_BANK_ID": "TB01", "IVRPIN_NI_ZPK": "0123456789ABCDEFFEDCBA9876543210", "IVRPIN_LAB": "true",
		"IVRPIN_KEYSECURE_URL": sims.KeySecureURL, "IVRPIN_KEYSECURE_API_KEY": "test-api-key", "IVRPIN_KEYSECURE_API_SECRET": "0123456789abcdef0123456789abcdef",
		"IVRPIN_LIMIT_KEY": "00112233445566778899aabbccddeeff", "IVRPIN_LIMIT_STORE": filepath.Join(dir, "a.db")}
	closed := testkit.FreeAddr(t)
	cases := []struct {
		name   string
		change map[string]string // "" unsets
		starts bool
		says   []string // in check's output
		not    []string // never in it
	}{
		{"as configured", nil, true, []string{"serve would start"}, []string{"problem:"}},
		{"a misspelt variable", map[string]string{"IVRPIN_LANGAUGES": "en"}, true,
			[]string{"warning: IVRPIN_LANGAUGES: not a setting: did you mean IVRPIN_LANGUAGES?"}, []string{"problem:"}},
		{"KeySecure down", map[string]string{"IVRPIN_KEYSECURE_URL": "http://" + closed}, true,
			[]string{"warning: IVRPIN_KEYSECURE_URL: KeySecure cannot be reached"}, []string{"problem:"}},
		{"Asterisk down", map[string]string{"IVRPIN_ARI_URL": "http://" + closed + "/ari"}, true,
			[]string{"warning: IVRPIN_ARI_URL: Asterisk's ARI is not reachable (serve waits for it"}, []string{"problem:"}},
		{"a secret file others can read", map[string]string{"IVRPIN_ARI_PASSWORD": "", "IVRPIN_ARI_PASSWORD_FILE": loose}, false,
			[]string{"problem: IVRPIN_ARI_PASSWORD_FILE: " + loose + " has mode 0644", "1 problem,"}, []string{"required"}},
		{"two problems of the card host", map[string]string{"IVRPIN_NI_ZPK": "00112233SECRETISH", "IVRPIN_NI_BANK_ID": ""}, false,
			[]string{"problem: IVRPIN_NI_ZPK:", "problem: IVRPIN_NI_BANK_ID: required"}, []string{"SECRETISH"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := []string{"IVRPIN_METRICS_ADDR=" + testkit.FreeAddr(t), "IVRPIN_AUDIT_FILE=" + filepath.Join(t.TempDir(), "audit.jsonl")}
			for k, v := range base {
				if nv, ok := c.change[k]; ok {
					v = nv
				}
				if v != "" {
					env = append(env, k+"="+v)
				}
			}
			for k, v := range c.change {
				if _, inBase := base[k]; !inBase {
					env = append(env, k+"="+v)
				}
			}
			code, out := runCheck(t, env...)
			if (code == 0) != c.starts {
				t.Errorf("check exited %d; serve starting: %v\n%s", code, c.starts, out)
			}
			for _, w := range c.says {
				if !strings.Contains(out, w) {
					t.Errorf("check does not say %q:\n%s", w, out)
				}
			}
			for _, w := range c.not {
				if strings.Contains(out, w) {
					t.Errorf("check says %q:\n%s", w, out)
				}
			}
			if started := serveStarts(t, env); started != c.starts {
				t.Errorf("serve started: %v; check said %v", started, c.starts)
			}
		})
	}
}

// serveStarts runs serve in env and reports whether it got as far as
// taking calls (its "starting" line) rather than exiting.
func serveStarts(t *testing.T, env []string) bool {
	t.Helper()
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := testkit.Start(t, cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		select {
		case <-exited:
			return false
		case <-time.After(20 * time.Millisecond):
		}
		if strings.Contains(out.String(), `"msg":"starting"`) {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-exited
			return true
		}
	}
}

// config reports every malformed value and unknown variable as check does,
// not the first alone.
func TestConfigReportsEveryProblem(t *testing.T) {
	t.Setenv("IVRPIN_MAX_TRIES", "lots")
	t.Setenv("IVRPIN_CALL_TIMEOUT", "soon")
	var out, errb bytes.Buffer
	if code := run([]string{"config"}, strings.NewReader(""), &out, &errb); code != 1 || out.Len() != 0 ||
		!strings.Contains(errb.String(), "IVRPIN_MAX_TRIES: malformed value") || !strings.Contains(errb.String(), "IVRPIN_CALL_TIMEOUT: malformed value") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	os.Unsetenv("IVRPIN_MAX_TRIES")
	os.Unsetenv("IVRPIN_CALL_TIMEOUT")
	t.Setenv("IVRPIN_LANGAUGES", "en")
	out.Reset()
	errb.Reset()
	if code := run([]string{"config"}, strings.NewReader(""), &out, &errb); code != 0 ||
		!strings.Contains(errb.String(), "warning: IVRPIN_LANGAUGES: not a setting: did you mean IVRPIN_LANGUAGES?") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
}
