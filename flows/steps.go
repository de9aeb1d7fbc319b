package flows

import (
	"context"
	"time"

	"github.com/ivr-pin/ivr-pin/flows/keypad"
	"github.com/ivr-pin/ivr-pin/pinsvc"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// entry plays prompt and collects one entry. A '*' clears the entry and asks
// again without counting a try; no input counts as a try.
func (k *call) entry(ctx context.Context, prompt []prompts.Item, max int) (keypad.Entry, string, error) {
	spec := keypad.Spec{Max: max, Terminator: true, FirstDigitTimeout: k.f.cfg.FirstDigitTimeout, InterDigitTimeout: k.f.cfg.InterDigitTimeout}
	for {
		if err := k.c.Play(ctx, prompt...); err != nil {
			return keypad.Entry{}, "", err
		}
		e, err := k.c.Collect(ctx, spec)
		if err != nil {
			return keypad.Entry{}, "", err
		}
		switch e.End {
		case keypad.EndCleared:
			if err := k.c.Play(ctx, prompts.P(prompts.EntryCleared)); err != nil {
				return keypad.Entry{}, "", err
			}
			continue
		case keypad.EndNoInput:
			return e, "no_input", nil
		}
		return e, "", nil
	}
}

// card collects and checks the card number, unless a transfer passed it.
func (k *call) card(ctx context.Context) error {
	if k.in.PAN != "" && policy.CheckPAN(k.in.PAN.Digits()) == nil {
		k.pan = k.in.PAN
	} else {
		err := k.tries(ctx, "card", func() (string, error) {
			e, reason, err := k.entry(ctx, []prompts.Item{prompts.P(prompts.EnterCard)}, policy.MaxPANLength)
			if err != nil || reason != "" {
				return reason, err
			}
			pan := string(e.Digits)
			secret.Zero(e.Digits)
			if err := policy.CheckPAN(pan); err != nil {
				// A refused card number counts against the caller: the line
				// must not help anyone search for valid numbers.
				if lerr := k.limit(ctx, true, ""); lerr != nil {
					return "", lerr
				}
				return string(policy.ReasonOf(err)), nil
			}
			k.pan = secret.PAN(pan)
			return "", nil
		})
		if err != nil {
			return err
		}
	}
	k.res.MaskedPAN = k.pan.Masked()
	return k.limit(ctx, false, k.pan)
}

// expiryStep collects YYMM, unless a transfer passed a valid one.
func (k *call) expiryStep(ctx context.Context) error {
	if k.in.Expiry != "" {
		if e, err := policy.ParseExpiry(k.in.Expiry, k.f.cfg.Now()); err == nil {
			k.expiry = e
			return nil
		}
	}
	return k.tries(ctx, "expiry", func() (string, error) {
		e, reason, err := k.entry(ctx, []prompts.Item{prompts.P(prompts.EnterExpiry)}, 4)
		if err != nil || reason != "" {
			return reason, err
		}
		exp, err := policy.ParseExpiry(string(e.Digits), k.f.cfg.Now())
		if err != nil {
			if lerr := k.limit(ctx, true, k.pan); lerr != nil {
				return "", lerr
			}
			return string(policy.ReasonOf(err)), nil
		}
		k.expiry = exp
		return "", nil
	})
}

// currentPIN collects the current PIN (checked only for length here; the
// host knows whether it is right).
func (k *call) currentPIN(ctx context.Context) (*secret.PIN, error) {
	var pin *secret.PIN
	entryPolicy := policy.PINPolicy{MinLength: 4, MaxLength: 12}
	err := k.tries(ctx, "current_pin", func() (string, error) {
		e, reason, err := k.entry(ctx, []prompts.Item{prompts.P(prompts.EnterCurrentPIN)}, entryPolicy.MaxLength)
		if err != nil || reason != "" {
			return reason, err
		}
		p := secret.NewPIN(e.Digits)
		if err := entryPolicy.CheckEntry(p); err != nil {
			p.Wipe()
			return string(policy.ReasonOf(err)), nil
		}
		pin = p
		return "", nil
	})
	return pin, err
}

// newPIN collects the new PIN twice under pol. A mismatch starts again from
// the first entry and counts as a try of the confirmation step.
func (k *call) newPIN(ctx context.Context, pol policy.PINPolicy, old *secret.PIN) (*secret.PIN, error) {
	rule := prompts.PINRule4to6
	if pol.MinLength == 6 && pol.MaxLength == 6 {
		rule = prompts.PINRule6
	}
	var result *secret.PIN
	err := k.tries(ctx, "confirm_pin", func() (string, error) {
		var first *secret.PIN
		err := k.tries(ctx, "new_pin", func() (string, error) {
			e, reason, err := k.entry(ctx, []prompts.Item{prompts.P(prompts.EnterNewPIN), prompts.P(rule)}, pol.MaxLength)
			if err != nil || reason != "" {
				return reason, err
			}
			p := secret.NewPIN(e.Digits)
			if err := pol.CheckNew(p, old); err != nil {
				p.Wipe()
				return string(policy.ReasonOf(err)), nil
			}
			first = p
			return "", nil
		})
		if err != nil {
			return "", err
		}
		e, reason, err := k.entry(ctx, []prompts.Item{prompts.P(prompts.ConfirmNewPIN)}, pol.MaxLength)
		if err != nil || reason != "" {
			first.Wipe()
			return reason, err
		}
		second := secret.NewPIN(e.Digits)
		defer second.Wipe()
		if err := policy.CheckConfirm(first, second); err != nil {
			first.Wipe()
			return string(policy.ReasonPINMismatch), nil
		}
		result = first
		return "", nil
	})
	return result, err
}

func (k *call) change(ctx context.Context) error {
	if err := k.card(ctx); err != nil {
		return err
	}
	if err := k.expiryStep(ctx); err != nil {
		return err
	}
	old, err := k.currentPIN(ctx)
	if err != nil {
		return err
	}
	defer old.Wipe()
	newPIN, err := k.newPIN(ctx, k.f.service.ChangePolicy(), old)
	if err != nil {
		return err
	}
	defer newPIN.Wipe()
	res, err := k.submit(ctx, func(ctx context.Context) outcome.Result {
		return k.f.service.ChangePIN(ctx, pinsvc.Change{PAN: k.pan, Expiry: k.expiry, Old: old, New: newPIN, TrackingID: trackingID(k.in.ChannelID)})
	})
	if err != nil {
		return err
	}
	if res.Kind == outcome.NoPINYet && k.f.service.FirstSetupAvailable() {
		return k.offerSetup(ctx)
	}
	return k.speak(ctx, res, prompts.ResultChanged)
}

// offerSetup follows a card host answer of "no PIN yet".
func (k *call) offerSetup(ctx context.Context) error {
	if err := k.c.Play(ctx, prompts.P(prompts.NoPINYetOffer)); err != nil {
		return err
	}
	e, err := k.c.Collect(ctx, k.menuSpec())
	if err != nil {
		return err
	}
	if string(e.Digits) != "1" {
		return k.c.Say(ctx, prompts.P(prompts.ResultNotEligible))
	}
	k.res.Path = ModeSetup
	return k.setupPIN(ctx)
}

func (k *call) setup(ctx context.Context) error {
	if k.in.CardNo == "" || k.in.CardholderNo == "" {
		if err := k.card(ctx); err != nil {
			return err
		}
		if err := k.expiryStep(ctx); err != nil {
			return err
		}
	}
	return k.setupPIN(ctx)
}

func (k *call) setupPIN(ctx context.Context) error {
	pin, err := k.newPIN(ctx, k.f.service.FirstSetupPolicy(), nil)
	if err != nil {
		return err
	}
	defer pin.Wipe()
	res, err := k.submit(ctx, func(ctx context.Context) outcome.Result {
		return k.f.service.SetFirstPIN(ctx, pinsvc.FirstSetup{PAN: k.pan, Expiry: k.expiry, CardNo: k.in.CardNo, CardholderNo: k.in.CardholderNo, PIN: pin})
	})
	if err != nil {
		return err
	}
	return k.speak(ctx, res, prompts.ResultSet)
}

// submit sends the host call, says "please wait" meanwhile, and while the
// call takes longer than HostWaitAnnounce tells the caller the line is alive. The host call
// runs on a context detached from the caller's hang-up: once sent, a PIN
// change is seen through so the outcome (and the audit record) is true.
func (k *call) submit(ctx context.Context, do func(context.Context) outcome.Result) (outcome.Result, error) {
	if ctx.Err() != nil {
		return outcome.Result{}, ctx.Err()
	}
	// Every submission counts, before it is sent.
	if err := k.limit(ctx, true, k.pan); err != nil {
		return outcome.Result{}, err
	}
	// The request goes out first; "please wait" plays while it is in flight.
	done := make(chan outcome.Result, 1)
	go func() { done <- do(context.WithoutCancel(ctx)) }()
	_ = k.c.Say(ctx, prompts.P(prompts.PleaseWait))
	tick := time.NewTicker(k.f.cfg.HostWaitAnnounce)
	defer tick.Stop()
	for {
		select {
		case res := <-done:
			k.res.Outcome = &res
			return res, nil
		case <-tick.C:
			// A hang-up here is noted, but the result is still awaited.
			_ = k.c.Say(ctx, prompts.P(prompts.StillWorking))
		}
	}
}

// speak says the outcome.
func (k *call) speak(ctx context.Context, res outcome.Result, success prompts.ID) error {
	id := map[outcome.Kind]prompts.ID{
		outcome.Changed:     success,
		outcome.WrongPIN:    prompts.ResultWrongPIN,
		outcome.NotEligible: prompts.ResultNotEligible,
		outcome.NoPINYet:    prompts.ResultNotEligible,
		outcome.WeakPIN:     prompts.ResultWeakPIN,
		outcome.Rejected:    prompts.ResultRejected,
		outcome.Unavailable: prompts.ResultUnavailable,
		outcome.Ambiguous:   prompts.ResultAmbiguous,
	}[res.Kind]
	if id == "" {
		id = prompts.ResultRejected
	}
	return k.c.Say(ctx, prompts.P(id))
}

// trackingID derives the card host's tracking_id (at most 15 characters)
// from the channel id, so the host's records point back to the call.
func trackingID(channelID string) string {
	if len(channelID) > 15 {
		return channelID[len(channelID)-15:]
	}
	return channelID
}
