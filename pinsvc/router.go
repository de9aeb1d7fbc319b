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

	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// Change is a PIN change as the flow collected it. The service wipes Old and
// New whatever happens.
type Change struct {
	PAN            secret.PAN
	Expiry         policy.Expiry
	SequenceNumber string
	Old, New       *secret.PIN
	TrackingID     string
}

// FirstSetup is the first PIN of a new physical card. CardNo and
// CardholderNo are set when an agent transfer identified the card on
// KeySecure; otherwise the card is found from PAN and Expiry.
type FirstSetup struct {
	PAN                  secret.PAN
	Expiry               policy.Expiry
	CardNo, CardholderNo string
	PIN                  *secret.PIN
}

// Service is what the call flow needs from the hosts.
type Service interface {
	ChangePIN(ctx context.Context, c Change) outcome.Result
	SetFirstPIN(ctx context.Context, s FirstSetup) outcome.Result
	// FirstSetupPolicy is the PIN rule for first setup (KeySecure: 6 digits).
	FirstSetupPolicy() policy.PINPolicy
	// ChangePolicy is the PIN rule for a change.
	ChangePolicy() policy.PINPolicy
	// FirstSetupAvailable says whether first setup can be offered at all.
	FirstSetupAvailable() bool
}

// CardHost is the part of *cardhost.Client the router uses.
type CardHost interface {
	ChangePIN(ctx context.Context, req cardhost.ChangeRequest) (outcome.Result, error)
}

// KeySecure is the part of *keysecure.Client the router uses.
type KeySecure interface {
	FindCard(ctx context.Context, pan secret.PAN, exp policy.Expiry) (keysecure.CardRef, error)
	SetPIN(ctx context.Context, req keysecure.SetRequest) (outcome.Result, error)
}

// Router implements Service over the two host clients. KeySecure may be nil
// when first setup is not offered.
type Router struct {
	CardHost  CardHost
	KeySecure KeySecure
	Policy    policy.PINPolicy // change policy; zero means policy.DefaultPINPolicy
}

var _ Service = (*Router)(nil)

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
func (r *Router) ChangePIN(ctx context.Context, c Change) outcome.Result {
	res, err := r.CardHost.ChangePIN(ctx, cardhost.ChangeRequest{
		PAN: c.PAN, Expiry: c.Expiry.YYMM(), SequenceNumber: c.SequenceNumber,
		Old: c.Old, New: c.New, TrackingID: c.TrackingID,
	})
	c.Old.Wipe()
	c.New.Wipe()
	if err != nil {
		res.Kind, res.Host = outcome.Unavailable, outcome.CardHost
		res.Description = err.Error()
	}
	return res
}

// SetFirstPIN implements Service.
func (r *Router) SetFirstPIN(ctx context.Context, s FirstSetup) outcome.Result {
	defer s.PIN.Wipe()
	if r.KeySecure == nil {
		return outcome.Result{Kind: outcome.NotEligible, Host: outcome.KeySecure, Description: "first setup not configured"}
	}
	ref := keysecure.CardRef{CardNo: s.CardNo, CardholderNo: s.CardholderNo}
	if ref.CardNo == "" || ref.CardholderNo == "" {
		found, err := r.KeySecure.FindCard(ctx, s.PAN, s.Expiry)
		if err != nil {
			if res, ok := keysecure.AsResult(err); ok {
				return res
			}
			return outcome.Result{Kind: outcome.Unavailable, Host: outcome.KeySecure, Description: "card lookup failed"}
		}
		ref = found
	}
	res, err := r.KeySecure.SetPIN(ctx, keysecure.SetRequest{CardNo: ref.CardNo, CardholderNo: ref.CardholderNo, PIN: s.PIN})
	if err != nil {
		return outcome.Result{Kind: outcome.Unavailable, Host: outcome.KeySecure, Description: "request not built"}
	}
	return res
}
