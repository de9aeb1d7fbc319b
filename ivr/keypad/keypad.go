// Package keypad turns a stream of DTMF digits into entries: it keeps digits
// typed ahead (during or between prompts), ends an entry on '#', on its
// maximum length or on a timeout, clears it on '*', and ignores a '#'
// pressed right after an entry that ended on length (callers press it out of
// habit). It knows nothing of ARI: the ivr session feeds it digits from
// ChannelDtmfReceived events, tests feed it directly.
package keypad

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrHungUp is returned once the caller has gone.
var ErrHungUp = errors.New("caller hung up")

// End says how an entry ended.
type End int

// How entries end.
const (
	EndTerminator End = iota + 1 // '#'
	EndMaxLength                 // the maximum number of digits
	EndTimeout                   // inter-digit timeout after some digits
	EndNoInput                   // first-digit timeout, nothing typed
	EndCleared                   // '*': start the entry again
	EndTooLong                   // more than Max digits before '#' (Spec.Overflow)
)

func (e End) String() string {
	return [...]string{"", "terminator", "max_length", "timeout", "no_input", "cleared", "too_long"}[e]
}

// Spec describes one entry.
type Spec struct {
	Max        int  // digits at most; the entry ends when reached
	Terminator bool // '#' ends the entry
	// Overflow keeps an entry open past Max until '#' or the inter-digit
	// timeout, and ends it as EndTooLong (with no digits) if more than Max
	// were typed. An entry whose length varies (a PIN of 4 to 6 digits, a
	// card number) needs it: cut at Max, the rest of a too-long entry would
	// run into the next question and be blamed on it.
	Overflow          bool
	FirstDigitTimeout time.Duration // wait for the first digit
	InterDigitTimeout time.Duration // wait between digits
}

// Entry is what was typed. Digits belongs to the caller of Collect, who
// wipes it (clear) when done.
type Entry struct {
	Digits []byte
	End    End
}

// Keypad collects digits for one call. Safe for concurrent use: the event
// reader presses, the session collects.
type Keypad struct {
	mu          sync.Mutex
	buf         []byte
	changed     chan struct{}
	hungUp      bool
	swallowHash bool
}

// New makes an empty keypad.
func New() *Keypad { return &Keypad{changed: make(chan struct{})} }

// Press adds a digit typed by the caller. Anything but 0-9, '*' and '#' is
// ignored (A-D are not on a phone keypad).
func (k *Keypad) Press(d byte) {
	if !(d >= '0' && d <= '9' || d == '*' || d == '#') {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.hungUp {
		return
	}
	if k.swallowHash && len(k.buf) == 0 {
		// The first key after an entry that ended on its length: a '#' there
		// is habit, not an answer (and must not count as barge-in).
		k.swallowHash = false
		if d == '#' {
			return
		}
	}
	k.buf = append(k.buf, d)
	k.wake()
}

// HangUp ends the keypad: Collect returns ErrHungUp and typed-ahead digits
// are wiped.
func (k *Keypad) HangUp() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.hungUp {
		k.hungUp = true
		clear(k.buf)
		k.buf = nil
		k.wake()
	}
}

func (k *Keypad) wake() {
	close(k.changed)
	k.changed = make(chan struct{})
}

// Changed returns a channel closed at the next key press or hang-up (the
// session uses it to stop a prompt on barge-in).
func (k *Keypad) Changed() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.changed
}

// Pending reports whether typed-ahead digits are waiting.
func (k *Keypad) Pending() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buf) > 0
}

// Flush wipes typed-ahead digits (after a refused entry, so keys pressed for
// the wrong question do not answer the next one).
func (k *Keypad) Flush() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.buf)
	k.buf = k.buf[:0]
	k.swallowHash = false
}

// next pops a typed-ahead digit, wiping its place in the buffer.
func (k *Keypad) next() (byte, bool, bool, <-chan struct{}) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.hungUp {
		return 0, false, true, nil
	}
	if len(k.buf) == 0 {
		return 0, false, false, k.changed
	}
	d := k.buf[0]
	k.buf[0] = 0
	k.buf = k.buf[1:]
	return d, true, false, nil
}

// afterFullEntry arms the '#' swallowing, dropping a '#' already typed.
func (k *Keypad) afterFullEntry() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.buf) > 0 {
		if k.buf[0] == '#' {
			k.buf[0] = 0
			k.buf = k.buf[1:]
		}
		return
	}
	k.swallowHash = true
}

// Collect reads one entry under spec. It returns ErrHungUp after a hang-up
// and ctx.Err() when ctx ends.
func (k *Keypad) Collect(ctx context.Context, spec Spec) (Entry, error) {
	digits := make([]byte, 0, spec.Max)
	overflow := false
	timer := time.NewTimer(spec.FirstDigitTimeout)
	defer timer.Stop()
	for {
		d, ok, gone, changed := k.next()
		if gone {
			clear(digits)
			return Entry{}, ErrHungUp
		}
		if !ok {
			select {
			case <-ctx.Done():
				clear(digits)
				return Entry{}, ctx.Err()
			case <-changed:
				continue
			case <-timer.C:
				if overflow {
					return Entry{End: EndTooLong}, nil
				}
				if len(digits) == 0 {
					return Entry{End: EndNoInput}, nil
				}
				return Entry{Digits: digits, End: EndTimeout}, nil
			}
		}
		switch {
		case d == '*':
			clear(digits)
			return Entry{End: EndCleared}, nil
		case d == '#' && spec.Terminator && overflow:
			return Entry{End: EndTooLong}, nil
		case d == '#' && spec.Terminator:
			return Entry{Digits: digits, End: EndTerminator}, nil
		case d == '#':
			continue
		}
		switch {
		case spec.Overflow && (overflow || len(digits) >= spec.Max):
			// Not kept: a too-long entry is refused whole.
			overflow = true
			clear(digits)
			digits = digits[:0]
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(spec.InterDigitTimeout)
			continue
		}
		digits = append(digits, d)
		if len(digits) >= spec.Max && !spec.Overflow {
			if spec.Terminator {
				k.afterFullEntry()
			}
			return Entry{Digits: digits, End: EndMaxLength}, nil
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(spec.InterDigitTimeout)
	}
}
