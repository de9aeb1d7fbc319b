// Package policy decides whether what a caller typed is acceptable: a card
// number (length and Luhn), an expiry date (typed MMYY as printed, or YYMM,
// not expired) and a PIN (length, then the one table of PIN rules, typed the
// same twice).
// Every rejection is a *Rejection whose Reason the call flow turns into a
// spoken sentence; no rejection carries the digits that were typed.
package policy

import (
	"bytes"
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
	ReasonBadDate      Reason = "bad_date"      // not a month and year
	ReasonExpired      Reason = "expired"       // before the current month
	ReasonPINTooShort  Reason = "pin_too_short" // fewer digits than the policy's minimum
	ReasonPINTooLong   Reason = "pin_too_long"  // more digits than its maximum (never cut)
	ReasonPINSameAsOld Reason = "pin_same"      // new PIN equals the current one
	// The rules of PINRules.
	ReasonPINSameDigits   Reason = "pin_same_digits"   // every digit the same
	ReasonPINSequence     Reason = "pin_sequence"      // the whole PIN ascends or descends
	ReasonPINCommon       Reason = "pin_common"        // one of CommonPINs
	ReasonPINCardDigits   Reason = "pin_card_digits"   // holds the card's last four digits
	ReasonPINExpiryDigits Reason = "pin_expiry_digits" // holds the card's expiry
	ReasonPINRuns         Reason = "pin_runs"          // three same or consecutive digits in a row
	ReasonPINMismatch     Reason = "pin_mismatch"      // the two new PINs differ
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

// MMYY is the date as a card prints it.
func (e Expiry) MMYY() string { return fmt.Sprintf("%02d%02d", int(e.Month), e.Year%100) }

// ExpiryOrder is the order in which a caller types an expiry's two parts
// (IVRPIN_EXPIRY_ORDER).
type ExpiryOrder string

// The orders. Cards print MM/YY, so callers read it off that way; the card
// host's field is YYMM.
const (
	MMYY ExpiryOrder = "MMYY"
	YYMM ExpiryOrder = "YYMM"
)

// ParseExpiryAs reads four digits typed in order and checks them as
// ParseExpiry does.
func ParseExpiryAs(order ExpiryOrder, digits string, now time.Time) (Expiry, error) {
	if order == MMYY && len(digits) == 4 && allDigits(digits) {
		digits = digits[2:] + digits[:2]
	}
	return ParseExpiry(digits, now)
}

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

// PINPolicy is the rule set for a new PIN: its length, then every rule of
// PINRules that applies to it.
type PINPolicy struct {
	MinLength int // default 4
	MaxLength int // default 6
	// NoRuns adds KeySecure's documented rule (4016): no three identical or
	// consecutive digits anywhere in the PIN.
	NoRuns bool
}

// DefaultPINPolicy is what the card host path uses: 4 to 6 digits.
var DefaultPINPolicy = PINPolicy{MinLength: 4, MaxLength: 6}

// KeySecurePINPolicy is KeySecure's rule: exactly 6 digits, no runs of
// three.
var KeySecurePINPolicy = PINPolicy{MinLength: 6, MaxLength: 6, NoRuns: true}

// PINFacts is what a new PIN is checked against besides itself: the card it
// is for and the PIN it replaces. Any of them may be unknown (empty/nil): a
// card named by an agent has no PAN, a first PIN has no current one. The
// current PIN is known by its digest only: it is sealed and wiped as soon
// as it is typed.
type PINFacts struct {
	PAN     secret.PAN
	Expiry  Expiry
	Current *secret.PINDigest
}

// Guidance names what the line says of a rule before the PIN is typed;
// rules of the same kind are said once.
type Guidance string

// The kinds of guidance.
const (
	GuideEasy Guidance = "easy" // "avoid easy PINs such as 1234 or 1111, or digits from your card"
	GuideRuns Guidance = "runs" // "no three same or consecutive digits in a row"
	GuideNone Guidance = ""     // said only when refused (the current PIN)
)

// PINRule is one row of the table: what it refuses, the reason a refusal
// gives, and what the caller is told before typing.
type PINRule struct {
	Reason  Reason
	Guide   Guidance
	refuses func(p PINPolicy, pin []byte, f PINFacts) bool
}

// PINRules is the one table of new-PIN rules, in the order they are tried
// (after the length): the first that refuses is the only reason given. The
// call flow says each row's Guide before the PIN is typed and each row's
// Reason when it refuses, so what is said is what is enforced.
var PINRules = []PINRule{
	{ReasonPINSameDigits, GuideEasy, func(_ PINPolicy, pin []byte, _ PINFacts) bool { return sameDigits(pin) }},
	{ReasonPINSequence, GuideEasy, func(_ PINPolicy, pin []byte, _ PINFacts) bool { return fullRun(pin) }},
	{ReasonPINCommon, GuideEasy, func(_ PINPolicy, pin []byte, _ PINFacts) bool { return CommonPINs[string(pin)] }},
	{ReasonPINCardDigits, GuideEasy, func(_ PINPolicy, pin []byte, f PINFacts) bool { return containsCardDigits(pin, f.PAN) }},
	{ReasonPINExpiryDigits, GuideEasy, func(_ PINPolicy, pin []byte, f PINFacts) bool { return containsExpiry(pin, f.Expiry) }},
	{ReasonPINRuns, GuideRuns, func(p PINPolicy, pin []byte, _ PINFacts) bool { return p.NoRuns && HasRun(pin) }},
	{ReasonPINSameAsOld, GuideNone, func(_ PINPolicy, pin []byte, f PINFacts) bool {
		return f.Current.Matches(pin)
	}},
}

// CommonPINs are the 20 most used 4-digit PINs of published PIN-frequency
// studies (Berry, DataGenetics 2012; Bonneau et al. 2012). A guesser tries
// them first.
var CommonPINs = map[string]bool{
	"1234": true, "1111": true, "0000": true, "1212": true, "7777": true,
	"1004": true, "2000": true, "4444": true, "2222": true, "6969": true,
	"9999": true, "3333": true, "5555": true, "6666": true, "1122": true,
	"1313": true, "8888": true, "4321": true, "2001": true, "1010": true,
}

// Guidance lists, in table order and once each, what the caller is told
// of p's rules before typing a new PIN.
func (p PINPolicy) Guidance() []Guidance {
	var out []Guidance
	seen := map[Guidance]bool{}
	for _, r := range PINRules {
		if r.Guide == GuideNone || seen[r.Guide] || (r.Reason == ReasonPINRuns && !p.NoRuns) {
			continue
		}
		seen[r.Guide] = true
		out = append(out, r.Guide)
	}
	return out
}

// CheckEntry checks only length and digits: what a current PIN must satisfy
// before it is worth sending to the host.
func (p PINPolicy) CheckEntry(pin *secret.PIN) error {
	const field = "PIN"
	b := pin.Bytes()
	switch {
	case !allDigitsBytes(b):
		return reject(field, ReasonNotDigits)
	case len(b) < p.MinLength:
		return reject(field, ReasonPINTooShort)
	case len(b) > p.MaxLength:
		return reject(field, ReasonPINTooLong)
	}
	return nil
}

// CheckNew checks a new PIN: its length, then the rules of PINRules in
// order. One refusal, one reason.
func (p PINPolicy) CheckNew(newPIN *secret.PIN, f PINFacts) error {
	if err := p.CheckEntry(newPIN); err != nil {
		return err
	}
	b := newPIN.Bytes()
	for _, r := range PINRules {
		if r.refuses(p, b, f) {
			return reject("PIN", r.Reason)
		}
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

// HasRun reports whether digits contain three or more identical digits in a
// row (111) or three or more consecutive ascending or descending digits
// (123, 987): KeySecure's documented rule (4016). Wrap-around (890, 901) is
// not counted as consecutive.
func HasRun(digits []byte) bool {
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

// sameDigits: every digit the same (1111, 000000).
func sameDigits(d []byte) bool {
	for i := 1; i < len(d); i++ {
		if d[i] != d[0] {
			return false
		}
	}
	return len(d) > 0
}

// fullRun: the whole PIN ascends or descends by one (1234, 987654).
// Wrap-around (8901) is not a run.
func fullRun(d []byte) bool {
	if len(d) < 2 {
		return false
	}
	step := int(d[1]) - int(d[0])
	if step != 1 && step != -1 {
		return false
	}
	for i := 2; i < len(d); i++ {
		if int(d[i])-int(d[i-1]) != step {
			return false
		}
	}
	return true
}

// containsCardDigits: the card number's last four digits appear in the PIN.
func containsCardDigits(pin []byte, pan secret.PAN) bool {
	digits := pan.Digits()
	if len(digits) < 4 {
		return false
	}
	return bytes.Contains(pin, []byte(digits[len(digits)-4:]))
}

// containsExpiry: the expiry as printed (MMYY) or as the host keeps it
// (YYMM) appears in the PIN.
func containsExpiry(pin []byte, e Expiry) bool {
	if e.Year == 0 {
		return false
	}
	return bytes.Contains(pin, []byte(e.MMYY())) || bytes.Contains(pin, []byte(e.YYMM()))
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
