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
// reader presses, the session collects. While an entry is being collected
// the reader's Press applies each key to it and wakes the collector only
// when the entry ends: one wake-up an entry instead of one a key (a card
// number is 17 keys), which is most of what a key costs the process.
// Between entries keys wait, typed ahead, for the next Collect.
//
// Digits are held in as few places as possible: an entry's digits live in
// one array sized for the entry, never regrown (a regrown slice leaves its
// old array, digits and all, to the collector); the typed-ahead buffer is
// wiped as it is read and before it is regrown; a hang-up wipes both.
type Keypad struct {
	mu          sync.Mutex
	buf         []byte // typed ahead: pressed while no entry was collected
	changed     chan struct{}
	hungUp      bool
	swallowHash bool
	entry       *entry // the entry being collected, or nil
}

// entry is one Collect in progress.
type entry struct {
	spec     Spec
	digits   []byte // capacity spec.Max: never regrown
	overflow bool
	// deadline is when the entry times out; timer fires at it or, when a
	// key moved it, finds it moved and waits again.
	deadline time.Time
	timer    *time.Timer
	done     chan result // buffered: the entry's end, sent once
}

type result struct {
	e   Entry
	err error
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
	if e := k.entry; e != nil {
		if end, ok := e.take(d); ok {
			k.finish(e, end)
		}
	} else {
		k.buf = appendWiped(k.buf, d)
	}
	k.wake()
}

// appendWiped appends d to buf; when buf must grow, the old array is wiped
// once copied, so no copy of a typed digit is left behind.
func appendWiped(buf []byte, d byte) []byte {
	if len(buf) == cap(buf) {
		grown := make([]byte, len(buf), 2*cap(buf)+16)
		copy(grown, buf)
		clear(buf)
		buf = grown
	}
	return append(buf, d)
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
		if e := k.entry; e != nil {
			k.entry = nil
			e.timer.Stop()
			clear(e.digits)
			e.done <- result{err: ErrHungUp}
		}
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

// afterFullEntry arms the '#' swallowing, dropping a '#' already typed
// (k.mu held).
func (k *Keypad) afterFullEntry() {
	if len(k.buf) > 0 {
		if k.buf[0] == '#' {
			k.buf[0] = 0
			k.buf = k.buf[1:]
		}
		return
	}
	k.swallowHash = true
}

// take applies one key to the entry: whether it ends the entry, and how.
// A key that counts as typing (a digit, kept or not) moves the deadline to
// the inter-digit timeout.
func (e *entry) take(d byte) (End, bool) {
	switch {
	case d == '*':
		return EndCleared, true
	case d == '#' && e.spec.Terminator && e.overflow:
		return EndTooLong, true
	case d == '#' && e.spec.Terminator:
		return EndTerminator, true
	case d == '#':
		return 0, false
	}
	if e.spec.Overflow && (e.overflow || len(e.digits) >= e.spec.Max) {
		// Not kept: a too-long entry is refused whole.
		e.overflow = true
		clear(e.digits)
		e.digits = e.digits[:0]
	} else {
		e.digits = append(e.digits, d)
		if len(e.digits) >= e.spec.Max && !e.spec.Overflow {
			return EndMaxLength, true
		}
	}
	e.deadline = time.Now().Add(e.spec.InterDigitTimeout)
	if e.timer != nil {
		e.timer.Reset(e.spec.InterDigitTimeout)
	}
	return 0, false
}

// finish ends the entry as end and hands it to its collector (k.mu held).
func (k *Keypad) finish(e *entry, end End) result {
	if k.entry == e {
		k.entry = nil
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	r := result{e: Entry{End: end}}
	switch end {
	case EndTerminator, EndMaxLength, EndTimeout:
		r.e.Digits = e.digits
	default:
		clear(e.digits)
	}
	if end == EndMaxLength && e.spec.Terminator {
		k.afterFullEntry()
	}
	e.done <- r
	return r
}

// expire is the entry's timer: the entry times out unless a key moved its
// deadline since the timer was set.
func (k *Keypad) expire(e *entry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.entry != e {
		return
	}
	if left := time.Until(e.deadline); left > 0 {
		e.timer.Reset(left)
		return
	}
	switch {
	case e.overflow:
		k.finish(e, EndTooLong)
	case len(e.digits) == 0:
		k.finish(e, EndNoInput)
	default:
		k.finish(e, EndTimeout)
	}
}

// ErrBusy is a Collect while another is in progress on the same keypad.
var ErrBusy = errors.New("keypad: an entry is already being collected")

// Collect reads one entry under spec: first from the keys typed ahead, then
// from keys pressed while it waits. It returns ErrHungUp after a hang-up
// and ctx.Err() when ctx ends.
func (k *Keypad) Collect(ctx context.Context, spec Spec) (Entry, error) {
	e := &entry{spec: spec, digits: make([]byte, 0, max(spec.Max, 1)), done: make(chan result, 1),
		deadline: time.Now().Add(spec.FirstDigitTimeout)}
	k.mu.Lock()
	if k.hungUp {
		k.mu.Unlock()
		return Entry{}, ErrHungUp
	}
	if k.entry != nil {
		k.mu.Unlock()
		return Entry{}, ErrBusy
	}
	for len(k.buf) > 0 {
		d := k.buf[0]
		k.buf[0] = 0
		k.buf = k.buf[1:]
		if end, ok := e.take(d); ok {
			r := k.finish(e, end)
			k.mu.Unlock()
			return r.e, r.err
		}
	}
	k.entry = e
	e.timer = time.AfterFunc(time.Until(e.deadline), func() { k.expire(e) })
	k.mu.Unlock()
	select {
	case r := <-e.done:
		return r.e, r.err
	case <-ctx.Done():
		k.mu.Lock()
		if k.entry == e {
			k.entry = nil
			e.timer.Stop()
			clear(e.digits)
		}
		k.mu.Unlock()
		select {
		case r := <-e.done: // it ended as ctx did: not returned, so wiped
			clear(r.e.Digits)
		default:
		}
		return Entry{}, ctx.Err()
	}
}
