//go:build !linux

package harden

import "errors"

// Process is Linux-only; elsewhere it says so and changes nothing.
func Process() (Result, error) {
	return Result{}, errors.New("core dump and dumpable controls are implemented for Linux only")
}

// Dumpable is unknown off Linux.
func Dumpable() (bool, error) { return true, errors.New("not Linux") }

// LockMemory is Linux-only.
func LockMemory() error { return errors.New("memory locking is implemented for Linux only") }

// MemoryLocked is unknown off Linux.
func MemoryLocked() (bool, error) { return false, errors.New("not Linux") }
