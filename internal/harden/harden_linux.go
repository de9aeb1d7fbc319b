//go:build linux

package harden

import (
	"fmt"

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
