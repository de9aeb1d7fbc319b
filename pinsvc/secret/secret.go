// Package secret holds the kinds of sensitive value a PIN call touches: a
// card number (PAN), a PIN, a card's security code, and a key. Each type redacts itself under every
// fmt verb, under %#v, and in JSON, so a stray log call cannot leak it.
// Reaching the clear value takes an explicitly named method (Digits, Bytes),
// which makes every such use easy to find in review.
package secret

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
)

// Masked is what a PIN prints as, whatever its length (the length itself
// would narrow a guess).
const Masked = "****"

// PAN is a primary account number. It prints as the first six and last four
// digits with the middle masked, which is what PCI DSS allows on display.
type PAN string

// Digits returns the clear card number, for building a PIN block or a host
// request. Never log the result.
func (p PAN) Digits() string { return string(p) }

// Masked returns the PAN with all but the first six and last four digits
// replaced by '*'. Values of 10 digits or fewer are fully masked.
func (p PAN) Masked() string { return MaskPAN(string(p)) }

// Last4 returns the last four digits, or "" for a shorter value.
func (p PAN) Last4() string {
	if len(p) < 4 {
		return ""
	}
	return string(p[len(p)-4:])
}

// String implements fmt.Stringer with the masked form.
func (p PAN) String() string { return p.Masked() }

// GoString implements fmt.GoStringer with the masked form.
func (p PAN) GoString() string { return fmt.Sprintf("secret.PAN(%q)", p.Masked()) }

// Format makes every verb (%v %s %q %x %d ...) print the masked form.
func (p PAN) Format(f fmt.State, verb rune) { formatMasked(f, verb, p.Masked()) }

// MarshalJSON writes the masked form.
func (p PAN) MarshalJSON() ([]byte, error) { return json.Marshal(p.Masked()) }

// MarshalText writes the masked form (used by encoders that prefer text).
func (p PAN) MarshalText() ([]byte, error) { return []byte(p.Masked()), nil }

// MaskPAN masks a card number to first six and last four digits. Anything
// that is not long enough to keep ten digits visible and still hide some is
// masked entirely.
func MaskPAN(s string) string {
	if len(s) <= 10 {
		return stars(len(s))
	}
	return s[:6] + stars(len(s)-10) + s[len(s)-4:]
}

func stars(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '*'
	}
	return string(b)
}

// digits are clear digits in a byte slice that the holder owns and wipes,
// masked under every fmt verb and in JSON: what a PIN and a security code
// share.
type digits struct {
	b []byte
}

// Bytes returns the clear digits. The slice aliases the storage and is
// zeroed by Wipe. Never log it.
func (d *digits) Bytes() []byte {
	if d == nil {
		return nil
	}
	return d.b
}

// Len is the number of digits held.
func (d *digits) Len() int {
	if d == nil {
		return 0
	}
	return len(d.b)
}

// Wipe zeroes the digits and empties the holder. Safe on nil and
// repeatable.
func (d *digits) Wipe() {
	if d == nil {
		return
	}
	Zero(d.b)
	d.b = nil
}

// Wiped reports whether no digits are held any more.
func (d *digits) Wiped() bool { return d == nil || d.b == nil }

// PIN holds clear PIN digits in a byte slice that the holder owns and wipes.
// The zero value is an empty PIN. A PIN must not be copied by value after
// use: pass *PIN.
type PIN struct{ digits }

// NewPIN takes ownership of digits (no copy): the caller must not keep
// another reference, so Wipe really clears the only copy.
func NewPIN(b []byte) *PIN { return &PIN{digits{b: b}} }

// PINFromString copies s into a new PIN. Strings cannot be wiped, so this is
// for tests and simulators only; call paths use NewPIN on collected bytes.
func PINFromString(s string) *PIN { return &PIN{digits{b: []byte(s)}} }

// Equal compares two PINs in constant time.
func (p *PIN) Equal(o *PIN) bool {
	return subtle.ConstantTimeCompare(p.Bytes(), o.Bytes()) == 1
}

// Bytes, Len, Wipe and Wiped are digits', on a nil *PIN too.
func (p *PIN) Bytes() []byte { return p.held().Bytes() }
func (p *PIN) Len() int      { return p.held().Len() }
func (p *PIN) Wipe()         { p.held().Wipe() }
func (p *PIN) Wiped() bool   { return p.held().Wiped() }

func (p *PIN) held() *digits {
	if p == nil {
		return nil
	}
	return &p.digits
}

// The PIN prints as the mask under every verb, %#v, JSON and text, nil
// or not.
func (p *PIN) String() string                { return Masked }
func (p *PIN) GoString() string              { return "secret.PIN(" + Masked + ")" }
func (p *PIN) Format(f fmt.State, verb rune) { formatMasked(f, verb, Masked) }
func (p *PIN) MarshalJSON() ([]byte, error)  { return json.Marshal(Masked) }
func (p *PIN) MarshalText() ([]byte, error)  { return []byte(Masked), nil }

// SecurityCode is the three digits from the back of a card (CVV2, CVC2),
// which prove the caller holds it. It is held, masked and wiped as a PIN
// is, but is a type of its own so that it can never be sent where a PIN
// goes, nor a PIN compared where a code is.
type SecurityCode struct{ digits }

// NewSecurityCode takes ownership of b (no copy), as NewPIN does.
func NewSecurityCode(b []byte) *SecurityCode { return &SecurityCode{digits{b: b}} }

// Bytes, Len, Wipe and Wiped are digits', on a nil *SecurityCode too.
func (c *SecurityCode) Bytes() []byte { return c.held().Bytes() }
func (c *SecurityCode) Len() int      { return c.held().Len() }
func (c *SecurityCode) Wipe()         { c.held().Wipe() }
func (c *SecurityCode) Wiped() bool   { return c.held().Wiped() }

func (c *SecurityCode) held() *digits {
	if c == nil {
		return nil
	}
	return &c.digits
}

// The code prints as the mask under every verb, %#v, JSON and text, nil
// or not.
func (c *SecurityCode) String() string                { return Masked }
func (c *SecurityCode) GoString() string              { return "secret.SecurityCode(" + Masked + ")" }
func (c *SecurityCode) Format(f fmt.State, verb rune) { formatMasked(f, verb, Masked) }
func (c *SecurityCode) MarshalJSON() ([]byte, error)  { return json.Marshal(Masked) }
func (c *SecurityCode) MarshalText() ([]byte, error)  { return []byte(Masked), nil }

// Zero overwrites b with zeros. It is a plain loop: the Go compiler does not
// elide stores to a slice that escapes, which these always do.
func Zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

func formatMasked(f fmt.State, verb rune, masked string) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", masked)
	default:
		_, _ = f.Write([]byte(masked))
	}
}
