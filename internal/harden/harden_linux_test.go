//go:build linux

package harden

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLockingNeedsNoLimitOrTheCapability(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	for _, c := range []struct {
		limit uint64
		cap   bool
		ok    bool
	}{
		{unix.RLIM_INFINITY, false, true},
		{8 << 20, true, true},
		{8 << 20, false, false},
		{0, false, false},
	} {
		err := lockable(c.limit, c.cap)
		if (err == nil) != c.ok {
			t.Errorf("limit %d, CAP_IPC_LOCK %v: %v", c.limit, c.cap, err)
		}
		if err != nil && !strings.Contains(err.Error(), "LimitMEMLOCK=infinity") {
			t.Errorf("the refusal does not say what to set: %v", err)
		}
	}
}

// Locking runs in a child (it cannot be undone): where it is allowed the
// child's VmLck is no longer zero.
func TestLockMemoryLocks(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	if os.Getenv("HARDEN_CHILD") == "lock" {
		if err := LockMemory(); err != nil {
			t.Skipf("not allowed here: %v", err)
		}
		if locked, err := MemoryLocked(); err != nil || !locked {
			t.Fatalf("locked %v: %v", locked, err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockMemoryLocks$", "-test.v")
	cmd.Env = append(os.Environ(), "HARDEN_CHILD=lock")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(string(out), "SKIP") {
		t.Skipf("the child could not lock: %s", out)
	}
}
