package keypad

import (
	"context"
	"errors"
	"testing"
	"time"
)

var spec = Spec{Max: 6, Terminator: true, FirstDigitTimeout: 200 * time.Millisecond, InterDigitTimeout: 100 * time.Millisecond}

// overflow is spec for an entry whose length varies.
var overflow = Spec{Max: 6, Terminator: true, Overflow: true, FirstDigitTimeout: 200 * time.Millisecond, InterDigitTimeout: 100 * time.Millisecond}

func press(k *Keypad, keys string) {
	for i := 0; i < len(keys); i++ {
		k.Press(keys[i])
	}
}

func TestEntries(t *testing.T) {
	cases := []struct {
		name   string
		keys   string
		spec   Spec
		digits string
		end    End
	}{
		{"terminated", "1234#", spec, "1234", EndTerminator},
		{"max length", "123456", spec, "123456", EndMaxLength},
		{"star clears", "12*", spec, "", EndCleared},
		{"timeout after digits", "12", spec, "12", EndTimeout},
		{"no input", "", spec, "", EndNoInput},
		{"letters ignored", "1A2B#", spec, "12", EndTerminator},
		{"hash ignored without terminator", "1#2", Spec{Max: 2, FirstDigitTimeout: time.Second, InterDigitTimeout: time.Second}, "12", EndMaxLength},
		{"lone hash is an empty entry", "#", spec, "", EndTerminator},
		{"overflow: full entry waits for hash", "123456#", overflow, "123456", EndTerminator},
		{"overflow: full entry ends on timeout", "123456", overflow, "123456", EndTimeout},
		{"overflow: too long is refused whole", "19820514#", overflow, "", EndTooLong},
		{"overflow: too long ends on timeout", "1982051", overflow, "", EndTooLong},
		{"overflow: star still clears", "1982051*", overflow, "", EndCleared},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := New()
			press(k, c.keys)
			e, err := k.Collect(context.Background(), c.spec)
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Digits) != c.digits || e.End != c.end {
				t.Fatalf("got %q %s, want %q %s", e.Digits, e.End, c.digits, c.end)
			}
		})
	}
}

func TestTypeAheadAnswersTheNextQuestion(t *testing.T) {
	k := New()
	press(k, "1234#5678#")
	a, _ := k.Collect(context.Background(), spec)
	b, _ := k.Collect(context.Background(), spec)
	if string(a.Digits) != "1234" || string(b.Digits) != "5678" {
		t.Fatalf("%q %q", a.Digits, b.Digits)
	}
}

func TestHashAfterFullEntryIsIgnored(t *testing.T) {
	k := New()
	press(k, "2812#4829#")
	exp, _ := k.Collect(context.Background(), Spec{Max: 4, Terminator: true, FirstDigitTimeout: time.Second, InterDigitTimeout: time.Second})
	pin, _ := k.Collect(context.Background(), spec)
	if string(exp.Digits) != "2812" || exp.End != EndMaxLength || string(pin.Digits) != "4829" || pin.End != EndTerminator {
		t.Fatalf("expiry %q %s, pin %q %s", exp.Digits, exp.End, pin.Digits, pin.End)
	}
}

func TestDigitsArrivingLaterAreCollected(t *testing.T) {
	k := New()
	go func() {
		for _, d := range []byte("42#") {
			time.Sleep(20 * time.Millisecond)
			k.Press(d)
		}
	}()
	e, err := k.Collect(context.Background(), spec)
	if err != nil || string(e.Digits) != "42" {
		t.Fatalf("%q %v", e.Digits, err)
	}
}

