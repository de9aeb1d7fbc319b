package main

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/testkit/leakcheck"
)

func runConsole(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := console(args, cli.IO{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

// afterBanner drops the simulated bank's test-card list (test data, printed
// in full on purpose) so the rest can be scanned.
func afterBanner(s string) string {
	_, rest, _ := strings.Cut(s, "\n\n")
	return rest
}

func TestConsoleChangeWithKeysFlag(t *testing.T) {
	for _, tr := range []string{"inbound", "outbound", "persistent"} {
		t.Run(tr, func(t *testing.T) { consoleChange(t, "--transport", tr) })
	}
}

func consoleChange(t *testing.T, extra ...string) {
	code, out, errs := runConsole(t, "", append([]string{"--keys", "1 4111111111111111# 1228 7392# 4829# 4829#", "--speed", "0.01"}, extra...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "IVR: Please enter your card number") || !strings.HasSuffix(strings.TrimSpace(out), "card 411111******1111") ||
		!strings.Contains(out, "Outcome: changed (host cardhost, code 000") {
		t.Fatalf("unexpected output:\n%s", out)
	}
	rest := afterBanner(out) + errs
	for _, leak := range leakcheck.Find(rest, leakcheck.Secrets{PANs: []string{"4111111111111111"}, Short: []string{"7392", "4829"}, Keys: []string{"7392#", "4829#"}}) {
		t.Errorf("outside the test-card list, the console %s", leak)
	}
}

func TestConsoleFirstSetupFromPipedKeys(t *testing.T) {
	code, out, errs := runConsole(t, "2 4012888888881881# 0130 731 482915# 482915#\n", "--speed", "0.01")
	if code != 0 || !strings.Contains(out, "three digit security code") || !strings.Contains(out, "Your new card's PIN has been set.") ||
		!strings.Contains(out, "Outcome: changed (host keysecure, code 0, msg_id ks-") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, leak := range leakcheck.Find(afterBanner(out)+errs, leakcheck.Secrets{PANs: []string{"4012888888881881"}, Short: []string{"731", "482915"}}) {
		t.Errorf("outside the test-card list, the console %s", leak)
	}
}

func TestConsoleExitsNonZeroWithoutAnOutcome(t *testing.T) {
	t.Setenv("IVRPIN_FIRST_DIGIT_TIMEOUT", "100ms")
	code, out, _ := runConsole(t, "", "--keys", "1", "--speed", "0.01")
	if code == 0 || !strings.Contains(out, "Outcome: none") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

func TestConsoleLanguage(t *testing.T) {
	t.Setenv("IVRPIN_LANGUAGES", "en,ar")
	code, out, _ := runConsole(t, "", "--lang", "ar", "--keys", "1 4111111111111111# 1228 7392# 4829# 4829#", "--speed", "0.01")
	if code != 0 || !strings.Contains(out, "تم تغيير الرقم السري") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// A language the line does not have plays the default, and says so.
	code, out, _ = runConsole(t, "", "--lang", "fr", "--keys", "1 4111111111111111# 1228 7392# 4829# 4829#", "--speed", "0.01")
	if code != 0 || !strings.Contains(out, "Your PIN has been changed") || !strings.Contains(out, `language "fr" is not one of the line's`) {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// The console shows the cardholder: the expiry typed as printed
// reaches the card host in its own order, a PIN too long is refused as too
// long (never cut), and the card's last four digits are read back first.
func TestConsoleTheExpiryAsPrintedAndAPINTooLong(t *testing.T) {
	code, out, _ := runConsole(t, "", "--keys", "1 4111111111111111# 1228 7392# 19820514# 4829# 4829#", "--speed", "0.01")
	if code != 0 || !strings.Contains(out, "Outcome: changed") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"For the card ending in 1 1 1 1", "month and year as shown on your card", "That PIN has too many digits."} {
		if !strings.Contains(out, want) {
			t.Errorf("never said %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "did not match") {
		t.Errorf("a PIN too long was blamed on the confirmation:\n%s", out)
	}
}

func TestConfigRefusesBadValueByName(t *testing.T) {
	t.Setenv("IVRPIN_MAX_TRIES", "many-SECRET")
	var errb bytes.Buffer
	if _, ok := loadConfig(&errb); ok {
		t.Fatal("accepted")
	}
	if !strings.Contains(errb.String(), "IVRPIN_MAX_TRIES") || strings.Contains(errb.String(), "SECRET") {
		t.Fatalf("%s", errb.String())
	}
}

// The README's configuration table is `ivr-pin config --table`, kept equal.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	var table bytes.Buffer
	if code := printConfig([]string{"--table"}, cli.IO{Stdout: &table, Stderr: io.Discard}); code != 0 {
		t.Fatal(code)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), table.String()) {
		t.Fatal("README's configuration table differs from `ivr-pin config --table`: regenerate it")
	}
}

// Every row of the README's exit-code table is what the command does: a
// case for each code, and no code the table does not list.
func TestREADMEExitCodes(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := map[int]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| ([0-9]) \| `).FindAllStringSubmatch(string(readme), -1) {
		n, _ := strconv.Atoi(m[1])
		table[n] = true
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"a change reaches its outcome", nil, []string{"console", "--keys", "1 4111111111111111# 1228 7392# 4829# 4829#", "--speed", "0.01"}, 0},
		{"help", nil, []string{"console", "-h"}, 0},
		{"a value refused", map[string]string{"IVRPIN_MAX_TRIES": "lots"}, []string{"console", "--keys", "1", "--speed", "0.01"}, 1},
		{"an unknown flag", nil, []string{"console", "--bogus"}, 2},
		{"too many tries", map[string]string{"IVRPIN_FIRST_DIGIT_TIMEOUT": "300ms"},
			[]string{"console", "--keys", "1 411111# 411111# 411111#", "--speed", "0.01"}, 3},
		{"no input", map[string]string{"IVRPIN_FIRST_DIGIT_TIMEOUT": "200ms"}, []string{"console", "--keys", "", "--speed", "0.01"}, 3},
	}
	seen := map[int]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			if code := run(c.args, strings.NewReader(""), &out, &errb); code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, out.String(), errb.String())
			}
		})
		if !table[c.code] {
			t.Errorf("exit %d (%s) is not in the README's table", c.code, c.name)
		}
		seen[c.code] = true
	}
	for code := range table {
		if !seen[code] {
			t.Errorf("the README's exit code %d has no case here", code)
		}
	}
}
