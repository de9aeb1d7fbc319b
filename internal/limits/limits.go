// Package limits bounds attempts per card and per caller over a sliding
// window, so the line cannot be used to guess card details or PINs. Past a
// limit the card or caller is refused for a lockout period. Cards are keyed
// by an HMAC of the PAN (never the PAN itself). The counters live in a Store:
// an embedded bbolt file by default (it survives a restart), or Redis when
// several instances share the line (atomic across instances). A store that
// cannot be reached fails closed: the caller is told to try later.
//
// The same store keeps the first-setup marks: a card whose first PIN was set
// through the line is marked (by an HMAC of the card platform's card id,
// which is the same whether the caller typed the PAN or an agent named the
// card), so its first setup cannot be repeated by whoever gets hold of its
// details later.
package limits

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// ErrLimited means the card or the caller is over its limit.
var ErrLimited = errors.New("attempt limit reached")

// Rule is one limit.
type Rule struct {
	Max     int           // attempts allowed in Window
	Window  time.Duration // sliding window
	Lockout time.Duration // refusal after the limit is passed
}

// Store keeps sliding-window counters.
type Store interface {
	// Blocked reports whether key is locked out now.
	Blocked(ctx context.Context, key string, now time.Time) (bool, error)
	// Hit records one attempt for key unless that passes r.Max in r.Window,
	// in which case it locks key out for r.Lockout and returns false. It is
	// atomic: concurrent hits (from several instances, for Redis) never let
	// more than r.Max through.
	Hit(ctx context.Context, key string, r Rule, now time.Time) (bool, error)
	// Reserve takes a place among key's r.Max for a request whose answer
	// may count as a failure: Reserved (the place is id's until Settle, or
	// until hold has passed), Wait (failures and places held fill r.Max:
	// try again soon), or Full (r.Max failures fell in r.Window: key is
	// locked out for r.Lockout). Atomic as Hit is.
	Reserve(ctx context.Context, key string, r Rule, hold time.Duration, now time.Time) (id string, state Reservation, err error)
	// Settle ends a reservation: failed counts it in the window (the
	// r.Max-th failure locks key out), else its place is given back.
	Settle(ctx context.Context, key, id string, failed bool, r Rule, now time.Time) error
	// Mark sets key once and for good: false when it was already set. It is
	// atomic like Hit.
	Mark(ctx context.Context, key string) (bool, error)
	// Marked reports whether key is set.
	Marked(ctx context.Context, key string) (bool, error)
	// Unmark removes key.
	Unmark(ctx context.Context, key string) error
	Close() error
}

// Limiter applies a card rule and a caller rule. It implements
// flows.Limiter and flows.SetupMarks.
type Limiter struct {
	Store  Store
	Card   Rule
	Caller Rule
	// Withheld is the rule of the one bucket that every call without a
	// usable caller id shares (withheld, anonymous, empty). It is stricter
	// than Caller: without it, hiding the number switched the limit off.
	// Zero means Caller's rule.
	Withheld Rule
	key      []byte
	Now      func() time.Time
}

// New makes a limiter; hmacKey keys the card hashes and must be the same on
// every instance sharing a store.
func New(store Store, hmacKey []byte, card, caller Rule) *Limiter {
	return &Limiter{Store: store, Card: card, Caller: caller, key: append([]byte(nil), hmacKey...), Now: time.Now}
}

// CardKey is the store key of a card: an HMAC of the PAN.
func (l *Limiter) CardKey(pan secret.PAN) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(pan.Digits()))
	return "card:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// SetupKey is the store key of a card's first-setup mark: an HMAC of the
// card platform's card id.
func (l *Limiter) SetupKey(cardID string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("setup\x00"))
	m.Write([]byte(cardID))
	return "setup:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// SetupDone implements flows.SetupMarks.
func (l *Limiter) SetupDone(ctx context.Context, cardID string) (bool, error) {
	done, err := l.Store.Marked(ctx, l.SetupKey(cardID))
	if err != nil {
		return false, fmt.Errorf("attempt store: %w", err)
	}
	return done, nil
}

// ClaimSetup implements flows.SetupMarks.
func (l *Limiter) ClaimSetup(ctx context.Context, cardID string) (bool, error) {
	ok, err := l.Store.Mark(ctx, l.SetupKey(cardID))
	if err != nil {
		return false, fmt.Errorf("attempt store: %w", err)
	}
	return ok, nil
}

