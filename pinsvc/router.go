// Package pinsvc is everything between what a caller typed and what the PIN
// hosts accept. Its subpackages each have one job: secret (masked PAN, PIN
// and key types), policy (Luhn, expiry, PIN rules), pinblock (ISO 9564 blocks
// and their encryption), cardhost and keysecure (the two host clients),
// outcome (what a request came to) and sim (simulators of both hosts).
//
// This package holds the Router, the one entry point the call flow uses: a
// PIN change goes to the card host; the first PIN of a physical card goes to
// KeySecure.
package pinsvc

import (
	"context"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/contract"

	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// CardHost is the part of *cardhost.Client the router uses.
type CardHost interface {
	ChangePIN(ctx context.Context, req cardhost.ChangeRequest) (outcome.Result, error)
	Seal(pan secret.PAN, pin *secret.PIN, since time.Time) (contract.SealedPIN, error)
}

// KeySecure is the part of *keysecure.Client the router uses.
type KeySecure interface {
	VerifyCard(ctx context.Context, chk keysecure.CardCheck) (keysecure.CardRef, error)
	SetPIN(ctx context.Context, req keysecure.SetRequest) (outcome.Result, error)
}

// Router implements contract.Service over the two host clients. KeySecure may be nil
// when first setup is not offered.
type Router struct {
	CardHost  CardHost
	KeySecure KeySecure
	Policy    policy.PINPolicy // change policy; zero means policy.DefaultPINPolicy
}

var _ contract.Service = (*Router)(nil)

// ChangePolicy implements Service.
func (r *Router) ChangePolicy() policy.PINPolicy {
	if r.Policy.MaxLength == 0 {
		return policy.DefaultPINPolicy
	}
	return r.Policy
}

// FirstSetupPolicy implements Service.
func (r *Router) FirstSetupPolicy() policy.PINPolicy { return policy.KeySecurePINPolicy }

// FirstSetupAvailable implements Service.
func (r *Router) FirstSetupAvailable() bool { return r.KeySecure != nil }

// ChangePIN implements Service.
func (r *Router) ChangePIN(ctx context.Context, c contract.Change) outcome.Result {
	res, err := r.CardHost.ChangePIN(ctx, cardhost.ChangeRequest{
		PAN: c.PAN, Expiry: c.Expiry.YYMM(), SequenceNumber: c.SequenceNumber,
		OldSealed: c.OldSealed, NewSealed: c.NewSealed, TrackingID: c.TrackingID, BeforeSend: c.BeforeSend,
	})
	if err != nil {
		res.Kind, res.Host = outcome.Unavailable, outcome.CardHost
		res.Description = err.Error()
	}
	return res
}

// SealPIN implements Service.
func (r *Router) SealPIN(pan secret.PAN, pin *secret.PIN, since time.Time) (contract.SealedPIN, error) {
	return r.CardHost.Seal(pan, pin, since)
}

// VerifyCard implements Service.
func (r *Router) VerifyCard(ctx context.Context, c contract.CardCheck) (contract.VerifiedCard, outcome.Result) {
	defer c.Code.Wipe()
	if r.KeySecure == nil {
		return contract.VerifiedCard{}, outcome.Result{Kind: outcome.NotEligible, Host: outcome.KeySecure, Description: "first setup not configured"}
	}
	ref, err := r.KeySecure.VerifyCard(ctx, keysecure.CardCheck{PAN: c.PAN, Expiry: c.Expiry, CardNo: c.CardNo, CardholderNo: c.CardholderNo, Code: c.Code})
	if err != nil {
		if res, ok := keysecure.AsResult(err); ok {
			return contract.VerifiedCard{}, res
		}
		return contract.VerifiedCard{}, outcome.Result{Kind: outcome.Unavailable, Host: outcome.KeySecure, Description: "card check failed"}
	}
	return contract.VerifiedCard{ID: ref.CardNo, CardholderNo: ref.CardholderNo}, outcome.Result{Kind: outcome.Verified, Host: outcome.KeySecure}
}

// SetFirstPIN implements Service.
func (r *Router) SetFirstPIN(ctx context.Context, s contract.FirstSetup) outcome.Result {
	defer s.PIN.Wipe()
	if r.KeySecure == nil {
		return outcome.Result{Kind: outcome.NotEligible, Host: outcome.KeySecure, Description: "first setup not configured"}
	}
	if s.Card.ID == "" || s.Card.CardholderNo == "" {
		// Only a verified card may take a first PIN.
		return outcome.Result{Kind: outcome.Rejected, Host: outcome.KeySecure, Description: "card not verified"}
	}
	res, err := r.KeySecure.SetPIN(ctx, keysecure.SetRequest{CardNo: s.Card.ID, CardholderNo: s.Card.CardholderNo, PIN: s.PIN, BeforeSend: s.BeforeSend})
	if err != nil {
		return outcome.Result{Kind: outcome.Unavailable, Host: outcome.KeySecure, Description: "request not built"}
	}
	return res
}
