package asterisktest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/asterisktest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/redistest"
)

// TestRealAsteriskKilledWhileTheHostHoldsAChange: a caller completes a
// change on the real Asterisk, the card host applies it and holds its
// answer, and serve is killed (SIGKILL) in that window. The audit file
// already holds the attempt; serve started again closes it with an
// ambiguous / interrupted record naming the msg_id, once.
func TestRealAsteriskKilledWhileTheHostHoldsAChange(t *testing.T) {
	t.Parallel()
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	l := startLineWith(t, lineOptions{env: []string{"IVRPIN_AUDIT_FILE=" + auditPath, "IVRPIN_NI_TIMEOUT=40s"}})
	t.Cleanup(func() {
		// The records go to the file: scan them with everything else.
		b, _ := os.ReadFile(auditPath)
		l.mu.Lock()
		l.out.Write(b)
		l.mu.Unlock()
	})
	d := l.ast.NewDriver(t)
	c := l.changeHeldByTheHost(t, d, asterisktest.CallOptions{}, 30*time.Second)
	records := func() []map[string]any {
		b, _ := os.ReadFile(auditPath)
		var out []map[string]any
		for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(ln), &m) == nil {
				out = append(out, m)
			}
		}
		return out
	}
	var msgID string
	for _, r := range records() {
		if r["record"] == "attempt" {
			msgID, _ = r["msg_id"].(string)
		}
	}
	if msgID == "" {
		t.Fatal("no attempt on disk while the host holds the change")
	}
	_ = l.serve.Process.Signal(syscall.SIGKILL)
	<-l.exited
	c.Hangup()
	_ = c.WaitGone(20 * time.Second)
	for range 2 { // a second start closes nothing again
		l.startServe(t)
		if err := l.stopServe(); err != nil {
			t.Fatal(err)
		}
	}
	var closes []map[string]any
	for _, r := range records() {
		if r["record"] == "call" {
			closes = append(closes, r)
		}
	}
	if len(closes) != 1 || closes[0]["msg_id"] != msgID || closes[0]["end"] != "interrupted" || closes[0]["outcome"] != "ambiguous" {
		t.Fatalf("closing records %v, want one for %s", closes, msgID)
	}
	if n := len(l.sims.CardHost.Received()); n != 1 {
		t.Fatalf("%d requests reached the host", n)
	}
}

// TestRealAsteriskFleetSurvivorClosesAKilledInstancesChange: the fleet
// (HAProxy, two instances, Redis) with an instance killed while the host
// holds its change: the survivor writes the interrupted record, naming the
// dead instance, once the host timeout plus the call timeout has passed.
func TestRealAsteriskFleetSurvivorClosesAKilledInstancesChange(t *testing.T) {
	t.Parallel()
	needHAProxy(t)
	redisURL, _ := redistest.Start(t)
	front, stats := testkit.FreeAddr(t), testkit.FreeAddr(t)
	listens, metrics := []string{testkit.FreeAddr(t), testkit.FreeAddr(t)}, []string{testkit.FreeAddr(t), testkit.FreeAddr(t)}
	l := startLineWith(t, lineOptions{outbound: true, front: front, env: []string{"IVRPIN_REDIS_URL=" + redisURL,
		// A short window, so the survivor closes within the test.
		"IVRPIN_NI_TIMEOUT=5s", "IVRPIN_CALL_TIMEOUT=40s"}})
	d := l.ast.NewDriver(t)
	serves := startInstances(t, l, listens, metrics, func(i int) []string {
		return []string{fmt.Sprintf("IVRPIN_INSTANCE_ID=fleet-%d", i+1)}
	})
	startHAProxy(t, l, haproxyConfig(t, front, stats, listens, metrics), stats, 2)
	l.changeHeldByTheHost(t, d, asterisktest.CallOptions{CallerID: "15559990001"}, 60*time.Second)
	// The instance holding the change is the one with its attempt.
	dead, msgID := -1, ""
	for i, p := range serves {
		for _, ln := range strings.Split(p.out.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(ln), &m) == nil && m["record"] == "attempt" {
				dead, msgID = i, m["msg_id"].(string)
			}
		}
	}
	if dead < 0 {
		t.Fatal("no instance wrote the attempt")
	}
	_ = serves[dead].cmd.Process.Signal(syscall.SIGKILL)
	<-serves[dead].exited
	survivor := serves[1-dead]
	deadline := time.Now().Add(90 * time.Second)
	for {
		var closes []map[string]any
		for _, ln := range strings.Split(survivor.out.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(ln), &m) == nil && m["record"] == "call" && m["msg_id"] == msgID {
				closes = append(closes, m)
			}
		}
		if len(closes) == 1 && closes[0]["end"] == "interrupted" && closes[0]["attempt_instance"] == fmt.Sprintf("fleet-%d", dead+1) {
			break
		}
		if len(closes) > 1 || time.Now().After(deadline) {
			t.Fatalf("the survivor's closing records: %v\n%s", closes, survivor.out.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n := len(l.sims.CardHost.Received()); n != 1 {
		t.Fatalf("%d requests reached the host", n)
	}
}

// changeHeldByTheHost places a PIN change (7392 to 4829) whose request the
// card host applies and then holds its answer to for hold, and returns once
// the host holds the new PIN: the window a kill drill aims at.
func (l *line) changeHeldByTheHost(t *testing.T, d *asterisktest.Driver, opts asterisktest.CallOptions, hold time.Duration) *asterisktest.LocalCall {
	t.Helper()
	pan, exp := l.changeCard("7392")
	l.typed("", "4829")
	l.sims.CardHost.SlowCard(pan, hold)
	c := d.Call(t, opts)
	run(t, c, changeSteps(pan, exp, "7392", "4829")...)
	deadline := time.Now().Add(20 * time.Second)
	for !l.sims.CardHost.PINIs(pan, "4829") {
		if time.Now().After(deadline) {
			t.Fatal("the host never applied the change")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}