// ReleaseSetup implements flows.SetupMarks.
func (l *Limiter) ReleaseSetup(ctx context.Context, cardID string) error {
	if err := l.Store.Unmark(ctx, l.SetupKey(cardID)); err != nil {
		return fmt.Errorf("attempt store: %w", err)
	}
	return nil
}

// CallerKey is the store key of a caller id: an HMAC of its normalised
// form, or the shared withheld bucket.
func (l *Limiter) CallerKey(callerID string) string {
	n, ok := NormaliseCallerID(callerID)
	if !ok {
		return withheldKey
	}
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(n))
	return "caller:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// withheldKey is the one bucket of calls without a usable caller id.
const withheldKey = "caller:withheld"

// NormaliseCallerID folds the forms one number arrives in: separators
// (space, '-', '.', '(', ')') are dropped and a leading '+' or international
// prefix 00 is removed, so +1 555 123 0001, 0015551230001 and 15551230001
// are one caller. ok is false for an id that is no number at all
// (withheld, anonymous, empty): those share one bucket.
func NormaliseCallerID(id string) (string, bool) {
	b := make([]byte, 0, len(id))
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= '0' && c <= '9':
			b = append(b, c)
		case c == '+' && len(b) == 0:
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", false
		}
	}
	// Leading zeros are an international (00) or trunk (0) prefix.
	n := strings.TrimLeft(string(b), "0")
	if len(n) < 3 {
		return "", false
	}
	return n, true
}

// callerRule is the rule for a caller key.
func (l *Limiter) callerRule(key string) Rule {
	if key == withheldKey && l.Withheld.Max > 0 {
		return l.Withheld
	}
	return l.Caller
}

// CardNoKey is the store key of a card an agent named by KeySecure's
// card_no (no PAN was typed): an HMAC of it, apart from PANs' keys.
func (l *Limiter) CardNoKey(cardNo string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("card_no\x00"))
	m.Write([]byte(cardNo))
	return "card:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// cardKeys are the keys a card's attempts count against: its PAN's, and its
// card_no's when an agent named it.
func (l *Limiter) cardKeys(card flows.Card) []string {
	var keys []string
	if card.PAN != "" {
		keys = append(keys, l.CardKey(card.PAN))
	}
	if card.CardNo != "" {
		keys = append(keys, l.CardNoKey(card.CardNo))
	}
	return keys
}

// Check returns ErrLimited when the caller (or the card, once known) is
// locked out, and the store's error when it cannot tell.
func (l *Limiter) Check(ctx context.Context, callerID string, card flows.Card) error {
	keys := l.keys(callerID, card)
	for _, k := range keys {
		blocked, err := l.Store.Blocked(ctx, k, l.Now())
		if err != nil {
			return fmt.Errorf("attempt store: %w", err)
		}
		if blocked {
			return ErrLimited
		}
	}
	return nil
}

// Record counts one attempt against the caller and the card (when known),
// each key's check and count one atomic Hit: however many calls record at
// once, no key passes its limit.
func (l *Limiter) Record(ctx context.Context, callerID string, card flows.Card) error {
	now := l.Now()
	if l.Caller.Max > 0 {
		key := l.CallerKey(callerID)
		ok, err := l.Store.Hit(ctx, key, l.callerRule(key), now)
		if err != nil {
			return fmt.Errorf("attempt store: %w", err)
		}
		if !ok {
			return ErrLimited
		}
	}
	if l.Card.Max > 0 {
		for _, key := range l.cardKeys(card) {
			ok, err := l.Store.Hit(ctx, key, l.Card, now)
			if err != nil {
				return fmt.Errorf("attempt store: %w", err)
			}
			if !ok {
				return ErrLimited
			}
		}
	}
	return nil
}

// IsLimited reports whether err means a limit (not a store failure).
func (l *Limiter) IsLimited(err error) bool { return errors.Is(err, ErrLimited) }

func (l *Limiter) keys(callerID string, card flows.Card) []string {
	var keys []string
	if l.Caller.Max > 0 {
		keys = append(keys, l.CallerKey(callerID))
	}
	if l.Card.Max > 0 {
		keys = append(keys, l.cardKeys(card)...)
	}
	return keys
}

// Reservation is what Reserve came to.
type Reservation int

// The reservations.
const (
	Reserved Reservation = iota // the place is the caller's
	Wait                        // places held and failures fill the count: try again
	Full                        // the count is full of failures: locked out
)

