package main

import (
	"errors"
	"strings"
	"testing"
)

// check warns, naming why, when the kernel says nothing keeps the clock
// true, and is silent when something does.
func TestCheckWarnsOfAClockNothingKeeps(t *testing.T) {
	kernel := clockState
	t.Cleanup(func() { clockState = kernel })
	for _, c := range []struct {
		name   string
		synced bool
		err    error
		says   string // "" no warning
	}{
		{"synchronised", true, nil, ""},
		{"not synchronised", false, nil, "the clock is not synchronised (adjtimex: unsynchronised, maximum error 16.0 s)"},
		{"cannot ask", false, errors.New("operation not permitted"), "cannot ask the kernel whether it is synchronised (adjtimex: operation not permitted)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			clockState = func() (bool, int64, error) { return c.synced, 16_000_000, c.err }
			w := clockWarning()
			switch {
			case c.says == "" && w != nil:
				t.Fatalf("warned: %v", w)
			case c.says != "" && (w == nil || !strings.Contains(w.Error(), c.says)):
				t.Fatalf("warning %v, want %q", w, c.says)
			}
		})
	}
	// The kernel answers on this machine (synchronised or not).
	clockState = kernel
	if _, _, err := clockState(); err != nil {
		t.Fatalf("adjtimex: %v", err)
	}
}
