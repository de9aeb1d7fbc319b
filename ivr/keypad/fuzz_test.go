package keypad

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzKeypad presses any bytes (the DTMF digit field of an event can hold
// anything) and collects entries under a spec drawn from the input: no
// panic, every entry holds digits only and no more than Max, and no more
// digits come out than went in.
func FuzzKeypad(f *testing.F) {
	f.Fuzz(func(t *testing.T, max uint8, terminator bool, hangUpAt int, presses []byte) {
		spec := Spec{Max: int(max%25) + 1, Terminator: terminator, FirstDigitTimeout: time.Millisecond, InterDigitTimeout: time.Millisecond}
		k := New()
		in := 0
		for i, d := range presses {
			if i == hangUpAt {
				k.HangUp()
			}
			if d >= '0' && d <= '9' {
				in++
			}
			k.Press(d)
		}
		out := 0
		for range len(presses) + 2 {
			e, err := k.Collect(context.Background(), spec)
			if err != nil {
				if !errors.Is(err, ErrHungUp) {
					t.Fatalf("Collect: %v", err)
				}
				break
			}
			if len(e.Digits) > spec.Max {
				t.Fatalf("%d digits for Max %d", len(e.Digits), spec.Max)
			}
			for _, d := range e.Digits {
				if d < '0' || d > '9' {
					t.Fatalf("entry holds %q", d)
				}
			}
			out += len(e.Digits)
			if e.End == EndNoInput {
				break
			}
		}
		if out > in {
			t.Fatalf("%d digits collected from %d pressed", out, in)
		}
	})
}
