//go:build linux

package harden

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Process sets RLIMIT_CORE to 0 and PR_SET_DUMPABLE to 0. Call it first
// thing in a process that will hold keys or PINs.
func Process() (Result, error) {
	var r Result
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return r, fmt.Errorf("setrlimit(RLIMIT_CORE, 0): %w", err)
	}
	r.CoreLimitZero = true
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return r, fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	r.NotDumpable = true
	return r, nil
}

// Dumpable reads PR_GET_DUMPABLE (for tests and `ivr-pin check`).
func Dumpable() (bool, error) {
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	return v != 0, err
}

// capIPCLock is CAP_IPC_LOCK's bit in /proc/self/status's CapEff.
const capIPCLock = 14

// LockMemory locks the process's memory, present and future, so the
// kernel never writes it to swap (a PIN in flight, a key's session, a
// caller's digits). Pages are locked as they are first touched
// (MCL_ONFAULT), not all at once. It locks only when nothing can fail
// later for it: RLIMIT_MEMLOCK is unlimited (systemd's
// LimitMEMLOCK=infinity) or the process holds CAP_IPC_LOCK. Under a finite
// limit a locked process's next allocation past it would fail, and a Go
// process cannot survive that, so the error says what to set instead.
func LockMemory() error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		return fmt.Errorf("getrlimit(RLIMIT_MEMLOCK): %w", err)
	}
	if err := lockable(lim.Cur, hasCapability(capIPCLock)); err != nil {
		return err
	}
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
		return fmt.Errorf("mlockall: %w", err)
	}
	return nil
}

// lockable says whether locking everything is safe under the limit.
func lockable(limit uint64, capIPCLock bool) error {
	if limit != unix.RLIM_INFINITY && !capIPCLock {
		return fmt.Errorf("RLIMIT_MEMLOCK is %d bytes, not unlimited, and the process lacks CAP_IPC_LOCK: memory not locked (set LimitMEMLOCK=infinity in the unit, as deploy/ivr-pin.service does)", limit)
	}
	return nil
}

// MemoryLocked reads VmLck from /proc/self/status: whether any memory is
// locked (for tests and `ivr-pin check`).
func MemoryLocked() (bool, error) {
	v, ok := statusField("VmLck")
	if !ok {
		return false, errors.New("no VmLck in /proc/self/status")
	}
	return strings.Fields(v)[0] != "0", nil
}

// hasCapability reads the effective capability set of /proc/self/status.
func hasCapability(bit uint) bool {
	v, ok := statusField("CapEff")
	caps, err := strconv.ParseUint(v, 16, 64)
	return ok && err == nil && caps&(1<<bit) != 0
}

// statusField is a field of /proc/self/status, trimmed ("", false when it
// is not there).
func statusField(name string) (string, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}
