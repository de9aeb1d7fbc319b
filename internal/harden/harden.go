// Package harden keeps the process's memory to itself: no core dump (which
// would write the PIN blocks' keys and a caller's digits in flight to disk),
// no reading of its memory by other processes of the same user
// (/proc/PID/mem, ptrace), which a non-dumpable process refuses, and, where
// the limit allows, no page of it written to swap (LockMemory).
package harden

// Result says what was applied; an error names the step that failed.
type Result struct {
	CoreLimitZero bool // RLIMIT_CORE is 0 (soft and hard)
	NotDumpable   bool // PR_SET_DUMPABLE is 0
}
