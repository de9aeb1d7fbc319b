// Package outcome names what became of a request to a PIN host, in the terms
// the call flow speaks and the audit record stores. Both host clients return
// a Result; the flow never sees host-specific codes except to log them.
package outcome

import "fmt"

// Kind is the caller-facing outcome of a host request.
type Kind string

// The outcomes.
const (
	Changed     Kind = "changed"      // the PIN was changed or set
	WrongPIN    Kind = "wrong_pin"    // the current PIN was not accepted
	NotEligible Kind = "not_eligible" // the card cannot take this change (blocked, status, type)
	// The card host's refusals that the caller can act on.
	ExpiryMismatch Kind = "expiry_mismatch" // the expiry typed is not the card's
	UnknownCard    Kind = "unknown_card"    // the card host does not know the card number
	NoPINYet       Kind = "no_pin_yet"      // the card has no PIN: offer first setup
	WeakPIN        Kind = "weak_pin"        // the host refused the new PIN as weak or malformed
	Rejected       Kind = "rejected"        // any other refusal by the host
	Unavailable    Kind = "unavailable"     // nothing reached the host, or it refused before acting
	Ambiguous      Kind = "ambiguous"       // the request may have been applied; no answer came

	// First setup proves the card is in the caller's hand before any PIN is
	// sent; these are what that proof can come to.
	Verified        Kind = "verified"         // the card's details and security code match
	DetailsMismatch Kind = "details_mismatch" // number, expiry or security code do not match (never which)
	CannotVerify    Kind = "cannot_verify"    // the host will not show the card's details (KeySecure 1013)
	AlreadySet      Kind = "already_set"      // this card's first PIN was already set through the line
)

// Kinds lists every kind, for metrics that exist from start-up.
var Kinds = []Kind{Changed, WrongPIN, NotEligible, ExpiryMismatch, UnknownCard, NoPINYet, WeakPIN, Rejected, Unavailable, Ambiguous,
	Verified, DetailsMismatch, CannotVerify, AlreadySet}

// Host names the system that took the request.
type Host string

// The two hosts.
const (
	CardHost  Host = "cardhost"
	KeySecure Host = "keysecure"
)

// Result is what a host request came to. It carries no PIN or PAN.
type Result struct {
	Kind        Kind
	Host        Host
	Code        string // the host's own code ("000", "105", "4017"), "" when none came
	Description string // the host's description, for logs
	MsgID       string // the request's message id, for the audit record
	Reference   string // the host's own reference (NI transaction_ref_id), for the audit record
}

func (r Result) String() string {
	return fmt.Sprintf("%s from %s (code %q, msg_id %s)", r.Kind, r.Host, r.Code, r.MsgID)
}
