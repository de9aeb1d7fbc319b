package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
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
		"IVRPIN_NI_URL=" + sims.CardHostURL, "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK=0123456789ABCDEFFEDCBA9876543210",
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
