package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/redistest"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// auditLines reads the audit file's records.
func auditLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(ln), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// startServeUntil starts serve with env (killed at the test's end if it
// still runs) and waits (bounded) until its log says ready.
func startServeUntil(t *testing.T, bin string, env []string, ready string) (*exec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := testkit.Start(t, cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	for i := 0; !strings.Contains(logs.String(), ready); i++ {
		if i > 800 {
			t.Fatalf("serve never got ready:\n%s", logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	return cmd, logs
}

// A serve killed (SIGKILL, as an OOM kill or a power loss) while a PIN change
// is in flight leaves the change's attempt on disk; started again on the
// same audit file it closes the attempt, once, with an ambiguous /
// interrupted record naming the msg_id. Nothing is sent twice. Each kill
// point, on both transports.
func TestAKilledServeLeavesNoChangeUnrecorded(t *testing.T) {
	bin := binary(t)
	zpkHex, zpk := testZPK(29, 7)

	for _, transport := range []string{"inbound", "outbound"} {
		for _, point := range []string{
			"before the request reaches the host", // the host's address accepts and never reads
			"while the host holds its answer",     // the host applied the change and answers late
			"after the answer, before the record", // the caller hears the result; the record is due at the end
		} {
			t.Run(transport+"/"+point, func(t *testing.T) {
				t.Parallel()
				sims, err := simrun.Start(simrun.Options{BankID: "TB01", ZPK: zpk})
				if err != nil {
					t.Fatal(err)
				}
				defer sims.Close()
				hostURL := sims.CardHostURL
				if strings.HasPrefix(point, "before") {
					// A host that takes the connection and never reads it.
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					defer ln.Close()
					go func() {
						for {
							c, err := ln.Accept()
							if err != nil {
								return
							}
							defer c.Close()
						}
					}()
					hostURL = "http://" + ln.Addr().String() + "/PCServices/CardPinChange"
				}
				if strings.HasPrefix(point, "while") {
					sims.CardHost.SlowCard("4111111111111111", 20*time.Second)
				}
				ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.05})
				if err != nil {
					t.Fatal(err)
				}
				defer ari.Close()
				dir := t.TempDir()
				auditPath := filepath.Join(dir, "audit.jsonl")
				listen := testkit.FreeAddr(t)
				env := append(os.Environ(), "IVRPIN_ARI_URL="+ari.URL, "IVRPIN_ARI_PASSWORD=aritest-password-0001",
					"IVRPIN_NI_URL="+hostURL, "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK="+zpkHex, "IVRPIN_LAB=true", "IVRPIN_NI_TIMEOUT=30s",
					"IVRPIN_LIMIT_KEY=00112233445566778899aabbccddeeff", "IVRPIN_LIMIT_STORE="+filepath.Join(dir, "a.db"),
					"IVRPIN_AUDIT_FILE="+auditPath, "IVRPIN_AUDIT_KEY_FILE="+auditKeyFile(t), "IVRPIN_METRICS_ADDR=", "IVRPIN_INSTANCE_ID=first")
				if transport == "outbound" {
					env = append(env, "IVRPIN_ARI_LISTEN="+listen, "IVRPIN_ARI_LISTEN_PASSWORD=listener-password-0001")
					ari.SetOutbound(&aritest.Outbound{URL: "ws://" + listen + "/ari", Username: "asterisk", Password: "listener-password-0001"})
				}
				start := func(instance string) (*exec.Cmd, *syncbuf.Buffer) {
					ready := "ARI events connected"
					if transport == "outbound" {
						ready = "listening for Asterisk's outbound ARI websockets"
					}
					return startServeUntil(t, bin, append(append([]string{}, env...), "IVRPIN_INSTANCE_ID="+instance), ready)
				}
				first, logs := start("first")
				ch, err := ari.PlaceCall(aritest.CallOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if err := ch.PressEachWhenAsked(prompts.AsksMedia, 20*time.Second, "1", "4111111111111111#", "1228", "7392#", "4829#", "4829#"); err != nil {
					t.Logf("the caller stopped typing: %v", err)
				}
				// The attempt is on disk before the request is sent.
				var msgID string
				for i := 0; msgID == ""; i++ {
					for _, r := range auditLines(t, auditPath) {
						if r["record"] == "attempt" {
							msgID, _ = r["msg_id"].(string)
						}
					}
					if i > 400 {
						t.Fatalf("no attempt written:\n%s", logs.String())
					}
					time.Sleep(25 * time.Millisecond)
				}
				switch {
				case strings.HasPrefix(point, "while"):
					// The host has the change (applied) and holds its answer.
					for i := 0; !sims.CardHost.PINIs("4111111111111111", "4829"); i++ {
						if i > 400 {
							t.Fatal("the host never applied the change")
						}
						time.Sleep(25 * time.Millisecond)
					}
				case strings.HasPrefix(point, "after"):
					if err := ch.WaitPlayed(20*time.Second, "sound:ivr-pin/result-changed", 1); err != nil {
						t.Fatalf("%v\n%s", err, logs.String())
					}
				}
				_ = first.Process.Signal(syscall.SIGKILL)
				_ = first.Wait()
				sent := len(sims.CardHost.Received())
				for _, r := range auditLines(t, auditPath) {
					if r["record"] == "call" {
						t.Fatalf("a call record was written before the kill: %v", r)
					}
				}

				// Started again on the same file: the attempt is closed, once.
				for i := 0; i < 2; i++ {
					second, _ := start("second")
					_ = second.Process.Signal(syscall.SIGTERM)
					_ = second.Wait()
				}
				var closes []map[string]any
				for _, r := range auditLines(t, auditPath) {
					if r["record"] == "call" {
						closes = append(closes, r)
					}
				}
				if len(closes) != 1 || closes[0]["msg_id"] != msgID || closes[0]["outcome"] != "ambiguous" || closes[0]["end"] != "interrupted" ||
					closes[0]["attempt_instance"] != "first" || closes[0]["instance"] != "second" || closes[0]["pan"] != "411111******1111" {
					t.Fatalf("closing records %v, want one for %s", closes, msgID)
				}
				if n := len(sims.CardHost.Received()); n != sent || n > 1 {
					t.Fatalf("%d requests reached the host (%d at the kill): sent again", n, sent)
				}
				var out, errb strings.Builder
				if code := run([]string{"audit", "check", "--key-file", auditKeyFile(t), auditPath}, nil, &out, &errb); code != 0 {
					t.Fatalf("audit check: %d %s %s", code, out.String(), errb.String())
				}
			})
		}
	}
}

// In a fleet sharing Redis, an instance killed while the host holds its
// change is closed for by a survivor: the interrupted record lands in the
// survivor's audit, naming the dead instance, exactly once.
func TestASurvivorClosesTheAttemptsOfAKilledInstance(t *testing.T) {
	bin := binary(t)
	redisURL, _ := redistest.Start(t)
	zpkHex, zpk := testZPK(31, 5)
	sims, err := simrun.Start(simrun.Options{BankID: "TB01", ZPK: zpk})
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	sims.CardHost.SlowCard("4111111111111111", 60*time.Second)
	dir := t.TempDir()
	type inst struct {
		cmd   *exec.Cmd
		logs  *syncbuf.Buffer
		ari   *aritest.Server
		audit string
	}
	start := func(name, file string) *inst {
		ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.05})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ari.Close)
		in := &inst{ari: ari, audit: filepath.Join(dir, file+".jsonl"), logs: &syncbuf.Buffer{}}
		in.cmd = exec.Command(bin, "serve")
		in.cmd.Env = append(os.Environ(), "IVRPIN_ARI_URL="+ari.URL, "IVRPIN_ARI_PASSWORD=aritest-password-0001",
			"IVRPIN_NI_URL="+sims.CardHostURL, "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK="+zpkHex, "IVRPIN_LAB=true",
			// The window after which a dead instance's attempt is closed:
			// the host timeout plus the call timeout, short here.
			"IVRPIN_NI_TIMEOUT=2s", "IVRPIN_KEYSECURE_TIMEOUT=2s", "IVRPIN_CALL_TIMEOUT=8s",
			"IVRPIN_REDIS_URL="+redisURL, "IVRPIN_LIMIT_KEY=00112233445566778899aabbccddeeff",
			"IVRPIN_AUDIT_FILE="+in.audit, "IVRPIN_AUDIT_KEY_FILE="+auditKeyFile(t), "IVRPIN_METRICS_ADDR=", "IVRPIN_INSTANCE_ID="+name)
		in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
		if err := testkit.Start(t, in.cmd); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if in.cmd.ProcessState == nil {
				_ = in.cmd.Process.Kill()
				_ = in.cmd.Wait()
			}
		})
		if err := ari.WaitConnected("ivr-pin", 20*time.Second); err != nil {
			t.Fatalf("%v\n%s", err, in.logs.String())
		}
		return in
	}
	dead, survivor := start("a", "a"), start("b", "b")
	ch, err := dead.ari.PlaceCall(aritest.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.PressEachWhenAsked(prompts.AsksMedia, 20*time.Second, "1", "4111111111111111#", "1228", "7392#", "4829#", "4829#"); err != nil {
		t.Logf("the caller stopped typing: %v", err)
	}
	for i := 0; !sims.CardHost.PINIs("4111111111111111", "4829"); i++ {
		if i > 400 {
			t.Fatalf("the host never applied the change:\n%s", dead.logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	_ = dead.cmd.Process.Signal(syscall.SIGKILL)
	_ = dead.cmd.Wait()
	var msgID string
	for _, r := range auditLines(t, dead.audit) {
		if r["record"] == "attempt" {
			msgID, _ = r["msg_id"].(string)
		}
	}
	if msgID == "" {
		t.Fatal("the killed instance wrote no attempt")
	}
	// The survivor closes it once the window has passed and the dead
	// instance's heartbeat is gone (under 30 s here).
	var closes []map[string]any
	for i := 0; i < 160 && len(closes) == 0; i++ {
		time.Sleep(250 * time.Millisecond)
		for _, r := range auditLines(t, survivor.audit) {
			if r["record"] == "call" && r["msg_id"] == msgID {
				closes = append(closes, r)
			}
		}
	}
	if len(closes) != 1 || closes[0]["end"] != "interrupted" || closes[0]["attempt_instance"] != "a" || closes[0]["instance"] != "b" {
		t.Fatalf("survivor's closing records %v\n%s", closes, survivor.logs.String())
	}
	// The dead instance restarted on its file closes nothing again.
	again := start("a2", "a")
	_ = again.cmd.Process.Signal(syscall.SIGTERM)
	_ = again.cmd.Wait()
	for _, r := range auditLines(t, dead.audit) {
		if r["record"] == "call" {
			t.Fatalf("the restarted instance closed an attempt the survivor closed: %v", r)
		}
	}
	var out, errb strings.Builder
	if code := run([]string{"audit", "check", "--key-file", auditKeyFile(t), dead.audit, survivor.audit}, nil, &out, &errb); code != 0 {
		t.Fatalf("audit check over both files: %d %s %s", code, out.String(), errb.String())
	}
}

// The assessor's sequence: the audit file's disk fills mid-record, so the
// next change's attempt cannot be written whole (it is cut back and the
// change is not sent); space is freed; a change goes in flight and serve is
// SIGKILLed. No record is glued onto a torn one, the restart closes that
// change (not another), and `audit check` verifies the chain and names it.
func TestAFullDiskThenAKillLosesNoChange(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	zpkHex, zpk := testZPK(29, 7)
	sims, err := simrun.Start(simrun.Options{BankID: "TB01", ZPK: zpk})
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	full, inFlight := "4000001000000000", "4000001000000018"
	for _, pan := range []string{full, inFlight} {
		sims.CardHost.AddCard(pan, "2812", "", "active", "7392")
	}
	sims.CardHost.SlowCard(inFlight, 20*time.Second)
	ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	dir := t.TempDir()
	auditPath, keyFile := filepath.Join(dir, "audit.jsonl"), auditKeyFile(t)
	// A trail with history, larger than any other file serve writes
	// (the attempt store): the file-size limit below then bites the
	// audit file alone, as a full disk under it would.
	var history bytes.Buffer
	key, _ := hex.DecodeString(testAuditKey)
	past := audit.NewStream(&history, audit.KeyOf(key))
	for i := 0; history.Len() < 2<<20; i++ {
		at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
		if err := past.WriteEvent(audit.Event{Kind: audit.KindStart, Time: at, Instance: "earlier"}); err != nil {
			t.Fatal(err)
		}
		if err := past.WriteEvent(audit.Event{Kind: audit.KindStop, Time: at.Add(time.Second), Instance: "earlier"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(auditPath, history.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "IVRPIN_ARI_URL="+ari.URL, "IVRPIN_ARI_PASSWORD=aritest-password-0001",
		"IVRPIN_NI_URL="+sims.CardHostURL, "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK="+zpkHex, "IVRPIN_LAB=true", "IVRPIN_NI_TIMEOUT=30s",
		"IVRPIN_LIMIT_KEY=00112233445566778899aabbccddeeff", "IVRPIN_LIMIT_STORE="+filepath.Join(dir, "a.db"),
		"IVRPIN_AUDIT_FILE="+auditPath, "IVRPIN_AUDIT_KEY_FILE="+keyFile, "IVRPIN_METRICS_ADDR=")
	start := func(instance string) (*exec.Cmd, *syncbuf.Buffer) {
		return startServeUntil(t, bin, append(append([]string{}, env...), "IVRPIN_INSTANCE_ID="+instance), "ARI events connected")
	}
	change := func(pan string) *aritest.Channel {
		ch, err := ari.PlaceCall(aritest.CallOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.PressEachWhenAsked(prompts.AsksMedia, 20*time.Second, "1", pan+"#", "1228", "7392#", "4829#", "4829#"); err != nil {
			t.Logf("the caller stopped typing: %v", err)
		}
		return ch
	}
	first, logs := start("first")

	// The disk fills 60 bytes past what is written: RLIMIT_FSIZE on serve
	// cuts its next write short there (EFBIG).
	st, err := os.Stat(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	limit := func(n uint64) {
		if err := unix.Prlimit(first.Process.Pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: n, Max: unix.RLIM_INFINITY}, nil); err != nil {
			t.Fatal(err)
		}
	}
	limit(uint64(st.Size()) + 60)
	ch := change(full)
	if _, err := ch.WaitEnded(30 * time.Second); err != nil {
		t.Fatalf("the call on a full disk did not end: %v\n%s", err, logs.String())
	}
	if n := len(sims.CardHost.Received()); n != 0 {
		t.Fatalf("%d requests reached the host although their attempt could not be written", n)
	}
	// The call's record is written after the hang-up: wait (bounded) for
	// serve to report both failed writes, the attempt's and the call
	// record's, before looking at the file.
	for i := 0; strings.Count(logs.String(), "audit record not written") < 2; i++ {
		if i > 800 {
			t.Fatalf("no word of both failed writes:\n%s", logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	if now, _ := os.Stat(auditPath); now.Size() != st.Size() {
		t.Fatalf("the audit file is %d bytes after the failed writes, was %d: a torn line was left", now.Size(), st.Size())
	}

	// Space is freed; a change goes in flight and serve is killed.
	limit(unix.RLIM_INFINITY)
	change(inFlight)
	for i := 0; !sims.CardHost.PINIs(inFlight, "4829"); i++ {
		if i > 800 {
			t.Fatalf("the host never applied the change:\n%s", logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	var msgID string
	for _, r := range auditLines(t, auditPath) {
		if r["record"] == "attempt" {
			msgID, _ = r["msg_id"].(string)
		}
	}
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()
	second, _ := start("second")
	_ = second.Process.Signal(syscall.SIGTERM)
	_ = second.Wait()

	b, _ := os.ReadFile(auditPath)
	for i, ln := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(ln), &m) != nil {
			t.Fatalf("line %d of the audit file is not one record (glued or torn):\n%s", i+1, ln)
		}
	}
	var out, errb strings.Builder
	code := run([]string{"audit", "check", "--key-file", keyFile, auditPath}, nil, &out, &errb)
	if code != 0 || msgID == "" || !strings.Contains(out.String(), "interrupted change: msg_id "+msgID) ||
		!strings.Contains(out.String(), "sent by first") || !strings.Contains(out.String(), "closed by second") {
		t.Fatalf("audit check (exit %d), want it to verify and name %q:\n%s%s", code, msgID, out.String(), errb.String())
	}
	t.Logf("audit check:\n%s", out.String())
}