// LineGuard counts failed card-detail checks across the whole line (every
// instance, when the store is Redis): guessing spread over many caller ids
// and cards escapes the per-caller and per-card limits, but not this.
//
// A request whose answer can fail a check takes one of Max places before it
// is sent and keeps it only if its answer is a failure: so however many
// calls guess at once, at most Max failing requests reach the hosts in
// Window. While places held by requests in flight fill what failures have
// left, the next request waits for one to be given back (a burst of honest
// callers is slowed, not refused); once Max failures fall in Window the
// guard is on, and new calls and calls at their next host request are
// refused until it has passed.
type LineGuard struct {
	Store  Store
	Max    int           // failing checks allowed in Window; 0: off
	Window time.Duration // and how long the guard stays on
	// Hold bounds how long a place is held for a request whose instance
	// never settles it (it died); default 5 minutes.
	Hold time.Duration
	Now  func() time.Time

	// OnWait, when set, hears each request that had to wait for a place:
	// the places held by requests in flight filled the count (the guard
	// bounds requests in flight at Max too).
	OnWait func()

	// settled is closed (and replaced) whenever this instance settles a
	// place, so its own waiters try again at once; another instance's
	// settling is seen by polling.
	mu      sync.Mutex
	settled chan struct{}
}

// settledSignal is the channel the next local settle closes.
func (g *LineGuard) settledSignal() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.settled == nil {
		g.settled = make(chan struct{})
	}
	return g.settled
}

// wake lets this instance's waiters try again.
func (g *LineGuard) wake() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.settled != nil {
		close(g.settled)
		g.settled = nil
	}
}

// lineGuardKey is the one counter of the whole line.
const lineGuardKey = "line:failed-card-checks"

func (g *LineGuard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *LineGuard) rule() Rule { return Rule{Max: g.Max, Window: g.Window, Lockout: g.Window} }

// On reports whether the guard refuses new calls now.
func (g *LineGuard) On(ctx context.Context) (bool, error) {
	if g == nil || g.Max <= 0 {
		return false, nil
	}
	on, err := g.Store.Blocked(ctx, lineGuardKey, g.now())
	if err != nil {
		return false, fmt.Errorf("attempt store: %w", err)
	}
	return on, nil
}

// Reserve takes a place for one request whose answer can fail a check,
// waiting (until ctx ends) while held places fill the count. ok is false
// when the guard is on: the request must not be sent. settle ends the
// reservation with the answer: failed keeps the place as a failure, else it
// is given back.
func (g *LineGuard) Reserve(ctx context.Context) (settle func(ctx context.Context, failed bool) error, ok bool, err error) {
	if g == nil || g.Max <= 0 {
		return func(context.Context, bool) error { return nil }, true, nil
	}
	hold := g.Hold
	if hold <= 0 {
		hold = 5 * time.Minute
	}
	waited := false
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		settled := g.settledSignal()
		id, state, err := g.Store.Reserve(ctx, lineGuardKey, g.rule(), hold, g.now())
		switch {
		case err != nil:
			return nil, false, fmt.Errorf("attempt store: %w", err)
		case state == Full:
			return nil, false, nil
		case state == Reserved:
			return func(ctx context.Context, failed bool) error {
				err := g.Store.Settle(ctx, lineGuardKey, id, failed, g.rule(), g.now())
				g.wake()
				if err != nil {
					return fmt.Errorf("attempt store: %w", err)
				}
				return nil
			}, true, nil
		}
		if !waited && g.OnWait != nil {
			waited = true
			g.OnWait()
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false, ctx.Err()
		case <-settled:
		case <-t.C:
		}
		t.Stop()
	}
}

// Budget bounds the requests the whole line sends a host in a sliding
// window (KeySecure's: one first-setup check costs about ten), shared by
// the fleet through the store.
type Budget struct {
	Store  Store
	Name   string        // the host's, for the store key
	Max    int           // requests in Window; 0: no budget
	Window time.Duration // sliding
	Now    func() time.Time
}

// Take counts one request: false when the budget is spent (the request
// must not be sent).
func (b *Budget) Take(ctx context.Context) (bool, error) {
	if b == nil || b.Max <= 0 {
		return true, nil
	}
	now := time.Now()
	if b.Now != nil {
		now = b.Now()
	}
	// A spent budget is re-read a second later: the window slides, and
	// there is no lockout beyond it.
	ok, err := b.Store.Hit(ctx, "line:budget:"+b.Name, Rule{Max: b.Max, Window: b.Window, Lockout: time.Second}, now)
	if err != nil {
		return false, fmt.Errorf("attempt store: %w", err)
	}
	return ok, nil
}
