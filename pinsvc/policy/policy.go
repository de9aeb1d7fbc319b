// Package policy decides whether what a caller typed is acceptable: a card
// number (length and Luhn), an expiry date (YYMM, not expired) and a PIN
// (length, not easy to guess, not the current one, typed the same twice).
// Every rejection is a *Rejection whose Reason the call flow turns into a
// spoken sentence; no rejection carries the digits that were typed.
package policy

import (
	"errors"
	"fmt"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// Reason says why an entry was refused, in terms a caller can be told.
type Reason string

// The reasons an entry is refused.
const (
	ReasonIncomplete   Reason = "incomplete"    // too few digits
	ReasonTooLong      Reason = "too_long"      // too many digits
	ReasonNotDigits    Reason = "not_digits"    // something other than 0-9
	ReasonNotValidCard Reason = "not_valid"     // Luhn check failed
	ReasonBadDate      Reason = "bad_date"      // not a YYMM date
	ReasonExpired      Reason = "expired"       // before the current month
	ReasonPINLength    Reason = "pin_length"    // PIN of the wrong length
	ReasonPINWeak      Reason = "pin_weak"      // repeated or sequential digits
	ReasonPINSameAsOld Reason = "pin_same"      // new PIN equals the current one
	ReasonPINMismatch  Reason = "pin_mismatch"  // the two new PINs differ
	ReasonNotEligible  Reason = "not_eligible"  // the card cannot take this change
	ReasonWrongPIN     Reason = "wrong_current" // the host refused the current PIN
)

// Rejection is the error every check returns. Field names the entry
// ("card number", "expiry", "PIN"); it never holds the entry itself.
type Rejection struct {
	Field  string
	Reason Reason
}

func (r *Rejection) Error() string { return fmt.Sprintf("%s rejected: %s", r.Field, r.Reason) }

// ReasonOf returns the Reason of a *Rejection in err's chain, or "".
func ReasonOf(err error) Reason {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

func reject(field string, reason Reason) error { return &Rejection{Field: field, Reason: reason} }

// Card number lengths the hosts accept (ISO/IEC 7812 allows 8 to 19; the card
// host's field is 16 to 19).
const (
	MinPANLength = 16
	MaxPANLength = 19
)

// CheckPAN accepts 16 to 19 digits that pass the Luhn check.
func CheckPAN(pan string) error {
	const field = "card number"
	if !allDigits(pan) {
		return reject(field, ReasonNotDigits)
	}
	switch {
	case len(pan) < MinPANLength:
		return reject(field, ReasonIncomplete)
	case len(pan) > MaxPANLength:
		return reject(field, ReasonTooLong)
	case !Luhn(pan):
		return reject(field, ReasonNotValidCard)
	}
	return nil
}

// Luhn reports whether the digit string passes the mod-10 check. Non-digits
// fail.
func Luhn(digits string) bool {
	if len(digits) < 2 {
		return false
	}
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// Expiry is a card's expiry month. A card is valid to the end of that month.
type Expiry struct {
	Year  int // four digits
	Month time.Month
}

// YYMM is the host's form of the date.
func (e Expiry) YYMM() string { return fmt.Sprintf("%02d%02d", e.Year%100, int(e.Month)) }

// ParseExpiry reads a YYMM entry and refuses a month outside 01-12 or a date
// before the month of now. Years are taken as 20YY: cards issued today never
// expire in the last century.
func ParseExpiry(yymm string, now time.Time) (Expiry, error) {
	const field = "expiry"
	if !allDigits(yymm) {
		return Expiry{}, reject(field, ReasonNotDigits)
	}
	if len(yymm) < 4 {
		return Expiry{}, reject(field, ReasonIncomplete)
	}
	if len(yymm) > 4 {
		return Expiry{}, reject(field, ReasonTooLong)
	}
	yy := int(yymm[0]-'0')*10 + int(yymm[1]-'0')
	mm := int(yymm[2]-'0')*10 + int(yymm[3]-'0')
	if mm < 1 || mm > 12 {
		return Expiry{}, reject(field, ReasonBadDate)
	}
	e := Expiry{Year: 2000 + yy, Month: time.Month(mm)}
	ny, nm, _ := now.Date()
	if e.Year < ny || (e.Year == ny && e.Month < nm) {
		return Expiry{}, reject(field, ReasonExpired)
	}
	return e, nil
}

// PINPolicy is the rule set for a new PIN.
type PINPolicy struct {
	MinLength int // default 4
	MaxLength int // default 6
}

// DefaultPINPolicy is what the card host path uses: 4 to 6 digits.
var DefaultPINPolicy = PINPolicy{MinLength: 4, MaxLength: 6}

// KeySecurePINPolicy is KeySecure's rule: exactly 6 digits.
var KeySecurePINPolicy = PINPolicy{MinLength: 6, MaxLength: 6}

// CheckEntry checks only length and digits: what a current PIN must satisfy
// before it is worth sending to the host.
func (p PINPolicy) CheckEntry(pin *secret.PIN) error {
	const field = "PIN"
	b := pin.Bytes()
	if !allDigitsBytes(b) {
		return reject(field, ReasonNotDigits)
	}
	if len(b) < p.MinLength || len(b) > p.MaxLength {
		return reject(field, ReasonPINLength)
	}
	return nil
}

// CheckNew checks a new PIN: length, then that it is not easy to guess, then
// that it differs from the current PIN (old may be nil on first setup).
func (p PINPolicy) CheckNew(newPIN, old *secret.PIN) error {
	if err := p.CheckEntry(newPIN); err != nil {
		return err
	}
	if Weak(newPIN.Bytes()) {
		return reject("PIN", ReasonPINWeak)
	}
	if old != nil && old.Len() > 0 && newPIN.Equal(old) {
		return reject("PIN", ReasonPINSameAsOld)
	}
	return nil
}

// CheckConfirm checks that the second entry of the new PIN equals the first.
func CheckConfirm(first, second *secret.PIN) error {
	if !first.Equal(second) {
		return reject("PIN", ReasonPINMismatch)
	}
	return nil
}

// Weak reports whether digits contain three or more identical digits in a
// row (111) or three or more consecutive ascending or descending digits
// (123, 987). This is KeySecure's documented rule (4016) and a common issuer
// rule; wrap-around (890, 901) is not counted as sequential.
func Weak(digits []byte) bool {
	for i := 2; i < len(digits); i++ {
		a, b, c := int(digits[i-2]), int(digits[i-1]), int(digits[i])
		if a == b && b == c {
			return true
		}
		if b-a == 1 && c-b == 1 {
			return true
		}
		if a-b == 1 && b-c == 1 {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func allDigitsBytes(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
