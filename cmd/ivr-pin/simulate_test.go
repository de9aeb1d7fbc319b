package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
)

// simulate prints settings serve accepts as they stand (its secrets in 0600
// files), and logs each request it answers with the card masked.
func TestSimulatePrintsSettingsServeAccepts(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "simulate", "--cardhost", testkit.FreeAddr(t), "--keysecure", testkit.FreeAddr(t), "--secrets", dir)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := testkit.Start(t, cmd); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	for i := 0; !strings.Contains(out.String(), "Requests (card masked"); i++ {
		if i > 400 {
			t.Fatalf("simulate printed:\n%s", out.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	var env []string
	for _, ln := range strings.Split(out.String(), "\n") {
		if kv, ok := strings.CutPrefix(ln, "export "); ok {
			env = append(env, kv)
		}
	}
	for _, want := range []string{"IVRPIN_NI_URL=", "IVRPIN_NI_BANK_ID=", "IVRPIN_NI_ZPK_FILE=", "IVRPIN_KEYSECURE_URL=",
		"IVRPIN_KEYSECURE_API_KEY_FILE=", "IVRPIN_KEYSECURE_API_SECRET_FILE=", "IVRPIN_LIMIT_KEY_FILE="} {
		if !strings.Contains(strings.Join(env, "\n"), want) {
			t.Errorf("no %s in:\n%s", want, out.String())
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, _ := e.Info(); info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", e.Name(), info.Mode().Perm())
		}
	}
	// The console takes a call through them (serve's settings, but for ARI).
	console := exec.Command(bin, "console", "--keys", "1 4111111111111111# 1228 7392# 4829# 4829#", "--speed", "0.01")
	console.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	if b, err := console.CombinedOutput(); err != nil || !strings.Contains(string(b), "Outcome: changed") {
		t.Fatalf("console through simulate: %v\n%s", err, b)
	}
	for i := 0; !strings.Contains(out.String(), "card host: POST"); i++ {
		if i > 200 {
			t.Fatalf("no request logged:\n%s", out.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	_, requests, _ := strings.Cut(out.String(), "Requests (card masked")
	if !strings.Contains(requests, "card host: POST /PCServices/CardPinChange card=411111******1111 http=200 error_code=000") ||
		strings.Contains(requests, "4111111111111111") || strings.Contains(requests, "7392") {
		t.Fatalf("request log:\n%s", requests)
	}
}

// simulate on a taken port names the flag that moves it and writes no
// secret for a run that cannot start.
func TestSimulateOnATakenPortWritesNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := filepath.Join(t.TempDir(), "secrets")
	var out, errb bytes.Buffer
	code := run([]string{"simulate", "--cardhost", testkit.FreeAddr(t), "--keysecure", taken.Addr().String(), "--secrets", dir},
		strings.NewReader(""), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "give another address with --keysecure ADDR") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the secrets directory was made for a run that could not start: %v", err)
	}
}
