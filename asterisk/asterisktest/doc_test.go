package asterisktest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/asterisktest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
)

// docCommands reads docs/asterisk.md's commands: each ```sh block after a
// `<!-- doc-test: NAME -->` marker, by NAME.
func docCommands(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(asterisktest.ConfDir(), "..", "..", "docs", "asterisk.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	re := regexp.MustCompile("(?s)<!-- doc-test: ([a-z]+) -->\\s*```sh\\n(.*?)\\n\\s*```")
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = strings.TrimSpace(m[2])
	}
	for _, name := range []string{"mkpasswd", "prompts", "simulate", "serve", "dial"} {
		if out[name] == "" {
			t.Fatalf("docs/asterisk.md has no doc-test block %q", name)
		}
	}
	return out
}

// argv splits a doc command into words, honouring double quotes.
func argv(cmd string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`"([^"]*)"|(\S+)`).FindAllStringSubmatch(cmd, -1) {
		if m[2] != "" {
			out = append(out, m[2])
		} else {
			out = append(out, m[1])
		}
	}
	return out
}

// TestRealAsteriskFollowsTheSetUpDoc runs docs/asterisk.md's numbered steps
// with the commands taken from its doc-test blocks, on a real Asterisk with
// the shipped configuration, and makes a call: the page works when
// followed. What a test must change is only where things are (this
// Asterisk's paths and ports, temporary directories).
func TestRealAsteriskFollowsTheSetUpDoc(t *testing.T) {
	t.Parallel()
	cmds := docCommands(t)
	a := asterisktest.Start(t, asterisktest.Options{}) // steps 0-6: the shipped files, copied
	dir := t.TempDir()

	// Step 1: the ARI password's hash, made as the page says and set in
	// ari.conf; the clear password then logs in.
	password := "doc-test-" + randomHex(12)
	mk := argv(cmds["mkpasswd"])
	if len(mk) != 3 || mk[0] != "asterisk" || mk[1] != "-rx" {
		t.Fatalf("step 1 is not an asterisk -rx command: %q", cmds["mkpasswd"])
	}
	out, err := a.CLI(strings.Replace(mk[2], "the-password", password, 1))
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	hash := strings.TrimSpace(out[strings.LastIndex(out, "password = ")+len("password = "):])
	if !strings.HasPrefix(hash, "$") {
		t.Fatalf("mkpasswd printed %q", out)
	}
	ariConf := filepath.Join(a.Root, "etc", "ari.conf")
	conf, _ := os.ReadFile(ariConf)
	section := regexp.MustCompile(`(?s)(\[ivr-pin\]\n.*?)password_format = plain\npassword = [^\n]*`)
	if !section.Match(conf) {
		t.Fatalf("ari.conf's [ivr-pin] is not as the harness wrote it:\n%s", conf)
	}
	conf = section.ReplaceAll(conf, []byte("${1}password_format = crypt\npassword = "+strings.ReplaceAll(hash, "$", "$$")))
	if err := os.WriteFile(ariConf, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := a.CLI("module reload res_ari.so"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	pwFile := filepath.Join(dir, "ari_password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Step 5: the installed prompts pass the check.
	pr := argv(cmds["prompts"])
	pr[len(pr)-1] = filepath.Join(a.Root, "lib", "sounds")
	if b, err := exec.Command(bin, pr[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("step 5, %q: %v\n%s", cmds["prompts"], err, b)
	}

	// Step 7: the simulated bank, its printed settings, check, serve.
	sim := argv(cmds["simulate"])
	sim = append(sim[1:], "--cardhost", testkit.FreeAddr(t), "--keysecure", testkit.FreeAddr(t))
	for i, w := range sim {
		if w == "/tmp/ivr-pin-sim" {
			sim[i] = filepath.Join(dir, "sim")
		}
	}
	simProc := startProc(t, nil, bin, sim...)
	simProc.waitFor(t, "Requests (card masked")
	var env []string
	for _, ln := range strings.Split(simProc.out.String(), "\n") {
		if kv, ok := strings.CutPrefix(ln, "export "); ok {
			env = append(env, kv)
		}
	}
	env = append(env, "IVRPIN_ARI_URL="+a.ARIURL, "IVRPIN_ARI_PASSWORD_FILE="+pwFile,
		// Where this test may write (the defaults are /var/lib/ivr-pin).
		"IVRPIN_LIMIT_STORE="+filepath.Join(dir, "attempts.db"), "IVRPIN_AUDIT_FILE="+filepath.Join(dir, "audit.jsonl"),
		"IVRPIN_METRICS_ADDR="+testkit.FreeAddr(t))
	sv := strings.Split(cmds["serve"], "&&")
	if len(sv) != 2 || strings.TrimSpace(sv[0]) != "ivr-pin check" || strings.TrimSpace(sv[1]) != "ivr-pin serve" {
		t.Fatalf("step 7 no longer checks then serves: %q", cmds["serve"])
	}
	check := exec.Command(bin, "check")
	check.Env = append(os.Environ(), env...)
	if b, err := check.CombinedOutput(); err != nil {
		t.Fatalf("step 7, ivr-pin check: %v\n%s", err, b)
	}
	serve := startProc(t, env, bin, "serve")
	serve.waitFor(t, "ARI events connected")

	// The call, as the page places it.
	dial := argv(cmds["dial"])
	dial[len(dial)-1] = strings.Replace(dial[len(dial)-1], "127.0.0.1:5060", a.SIPAddr, 1)
	if dial[0] != "ivr-pin-lab" {
		t.Fatalf("the page's call is not made with ivr-pin-lab dial: %q", cmds["dial"])
	}
	dcmd := exec.Command(labBin, dial[1:]...)
	var dout syncbuf.Buffer
	dcmd.Stdout, dcmd.Stderr = &dout, &dout
	if err := dcmd.Run(); err != nil {
		t.Fatalf("step 7, %q: %v\n%s\nserve:\n%s", cmds["dial"], err, dout.String(), serve.out.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(simProc.out.String(), "card host: POST /PCServices/CardPinChange card=411111******1111 http=200 error_code=000") {
		if time.Now().After(deadline) {
			t.Fatalf("simulate answered no change:\n%s", simProc.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = serve.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-serve.exited:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not drain")
	}
	audit, _ := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if !strings.Contains(string(audit), `"outcome":"changed"`) {
		t.Fatalf("audit:\n%s", audit)
	}
}
