package asterisktest_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/asterisktest"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
)

// TestRealAsteriskStartsFromTheProjectsConfiguration: the shipped
// configuration loads on Asterisk 22 (with test ports, password and paths),
// ARI answers, and the dialplan routes what the app expects.
func TestRealAsteriskStartsFromTheProjectsConfiguration(t *testing.T) {
	t.Parallel()
	ast := asterisktest.Start(t, asterisktest.Options{})
	code, body, err := ast.Get("/asterisk/info")
	if err != nil || code != 200 || !strings.Contains(string(body), `"version":"2`) {
		t.Fatalf("ARI /asterisk/info: %d %s %v", code, body, err)
	}
	out, err := ast.CLI("dialplan show agent7@ivr-pin-return")
	if err != nil || !strings.Contains(out, "Dial(PJSIP/${EXTEN},60)") {
		t.Fatalf("a named agent finds no return extension:\n%s %v", out, err)
	}
	out, _ = ast.CLI("pjsip show endpoints")
	for _, want := range []string{"softphone", "tester"} {
		if !strings.Contains(out, want) {
			t.Errorf("endpoint %s not loaded:\n%s", want, out)
		}
	}
	if out, _ := ast.CLI("module show like res_ari_channels"); !strings.Contains(out, "Running") {
		t.Fatalf("ARI channels module not running:\n%s", out)
	}
	// Nothing that could record, spy on or write down a call's digits is
	// running (modules.conf's noload list); the agents' queue still is.
	out, _ = ast.CLI("module show")
	for _, m := range []string{"app_mixmonitor", "app_record", "app_chanspy", "app_dictate", "app_voicemail", "app_minivm",
		"app_alarmreceiver", "cdr_csv", "cdr_custom", "cdr_manager", "cdr_sqlite3_custom", "cel_custom", "cel_manager", "cel_sqlite3_custom"} {
		if strings.Contains(out, m+".so") {
			t.Errorf("%s is loaded: it could record or write down a caller's digits", m)
		}
	}
	if !strings.Contains(out, "app_queue.so") {
		t.Errorf("app_queue (the agents' queue) is not loaded:\n%s", out)
	}
	// The shipped cli_permissions.conf: an operator's remote console may
	// look but not make Asterisk write digits down.
	for cmd, allowed := range map[string]bool{"logger add channel /tmp/x dtmf": false, "core set debug 5": false, "core set verbose 5": false,
		"rtp set debug on": false, "pjsip set logger on": false, "ari set debug all on": false, "core show channels": true, "logger rotate": true} {
		out, err := ast.CLI("cli check permissions @" + ast.OperatorGroup + " " + cmd)
		if err != nil || strings.Contains(out, "is not allowed") == allowed || !strings.Contains(out, "allowed") {
			t.Errorf("cli check permissions @%s %s: want allowed=%v:\n%s %v", ast.OperatorGroup, cmd, allowed, out, err)
		}
	}
}

