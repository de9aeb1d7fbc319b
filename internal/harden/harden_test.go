package harden

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// The hardening runs in a child process: it cannot be undone, and the test
// binary's own memory must stay readable for the race detector and
// debuggers.
func TestProcessIsNotDumpableAndDumpsNoCore(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	if os.Getenv("HARDEN_CHILD") == "1" {
		r, err := Process()
		if err != nil || !r.CoreLimitZero || !r.NotDumpable {
			t.Fatalf("%+v %v", r, err)
		}
		if d, err := Dumpable(); err != nil || d {
			t.Fatalf("still dumpable: %v", err)
		}
		limits, _ := os.ReadFile("/proc/self/limits")
		for _, l := range strings.Split(string(limits), "\n") {
			if strings.HasPrefix(l, "Max core file size") && !strings.Contains(l, " 0  ") {
				t.Fatalf("core limit: %s", l)
			}
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestProcessIsNotDumpableAndDumpsNoCore$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HARDEN_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
