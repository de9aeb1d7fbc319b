// Package contract is what the call flow may ask of the PIN hosts: the
// Service interface and its request and result types. It holds no client,
// no HTTP and no key, so a package that depends on it (flows) does not link
// the card-host and KeySecure clients; pinsvc.Router implements it.
package contract

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// Service is what the call flow needs from the hosts.
type Service interface {
	ChangePIN(ctx context.Context, c Change) outcome.Result
	// SealPIN encrypts pin into the card host's PIN block for pan and wipes
	// pin. since is when the call sealed its first PIN: across a key
	// rotation a call finishes under the key it began with.
	SealPIN(pan secret.PAN, pin *secret.PIN, since time.Time) (SealedPIN, error)
	// VerifyCard proves a first-setup caller holds the card. Its result is
	// outcome.Verified with the card, or why not (DetailsMismatch never says
	// which detail). It runs on the call's context: a hang-up stops it.
	VerifyCard(ctx context.Context, c CardCheck) (VerifiedCard, outcome.Result)
	SetFirstPIN(ctx context.Context, s FirstSetup) outcome.Result
	// FirstSetupPolicy is the PIN rule for first setup (KeySecure: 6 digits).
	FirstSetupPolicy() policy.PINPolicy
	// ChangePolicy is the PIN rule for a change.
	ChangePolicy() policy.PINPolicy
	// FirstSetupAvailable says whether first setup can be offered at all.
	FirstSetupAvailable() bool
}

// Change is a PIN change as the flow collected it: both PINs sealed by
// SealPIN (their digits wiped once sealed), so a retry resends the blocks
// and never kept digits.
type Change struct {
	PAN                  secret.PAN
	Expiry               policy.Expiry
	SequenceNumber       string
	OldSealed, NewSealed *SealedPIN
	TrackingID           string
	Origin               Origin
	// BeforeSend, when set, is called with the request's reference (the
	// card host's msg_id) once the request is built and before it is sent;
	// an error stops it unsent (the outcome is Unavailable). The line
	// writes its audit attempt here.
	BeforeSend func(ref string) error
}

// Origin says which call a request comes from, for the audit.
type Origin struct {
	ChannelID, CallerID string
	MaskedPAN           string
}

// SealedPIN is a PIN already encrypted into the card host's PIN block for
// one card, so a change can be sent again (a retried current PIN, a
// corrected expiry) without keeping clear digits. It formats as <sealed>
// (a PIN block never reaches a log) and holds no clear digit.
type SealedPIN struct {
	block string
	pan   secret.PAN
	keyID string
}

// Seal wraps a PIN block made for pan under the key the card host knows as
// keyID ("" when none is configured); the card-host client makes them.
func Seal(block string, pan secret.PAN, keyID string) SealedPIN {
	return SealedPIN{block: block, pan: pan, keyID: keyID}
}

// KeyID is the card host's name of the key the block was made under.
func (s *SealedPIN) KeyID() string {
	if s == nil {
		return ""
	}
	return s.keyID
}

// BlockFor is the PIN block if it was sealed for pan: formats 0, 3 and 4
// bind a block to its card, so a block sealed for another card is refused.
func (s *SealedPIN) BlockFor(pan secret.PAN) (string, bool) {
	if s == nil || s.block == "" || s.pan != pan {
		return "", false
	}
	return s.block, true
}

func (SealedPIN) String() string               { return "<sealed>" }
func (SealedPIN) GoString() string             { return "contract.SealedPIN(<sealed>)" }
func (SealedPIN) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, "<sealed>") }
func (SealedPIN) MarshalJSON() ([]byte, error) { return []byte(`"<sealed>"`), nil }

// CardCheck is what a first-setup caller typed to prove they hold the card:
// the card (by PAN and expiry, or KeySecure's card_no and cardholder_no
// passed by an agent) and the security code from its back. The service wipes
// Code whatever happens.
type CardCheck struct {
	PAN                  secret.PAN
	Expiry               policy.Expiry
	CardNo, CardholderNo string
	Code                 *secret.SecurityCode
}

// VerifiedCard is a card whose holder proved they hold it. ID is the
// platform's own identifier of the card, the same however the card was
// named, which keys the line's once-only first setup mark.
type VerifiedCard struct {
	ID, CardholderNo string
}

// FirstSetup is the first PIN of a verified physical card.
type FirstSetup struct {
	Card   VerifiedCard
	PIN    *secret.PIN
	Origin Origin
	// BeforeSend is as Change's: called with the line's reference for the
	// set request before it is sent.
	BeforeSend func(ref string) error
}
