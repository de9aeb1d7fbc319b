package pinsvc_test

import (
	"context"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc"
	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/contract"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

func newRouter(t *testing.T, withKeySecure bool) (*pinsvc.Router, *simrun.Running) {
	t.Helper()
	sims, err := simrun.Start(simrun.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sims.Close)
	ch, err := cardhost.New(sims.CardHostConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := &pinsvc.Router{CardHost: ch}
	if withKeySecure {
		ks, err := keysecure.New(sims.KeySecureConfig())
		if err != nil {
			t.Fatal(err)
		}
		r.KeySecure = ks
	}
	return r, sims
}

func expiry(t *testing.T, yymm string) policy.Expiry {
	e, err := policy.ParseExpiry(yymm, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestChangeGoesToTheCardHost(t *testing.T) {
	r, sims := newRouter(t, true)
	res := r.ChangePIN(context.Background(), sealedChange(t, r, "4111111111111111", "2812", "01", "7392", "4829"))
	if res.Kind != outcome.Changed || res.Host != outcome.CardHost {
		t.Fatalf("%v", res)
	}
	if !sims.CardHost.PINIs("4111111111111111", "4829") || sims.KeySecure.PINSets() != 0 {
		t.Fatal("wrong host changed")
	}
}

func TestCardWithoutPINIsOfferedFirstSetup(t *testing.T) {
	r, sims := newRouter(t, true)
	res := r.ChangePIN(context.Background(), sealedChange(t, r, "4012888888881881", "3001", "", "1357", "4829"))
	if res.Kind != outcome.NoPINYet {
		t.Fatalf("%v", res)
	}
	code := secret.NewSecurityCode([]byte("731"))
	card, res := r.VerifyCard(context.Background(), contract.CardCheck{PAN: "4012888888881881", Expiry: expiry(t, "3001"), Code: code})
	if res.Kind != outcome.Verified || card.ID != "C202605220001" || card.CardholderNo != "U202605220001" {
		t.Fatalf("card check: %v %+v", res, card)
	}
	if !code.Wiped() {
		t.Fatal("security code not wiped after the check")
	}
	pin := secret.PINFromString("482915")
	res = r.SetFirstPIN(context.Background(), contract.FirstSetup{Card: card, PIN: pin})
	if res.Kind != outcome.Changed || res.Host != outcome.KeySecure {
		t.Fatalf("first setup: %v", res)
	}
	if !pin.Wiped() || !sims.KeySecure.PINIs("C202605220001", "482915") {
		t.Fatal("PIN not set on KeySecure or not wiped")
	}
}

func TestFirstSetupWithCardPassedByAnAgent(t *testing.T) {
	r, sims := newRouter(t, true)
	card, res := r.VerifyCard(context.Background(), contract.CardCheck{CardNo: "C202605220001", CardholderNo: "U202605220001",
		Code: secret.NewSecurityCode([]byte("731"))})
	if res.Kind != outcome.Verified {
		t.Fatalf("%v", res)
	}
	res = r.SetFirstPIN(context.Background(), contract.FirstSetup{Card: card, PIN: secret.PINFromString("730164")})
	if res.Kind != outcome.Changed || !sims.KeySecure.PINIs("C202605220001", "730164") {
		t.Fatalf("%v", res)
	}
}

func TestCardCheckRefusals(t *testing.T) {
	cases := []struct {
		name, pan, exp, code string
		want                 outcome.Kind
	}{
		{"wrong security code", "4012888888881881", "3001", "732", outcome.DetailsMismatch},
		{"wrong expiry", "4012888888881881", "3002", "731", outcome.DetailsMismatch},
		{"virtual card (no physical card with those last four)", "5105105105105100", "2907", "402", outcome.DetailsMismatch},
		{"not activated, after the code matched", "4761739001010119", "2911", "958", outcome.NotEligible},
		{"unknown to KeySecure", "4111111111111111", "2812", "123", outcome.DetailsMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, sims := newRouter(t, true)
			card, res := r.VerifyCard(context.Background(), contract.CardCheck{PAN: secret.PAN(c.pan), Expiry: expiry(t, c.exp), Code: secret.NewSecurityCode([]byte(c.code))})
			if res.Kind != c.want || card.ID != "" || sims.KeySecure.PINSets() != 0 {
				t.Fatalf("%v %+v", res, card)
			}
		})
	}
}

func TestFirstPINIsNeverSetOnAnUnverifiedCard(t *testing.T) {
	r, sims := newRouter(t, true)
	pin := secret.PINFromString("482915")
	res := r.SetFirstPIN(context.Background(), contract.FirstSetup{Card: contract.VerifiedCard{ID: "C202605220001"}, PIN: pin})
	if res.Kind == outcome.Changed || sims.KeySecure.PINSets() != 0 || !pin.Wiped() {
		t.Fatalf("%v", res)
	}
}

func TestFirstSetupWithoutKeySecure(t *testing.T) {
	r, _ := newRouter(t, false)
	if r.FirstSetupAvailable() {
		t.Fatal("first setup offered without KeySecure")
	}
	code := secret.NewSecurityCode([]byte("731"))
	if _, res := r.VerifyCard(context.Background(), contract.CardCheck{PAN: "4012888888881881", Code: code}); res.Kind != outcome.NotEligible || !code.Wiped() {
		t.Fatalf("%v", res)
	}
	pin := secret.PINFromString("482915")
	if res := r.SetFirstPIN(context.Background(), contract.FirstSetup{Card: contract.VerifiedCard{ID: "C1", CardholderNo: "U1"}, PIN: pin}); res.Kind != outcome.NotEligible || !pin.Wiped() {
		t.Fatalf("%v", res)
	}
}

// sealedChange is a change as the flow sends it: both PINs sealed by the
// router (and wiped there) before the request.
func sealedChange(t *testing.T, r *pinsvc.Router, pan, yymm, seq, oldPIN, newPIN string) contract.Change {
	t.Helper()
	old, new := secret.PINFromString(oldPIN), secret.PINFromString(newPIN)
	o, err := r.SealPIN(secret.PAN(pan), old, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.SealPIN(secret.PAN(pan), new, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !old.Wiped() || !new.Wiped() {
		t.Fatal("PINs not wiped once sealed")
	}
	return contract.Change{PAN: secret.PAN(pan), Expiry: expiry(t, yymm), SequenceNumber: seq, OldSealed: &o, NewSealed: &n}
}
