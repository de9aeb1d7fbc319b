package pinsvc_test

import (
	"context"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc"
	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
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
	old, new := secret.PINFromString("7392"), secret.PINFromString("4829")
	res := r.ChangePIN(context.Background(), pinsvc.Change{PAN: "4111111111111111", Expiry: expiry(t, "2812"), SequenceNumber: "01", Old: old, New: new})
	if res.Kind != outcome.Changed || res.Host != outcome.CardHost {
		t.Fatalf("%v", res)
	}
	if !old.Wiped() || !new.Wiped() {
		t.Fatal("PINs not wiped")
	}
	if !sims.CardHost.PINIs("4111111111111111", "4829") || sims.KeySecure.PINSets() != 0 {
		t.Fatal("wrong host changed")
	}
}

func TestCardWithoutPINIsOfferedFirstSetup(t *testing.T) {
	r, sims := newRouter(t, true)
	res := r.ChangePIN(context.Background(), pinsvc.Change{PAN: "4012888888881881", Expiry: expiry(t, "3001"),
		Old: secret.PINFromString("1357"), New: secret.PINFromString("4829")})
	if res.Kind != outcome.NoPINYet {
		t.Fatalf("%v", res)
	}
	pin := secret.PINFromString("482915")
	res = r.SetFirstPIN(context.Background(), pinsvc.FirstSetup{PAN: "4012888888881881", Expiry: expiry(t, "3001"), PIN: pin})
	if res.Kind != outcome.Changed || res.Host != outcome.KeySecure {
		t.Fatalf("first setup: %v", res)
	}
	if !pin.Wiped() || !sims.KeySecure.PINIs("C202605220001", "482915") {
		t.Fatal("PIN not set on KeySecure or not wiped")
	}
}

func TestFirstSetupWithCardPassedByAnAgent(t *testing.T) {
	r, sims := newRouter(t, true)
	res := r.SetFirstPIN(context.Background(), pinsvc.FirstSetup{CardNo: "C202605220001", CardholderNo: "U202605220001",
		PIN: secret.PINFromString("730164")})
	if res.Kind != outcome.Changed || !sims.KeySecure.PINIs("C202605220001", "730164") {
		t.Fatalf("%v", res)
	}
}

func TestFirstSetupRefusals(t *testing.T) {
	cases := []struct {
		name, pan, exp string
		want           outcome.Kind
	}{
		{"virtual card", "5105105105105100", "2907", outcome.NotEligible},
		{"not activated", "4761739001010119", "2911", outcome.NotEligible},
		{"unknown to KeySecure", "4111111111111111", "2812", outcome.NotEligible},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, sims := newRouter(t, true)
			res := r.SetFirstPIN(context.Background(), pinsvc.FirstSetup{PAN: secret.PAN(c.pan), Expiry: expiry(t, c.exp), PIN: secret.PINFromString("482915")})
			if res.Kind != c.want || sims.KeySecure.PINSets() != 0 {
				t.Fatalf("%v", res)
			}
		})
	}
}

func TestFirstSetupWithoutKeySecure(t *testing.T) {
	r, _ := newRouter(t, false)
	if r.FirstSetupAvailable() {
		t.Fatal("first setup offered without KeySecure")
	}
	pin := secret.PINFromString("482915")
	if res := r.SetFirstPIN(context.Background(), pinsvc.FirstSetup{PAN: "4012888888881881", PIN: pin}); res.Kind != outcome.NotEligible || !pin.Wiped() {
		t.Fatalf("%v", res)
	}
}
