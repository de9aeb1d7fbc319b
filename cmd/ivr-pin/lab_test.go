package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/softhsmtest"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
)

// docs/lab.md comes up when followed: its marked blocks, run in order in
// one shell in a fresh directory, build and install the binaries, check
// the unit, make a SoftHSM2 token, run the simulated bank, put its key into
// the token at a ceremony, check, serve on the outbound listener, load
// Prometheus' configuration, and place one call with `ivr-pin call` that
// changes a PIN. What the test changes is only where things are: $LAB and
// the addresses (free ones here).
func TestLabPageComesUpWhenFollowed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs the lab")
	}
	softhsmtest.Module(t)
	for _, p := range [][2]string{{"softhsm2-util", "softhsm2"}, {"promtool", "prometheus"}, {"systemd-analyze", "systemd"}, {"bash", "bash"}} {
		testkit.Program(t, p[0], p[1])
	}
	b, err := os.ReadFile("../../docs/lab.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- lab -->\\s*```sh\\n(.*?)\\n```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) < 8 {
		t.Fatalf("docs/lab.md has %d lab blocks", len(blocks))
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, m := range blocks {
		script.WriteString(m[1] + "\n")
	}
	text := script.String()
	for _, addr := range []string{"127.0.0.1:8090", "127.0.0.1:8091", "127.0.0.1:8092", "127.0.0.1:9464"} {
		if !strings.Contains(text, addr) {
			t.Fatalf("the lab blocks no longer use %s", addr)
		}
		text = strings.ReplaceAll(text, addr, testkit.FreeAddr(t))
	}
	lab := t.TempDir()
	cmd := exec.Command("bash", "-c", text)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "LAB="+lab)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := testkit.Start(t, cmd); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if err != nil {
		serve, _ := os.ReadFile(lab + "/serve.log")
		sim, _ := os.ReadFile(lab + "/simulate.out")
		t.Fatalf("the lab page failed: %v\n%s\n--- serve.log\n%s\n--- simulate.out\n%s", err, out.String(), serve, sim)
	}
	for _, want := range []string{"Result: result-changed; call ended by app-hangup", "key \"zpk\" imported", "ivr-pin check: serve would start",
		"card host: POST /PCServices/CardPinChange card=411111******1111 http=200 error_code=000"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}