func TestHangUpEndsCollectAndWipesTypeAhead(t *testing.T) {
	k := New()
	press(k, "99")
	buf := k.buf
	k.HangUp()
	for _, b := range buf {
		if b != 0 {
			t.Fatal("typed-ahead digits not wiped")
		}
	}
	if _, err := k.Collect(context.Background(), spec); !errors.Is(err, ErrHungUp) {
		t.Fatalf("%v", err)
	}
	k2 := New()
	go func() { time.Sleep(20 * time.Millisecond); k2.HangUp() }()
	if _, err := k2.Collect(context.Background(), Spec{Max: 4, FirstDigitTimeout: 5 * time.Second}); !errors.Is(err, ErrHungUp) {
		t.Fatalf("waiting collect: %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	k := New()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := k.Collect(ctx, Spec{Max: 4, FirstDigitTimeout: 5 * time.Second}); !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
}

func TestFlushDropsTypeAhead(t *testing.T) {
	k := New()
	press(k, "123")
	k.Flush()
	if k.Pending() {
		t.Fatal("digits left after Flush")
	}
	e, _ := k.Collect(context.Background(), spec)
	if e.End != EndNoInput {
		t.Fatalf("%v", e.End)
	}
}

func TestHabitualHashIsNotPending(t *testing.T) {
	k := New()
	press(k, "482915#")
	if _, err := k.Collect(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if k.Pending() {
		t.Fatal("a habitual # after a full entry counts as typed ahead (it would cut the next prompt)")
	}
	// Pressed later, while the next prompt plays, it is still swallowed.
	k2 := New()
	press(k2, "482915")
	_, _ = k2.Collect(context.Background(), spec)
	k2.Press('#')
	if k2.Pending() {
		t.Fatal("a # pressed after a full entry was kept")
	}
	k2.Press('#')
	if !k2.Pending() {
		t.Fatal("a second # is a real key and must be kept")
	}
}

func TestTooLongEntryDoesNotRunIntoTheNext(t *testing.T) {
	k := New()
	press(k, "19820514#4825#")
	a, _ := k.Collect(context.Background(), overflow)
	b, _ := k.Collect(context.Background(), overflow)
	if a.End != EndTooLong || len(a.Digits) != 0 || string(b.Digits) != "4825" {
		t.Fatalf("%q %s, then %q %s", a.Digits, a.End, b.Digits, b.End)
	}
}

// collecting reports whether a Collect is waiting for keys.
func (k *Keypad) collecting() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.entry != nil
}

// TestKeysPressedWhileCollectingEndAsTypedAhead: the same keys make the
// same entry whether they were typed ahead of the question or pressed
// while it waits (Press applies them to the entry itself then).
func TestKeysPressedWhileCollectingEndAsTypedAhead(t *testing.T) {
	cases := []struct {
		keys string
		spec Spec
	}{
		{"1234#", spec}, {"123456", spec}, {"12*", spec}, {"12", spec}, {"1A2B#", spec}, {"#", spec},
		{"1#2", Spec{Max: 2, FirstDigitTimeout: time.Second, InterDigitTimeout: time.Second}},
		{"123456#", overflow}, {"123456", overflow}, {"19820514#", overflow}, {"1982051", overflow}, {"1982051*", overflow},
	}
	for _, c := range cases {
		ahead := New()
		press(ahead, c.keys)
		want, err := ahead.Collect(context.Background(), c.spec)
		if err != nil {
			t.Fatal(err)
		}
		live := New()
		got := make(chan Entry, 1)
		go func() {
			e, _ := live.Collect(context.Background(), c.spec)
			got <- e
		}()
		for !live.collecting() {
			time.Sleep(time.Millisecond)
		}
		press(live, c.keys)
		e := <-got
		if string(e.Digits) != string(want.Digits) || e.End != want.End {
			t.Errorf("%q: pressed live %q %s, typed ahead %q %s", c.keys, e.Digits, e.End, want.Digits, want.End)
		}
	}
}

// TestAKeyMovesTheDeadline: each key gives the caller the inter-digit
// timeout again, however long the first-digit wait was.
func TestAKeyMovesTheDeadline(t *testing.T) {
	k := New()
	s := Spec{Max: 6, Terminator: true, FirstDigitTimeout: time.Second, InterDigitTimeout: time.Second}
	got := make(chan Entry, 1)
	go func() {
		e, _ := k.Collect(context.Background(), s)
		got <- e
	}()
	for !k.collecting() {
		time.Sleep(time.Millisecond)
	}
	// Five keys 250 ms apart: past the first deadline in all, but never a
	// second without a key (a wide margin for a busy machine).
	for _, d := range []byte("4829#") {
		time.Sleep(250 * time.Millisecond)
		k.Press(d)
	}
	if e := <-got; string(e.Digits) != "4829" || e.End != EndTerminator {
		t.Fatalf("%q %s", e.Digits, e.End)
	}
}

func TestASecondCollectAtOnceIsRefused(t *testing.T) {
	k := New()
	go func() { _, _ = k.Collect(context.Background(), spec) }()
	for !k.collecting() {
		time.Sleep(time.Millisecond)
	}
	if _, err := k.Collect(context.Background(), spec); !errors.Is(err, ErrBusy) {
		t.Fatalf("%v", err)
	}
	k.HangUp()
}

// TestGrowingTheTypeAheadLeavesNoDigitBehind: the array a grown buffer
// leaves is wiped.
func TestGrowingTheTypeAheadLeavesNoDigitBehind(t *testing.T) {
	old := []byte("1234")
	grown := appendWiped(old, '5')
	if string(grown) != "12345" {
		t.Fatalf("%q", grown)
	}
	for _, b := range old {
		if b != 0 {
			t.Fatalf("the old array still holds %q", old)
		}
	}
}