// TestRealAsteriskLocalChannels drives the line through Asterisk's own
// dialplan, Stasis and DTMF over Local channels: every scenario on one
// Asterisk and one serve process, in parallel, each with a card of its own.
func TestRealAsteriskLocalChannels(t *testing.T) {
	t.Parallel()
	l := startLine(t)
	d := l.ast.NewDriver(t)

	t.Run("change", scenarioChange(l, d))

	t.Run("first setup", scenarioFirstSetup(l, d))

	t.Run("wrong current PIN, then right", func(t *testing.T) {
		t.Parallel()
		pan, exp := l.changeCard("2580")
		l.typed("", "1357", "4829")
		c := d.Call(t, asterisktest.CallOptions{})
		run(t, c, step{media: "menu-change", keys: "1"}, step{media: "enter-card", keys: pan + "#"}, step{media: "enter-expiry", keys: printed(exp)},
			step{media: "enter-current-pin", keys: "1357#"}, step{media: "enter-new-pin", keys: "4829#"}, step{media: "confirm-new-pin", keys: "4829#"},
			// A wrong current PIN sounds as any failed check does, and
			// the card, its expiry and the current PIN are asked again.
			step{media: "reason-details-mismatch"}, step{media: "enter-card", n: 2, keys: pan + "#"}, step{media: "enter-expiry", n: 2, keys: printed(exp)},
			step{media: "enter-current-pin", n: 2, keys: "2580#"}, step{media: "result-changed"})
		if err := c.WaitGone(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		if !l.sims.CardHost.PINIs(pan, "4829") {
			t.Fatal("not changed after the second try")
		}
	})

	t.Run("new PINs that differ, then match; star clears an entry", func(t *testing.T) {
		t.Parallel()
		pan, exp := l.changeCard("6173")
		l.typed("", "4829", "4828", "5938")
		c := d.Call(t, asterisktest.CallOptions{})
		run(t, c, step{media: "menu-change", keys: "1"}, step{media: "enter-card", keys: "4000*"}, step{media: "entry-cleared"},
			step{media: "enter-card", n: 2, keys: pan + "#"}, step{media: "enter-expiry", keys: printed(exp)},
			step{media: "enter-current-pin", keys: "6173#"}, step{media: "enter-new-pin", keys: "4829#"}, step{media: "confirm-new-pin", keys: "4828#"},
			step{media: "reason-pin-mismatch"}, step{media: "enter-new-pin", n: 2, keys: "5938#"}, step{media: "confirm-new-pin", n: 2, keys: "5938#"},
			step{media: "result-changed"})
		if err := c.WaitGone(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		if !l.sims.CardHost.PINIs(pan, "5938") {
			t.Fatal("the matching PIN was not set")
		}
	})

	t.Run("hang-up in the middle of an entry", func(t *testing.T) {
		t.Parallel()
		pan, _ := l.changeCard("8264")
		c := d.Call(t, asterisktest.CallOptions{})
		run(t, c, step{media: "menu-change", keys: "1"}, step{media: "enter-card", keys: pan[:7]})
		time.Sleep(300 * time.Millisecond)
		c.Hangup()
		if err := c.WaitGone(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if !l.sims.CardHost.PINIs(pan, "8264") {
			t.Fatal("the PIN changed")
		}
	})

	t.Run("0 reaches the agents", func(t *testing.T) {
		t.Parallel()
		c := d.Call(t, asterisktest.CallOptions{})
		run(t, c, step{media: "menu-agent", keys: "0"}, step{media: "transfer-agent"})
		// The line's part ends when the caller is in the agents' context; what
		// happens there is the bank's routing (the sample's Queue needs a
		// queues.conf of the bank's own).
		if err := c.WaitDialplan("agents", "queue", "", 20*time.Second); err != nil {
			t.Fatal(err)
		}
		c.Hangup()
	})

	t.Run("transferred in by an agent and returned to the agent", scenarioTransferInAndBack(l, d))

	t.Run("hang-up while the host is answering", func(t *testing.T) {
		t.Parallel()
		pan, exp := l.changeCard("4062")
		l.typed("", "4829")
		// This card's request is answered after 3 s; the caller hangs up
		// during "please wait". The change goes through once and is audited.
		l.sims.CardHost.SlowCard(pan, 3*time.Second)
		c := d.Call(t, asterisktest.CallOptions{})
		run(t, c, step{media: "menu-change", keys: "1"}, step{media: "enter-card", keys: pan + "#"}, step{media: "enter-expiry", keys: printed(exp)},
			step{media: "enter-current-pin", keys: "4062#"}, step{media: "enter-new-pin", keys: "4829#"}, step{media: "confirm-new-pin", keys: "4829#"},
			step{media: "please-wait"})
		c.Hangup()
		if err := c.WaitGone(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !l.sims.CardHost.PINIs(pan, "4829") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !l.sims.CardHost.PINIs(pan, "4829") {
			t.Fatal("the change sent before the hang-up was not seen through")
		}
	})
}

// dial runs `ivr-pin-lab dial` as a tester would.
func (l *line) dial(t *testing.T, target string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(labBin, append(append([]string{"dial"}, args...), target)...)
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.errs.Write([]byte("\n==> ivr-pin-lab dial <==\n" + out.String()))
	l.mu.Unlock()
	return code, out.String()
}

// TestRealAsteriskSIP calls the line over SIP with `ivr-pin-lab dial`, through
// the shipped pjsip.conf and extensions.conf: RTP audio, RFC 4733 keys.
func TestRealAsteriskSIP(t *testing.T) {
	t.Parallel()
	l := startLine(t)
	target := "sip:1000@" + l.ast.SIPAddr

	t.Run("change, no credentials from this machine", func(t *testing.T) {
		t.Parallel()
		pan, exp := l.changeCard("7392")
		l.typed("", "4829")
		wav := filepath.Join(t.TempDir(), "heard.wav")
		code, out := l.dial(t, target, "--keys", "1 "+pan+"# "+printed(exp)+" 7392# 4829# 4829#", "--record", wav)
		if code != 0 || !strings.Contains(out, "sent group 6 of 6") || !strings.Contains(out, "the far end hung up") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if !l.sims.CardHost.PINIs(pan, "4829") {
			t.Fatal("the card host does not hold the new PIN")
		}
		if st, err := os.Stat(wav); err != nil || st.Size() < 44+8000*2*5 {
			t.Fatalf("recording of what was heard: %v %v", st, err)
		}
	})

	t.Run("first setup over SIP", func(t *testing.T) {
		t.Parallel()
		pan, exp, cardNo := l.setupCard("318")
		l.typed("", "591746")
		code, out := l.dial(t, target, "--keys", "2 "+pan+"# "+printed(exp)+" 318 591746# 591746#")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if !l.sims.KeySecure.PINIs(cardNo, "591746") {
			t.Fatal("KeySecure does not hold the first PIN")
		}
	})

	t.Run("a softphone is challenged and answers with its password", func(t *testing.T) {
		t.Parallel()
		// The shipped softphone endpoint (pjsip.conf) dials 100 for the line.
		code, out := l.dial(t, "sip:100@"+l.ast.SIPAddr, "--from", "softphone", "--password", "change-me-softphone", "--keys", "9", "--timeout", "20s")
		if code != 1 || !strings.Contains(out, "sent group 1 of 1") {
			// Exit 1: after '9' (repeat the menu) the caller hangs up on timeout.
			t.Fatalf("exit %d:\n%s", code, out)
		}
		code, out = l.dial(t, "sip:100@"+l.ast.SIPAddr, "--from", "softphone", "--password", "wrong", "--keys", "1", "--timeout", "10s")
		if code != 1 || !strings.Contains(out, "not answered") {
			t.Fatalf("a wrong password got through: exit %d:\n%s", code, out)
		}
	})
}

func TestDialUsage(t *testing.T) {
	if bin == "" {
		t.Skip("no binary: " + asterisktest.EnvVar + " unset")
	}
	for _, args := range [][]string{{"dial"}, {"dial", "1000@127.0.0.1"}, {"dial", "--bogus", "sip:1000@127.0.0.1"}, {"dial", "--keys", "12a", "sip:1000@127.0.0.1"}} {
		cmd := exec.Command(labBin, args...)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "ivr-pin-lab dial") {
			t.Errorf("%v: exit %d\n%s", args, cmd.ProcessState.ExitCode(), out)
		}
	}
}

// change runs a whole PIN change over a Local channel and checks it.
func (l *line) change(t *testing.T, d *asterisktest.Driver) {
	t.Helper()
	pan, exp := l.changeCard("5082")
	l.typed("", "4829")
	c := d.Call(t, asterisktest.CallOptions{})
	run(t, c, step{media: "menu-change", keys: "1"}, step{media: "enter-card", keys: pan + "#"}, step{media: "enter-expiry", keys: printed(exp)},
		step{media: "enter-current-pin", keys: "5082#"}, step{media: "enter-new-pin", keys: "4829#"}, step{media: "confirm-new-pin", keys: "4829#"},
		step{media: "result-changed"})
	if err := c.WaitGone(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !l.sims.CardHost.PINIs(pan, "4829") {
		t.Fatal("not changed")
	}
}

func channelName(t *testing.T, ast *asterisktest.Asterisk, id string) string {
	t.Helper()
	code, b, err := ast.Get("/channels/" + id)
	if err != nil || code != 200 {
		t.Fatalf("GET channel: %d %v", code, err)
	}
	var ch struct{ Name string }
	_ = json.Unmarshal(b, &ch)
	return ch.Name
}

// A caller taken out of the app mid-call (an operator's blind transfer,
// here a CLI redirect) ends the call cleanly: nothing sent to the host, the
// audit says hangup, and the app goes on serving.
func TestRealAsteriskBlindTransferMidCall(t *testing.T) {
	t.Parallel()
	l := startLine(t)
	d := l.ast.NewDriver(t)
	pan, _ := l.changeCard("6420")
	c := d.Call(t, asterisktest.CallOptions{})
	run(t, c, step{media: "menu-change", keys: "1"}, step{media: "enter-card", keys: pan[:6]})
	if out, err := l.ast.CLI("channel redirect " + channelName(t, l.ast, c.ID) + " agents,queue,1"); err != nil {
		t.Fatalf("redirect: %v %s", err, out)
	}
	if err := c.WaitDialplan("agents", "queue", "", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Hangup()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.out.String(), `"end":"hangup"`) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(l.out.String(), `"end":"hangup"`) || len(l.sims.CardHost.Received()) != 0 {
		t.Fatalf("the redirected call: audit %s, %d host requests", l.out.String(), len(l.sims.CardHost.Received()))
	}
	l.change(t, d) // the app keeps serving
}

// Asterisk restarted in the middle of a call: the call is gone, serve
// reconnects by itself, the next call works, and no channel is left.
func TestRealAsteriskRestartedMidCall(t *testing.T) {
	t.Parallel()
	l := startLine(t)
	d := l.ast.NewDriver(t)
	pan, _ := l.changeCard("3158")
	c := d.Call(t, asterisktest.CallOptions{})
	run(t, c, step{media: "menu-change", keys: "1"}, step{media: "enter-card", keys: pan[:6]})
	if err := l.ast.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(l.errs.String(), "ARI events connected") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not reconnect:\n%s", l.errs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The line learns the call is gone when it reconciles, a moment after
	// reconnecting (it lets StasisStarts in flight arrive first).
	deadline = time.Now().Add(15 * time.Second)
	for !strings.Contains(l.out.String(), `"end":"hangup"`) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(l.out.String(), `"end":"hangup"`) {
		t.Errorf("the lost call is not audited as a hang-up: %s", l.out.String())
	}
	l.change(t, l.ast.NewDriver(t))
	if err := l.ast.WaitNoChannels(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// SIGTERM with calls active: the active call finishes, a new call hears
// that the service is closing, and serve exits 0 after the drain.
func TestRealAsteriskSIGTERMWithCallsActive(t *testing.T) {
	t.Parallel()
	l := startLine(t)
	d := l.ast.NewDriver(t)
	pan, exp := l.changeCard("9041")
	l.typed("", "4829")
	active := d.Call(t, asterisktest.CallOptions{})
	run(t, active, step{media: "menu-change", keys: "1"}, step{media: "enter-card", keys: pan + "#"}, step{media: "enter-expiry", keys: printed(exp)},
		step{media: "enter-current-pin"})
	_ = l.serve.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.errs.String(), "draining") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	late := d.Call(t, asterisktest.CallOptions{})
	if err := late.WaitPlayed("service-closing", 1, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := active.Press("9041#"); err != nil {
		t.Fatal(err)
	}
	run(t, active, step{media: "enter-new-pin", keys: "4829#"}, step{media: "confirm-new-pin", keys: "4829#"}, step{media: "result-changed"})
	select {
	case err := <-l.exited:
		if err != nil {
			t.Fatalf("serve exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not exit after the drain")
	}
	if !l.sims.CardHost.PINIs(pan, "4829") {
		t.Fatal("the call active at SIGTERM did not finish")
	}
	if !strings.Contains(l.out.String(), `"end":"turned_away"`) {
		t.Errorf("the late call is not audited as turned away: %s", l.out.String())
	}
}
