package flows

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ivr-pin/ivr-pin/ivr/keypad"
	"github.com/ivr-pin/ivr-pin/pinsvc/contract"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// entry plays prompt and collects one entry. A '*' clears the entry and asks
// again without counting a try; no input counts as a try. With tooLong set,
// the entry's length varies: it ends on '#' (or a pause), and more than max
// digits refuse it whole with that reason, never cut to max (the rest would
// answer the next question).
func (k *session) entry(ctx context.Context, prompt []prompts.Item, max int, tooLong policy.Reason) (keypad.Entry, Reason, error) {
	spec := keypad.Spec{Max: max, Terminator: true, Overflow: tooLong != "", FirstDigitTimeout: k.f.cfg.FirstDigitTimeout, InterDigitTimeout: k.f.cfg.InterDigitTimeout}
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
			return e, ReasonNoInput, nil
		case keypad.EndTooLong:
			return e, Reason(tooLong), nil
		}
		return e, "", nil
	}
}

// card collects and checks the card number, unless a transfer passed it.
func (k *session) card(ctx context.Context) error {
	if k.in.PAN != "" && policy.CheckPAN(k.in.PAN.Digits()) == nil {
		k.pan, k.cardPassedIn = k.in.PAN, true
	} else {
		err := k.tries(ctx, "card", func() (Reason, error) {
			e, reason, err := k.entry(ctx, []prompts.Item{prompts.P(prompts.EnterCard)}, policy.MaxPANLength, policy.ReasonTooLong)
			if err != nil || reason != "" {
				return reason, err
			}
			pan := string(e.Digits)
			secret.Zero(e.Digits)
			if err := policy.CheckPAN(pan); err != nil {
				// A refused card number counts against the caller: the line
				// must not help anyone search for valid numbers.
				if lerr := k.limit(ctx, true, Card{}); lerr != nil {
					return "", lerr
				}
				return reasonOf(err), nil
			}
			k.pan = secret.PAN(pan)
			return "", nil
		})
		if err != nil {
			return err
		}
	}
	k.res.MaskedPAN = k.pan.Masked()
	return k.limit(ctx, false, Card{PAN: k.pan})
}

// expiryStep collects the expiry in the line's order (IVRPIN_EXPIRY_ORDER:
// as printed, MMYY, by default), unless a transfer passed a valid one (in
// the host's YYMM). The question starts with the card's last four digits,
// so a mistyped card number is heard before any PIN is typed.
func (k *session) expiryStep(ctx context.Context) error {
	if k.in.Expiry != "" {
		if e, err := policy.ParseExpiry(k.in.Expiry, k.f.cfg.Now()); err == nil {
			k.expiry = e
			return nil
		}
	}
	ask := []prompts.Item{}
	if d := k.pan.Digits(); len(d) >= 4 {
		ask = append(append(ask, prompts.P(prompts.CardEnding)), prompts.Digits(d[len(d)-4:], "")...)
	}
	if k.f.cfg.ExpiryOrder == policy.YYMM {
		ask = append(ask, prompts.P(prompts.EnterExpiryYYMM))
	} else {
		ask = append(ask, prompts.P(prompts.EnterExpiry))
	}
	return k.tries(ctx, "expiry", func() (Reason, error) {
		e, reason, err := k.entry(ctx, ask, 4, "")
		if err != nil || reason != "" {
			return reason, err
		}
		exp, err := policy.ParseExpiryAs(k.f.cfg.ExpiryOrder, string(e.Digits), k.f.cfg.Now())
		secret.Zero(e.Digits)
		if err != nil {
			if lerr := k.limit(ctx, true, Card{PAN: k.pan}); lerr != nil {
				return "", lerr
			}
			return reasonOf(err), nil
		}
		k.expiry = exp
		return "", nil
	})
}

// currentPIN collects the current PIN (checked only for length here; the
// host knows whether it is right).
func (k *session) currentPIN(ctx context.Context) (*secret.PIN, error) {
	var pin *secret.PIN
	entryPolicy := policy.PINPolicy{MinLength: 4, MaxLength: 12}
	err := k.tries(ctx, "current_pin", func() (Reason, error) {
		e, reason, err := k.entry(ctx, []prompts.Item{prompts.P(prompts.EnterCurrentPIN)}, entryPolicy.MaxLength, policy.ReasonPINTooLong)
		if err != nil || reason != "" {
			return reason, err
		}
		p := secret.NewPIN(e.Digits)
		if err := entryPolicy.CheckEntry(p); err != nil {
			p.Wipe()
			return reasonOf(err), nil
		}
		pin = p
		return "", nil
	})
	return pin, err
}

// pinRule says the policy as enforced: its lengths as configured ("must
// have 4 to 6 digits" or "must have 6 digits"), then the guidance of each
// kind of rule in policy.PINRules that applies.
func pinRule(pol policy.PINPolicy) []prompts.Item {
	items := []prompts.Item{prompts.P(prompts.PINRuleFrom), prompts.N(pol.MinLength, "")}
	if pol.MaxLength != pol.MinLength {
		items = append(items, prompts.P(prompts.PINRuleTo), prompts.N(pol.MaxLength, ""))
	}
	items = append(items, prompts.P(prompts.PINRuleDigits))
	for _, g := range pol.Guidance() {
		items = append(items, prompts.P(guidancePrompt[g]))
	}
	return items
}

// guidancePrompt says each kind of rule of policy.PINRules.
var guidancePrompt = map[policy.Guidance]prompts.ID{
	policy.GuideEasy: prompts.PINRuleEasy,
	policy.GuideRuns: prompts.PINRuleRuns,
}

// newPIN collects the new PIN twice under pol. A mismatch starts again from
// the first entry and counts as a try of the confirmation step.
func (k *session) newPIN(ctx context.Context, pol policy.PINPolicy, old *secret.PINDigest) (*secret.PIN, error) {
	rule := pinRule(pol)
	facts := policy.PINFacts{PAN: k.pan, Expiry: k.expiry, Current: old}
	var result *secret.PIN
	err := k.tries(ctx, "confirm_pin", func() (Reason, error) {
		var first *secret.PIN
		err := k.tries(ctx, "new_pin", func() (Reason, error) {
			e, reason, err := k.entry(ctx, append([]prompts.Item{prompts.P(prompts.EnterNewPIN)}, rule...), pol.MaxLength, policy.ReasonPINTooLong)
			if err != nil || reason != "" {
				return reason, err
			}
			p := secret.NewPIN(e.Digits)
			if err := pol.CheckNew(p, facts); err != nil {
				p.Wipe()
				return reasonOf(err), nil
			}
			first = p
			return "", nil
		})
		if err != nil {
			return "", err
		}
		e, reason, err := k.entry(ctx, []prompts.Item{prompts.P(prompts.ConfirmNewPIN)}, pol.MaxLength, policy.ReasonPINTooLong)
		if err != nil || reason != "" {
			first.Wipe()
			return reason, err
		}
		second := secret.NewPIN(e.Digits)
		defer second.Wipe()
		if err := policy.CheckConfirm(first, second); err != nil {
			first.Wipe()
			return Reason(policy.ReasonPINMismatch), nil
		}
		result = first
		return "", nil
	})
	return result, err
}

// change runs a PIN change: the card and its expiry, both PINs sealed,
// then the request, sent again after a refusal the caller can mend: within
// MaxTries, each sending counted against the limits and the line guard.
func (k *session) change(ctx context.Context) error {
	if err := k.cardAndExpiry(ctx); err != nil {
		return err
	}
	pins, err := k.sealedPINs(ctx)
	if err != nil {
		return err
	}
	var res outcome.Result
	var mend func() error
	err = k.tries(ctx, "host_answer", func() (Reason, error) {
		if mend != nil {
			if err := mend(); err != nil {
				return "", err
			}
			mend = nil
		}
		var err error
		res, err = k.submit(ctx, guardedAnswers, func(ctx context.Context) outcome.Result {
			return k.f.service.ChangePIN(ctx, contract.Change{PAN: k.pan, Expiry: k.expiry, SequenceNumber: k.in.SequenceNumber,
				OldSealed: &pins.current, NewSealed: &pins.next, TrackingID: trackingID(k.in.ChannelID), Origin: k.origin()})
		})
		if err != nil {
			return "", err
		}
		if mismatch(res.Kind) {
			// One answer and one next question for all four: which detail
			// was wrong, or that the card exists but has no PIN yet, is
			// not said, so a guesser cannot sort card numbers, expiry
			// dates and PINs (a new card's first PIN is menu option 2,
			// behind its security code).
			mend = func() error { return k.detailsAgain(ctx, &pins) }
			return ReasonDetailsMismatch, nil
		}
		return "", nil
	})
	if err != nil {
		return err
	}
	return k.speak(ctx, res, prompts.ResultChanged)
}

// mismatchAnswers are the card host's answers the caller hears as "the
// details do not match our records".
var mismatchAnswers = []outcome.Kind{outcome.WrongPIN, outcome.ExpiryMismatch, outcome.UnknownCard, outcome.NoPINYet}

// guardedAnswers count as failed checks against the line guard: every
// answer that tells a caller who has not proved the card's PIN something
// about it. "Not eligible" (a card not active, or blocked by its PIN tries)
// is said before the PIN is checked, so it counts too: probing for such
// cards costs a guesser the same as a miss (docs/operations.md).
var guardedAnswers = append(slices.Clone(mismatchAnswers), outcome.NotEligible)

func mismatch(k outcome.Kind) bool { return slices.Contains(mismatchAnswers, k) }

// detailsAgain asks for the card, its expiry and the current PIN once more
// after the host refused them; a different card number needs its new PIN
// again too (a PIN block is bound to its PAN). A card an agent passed in is
// the agent's to have got right: only the current PIN is asked again.
func (k *session) detailsAgain(ctx context.Context, pins *sealedPINs) error {
	if k.cardPassedIn {
		return k.currentPINAgain(ctx, pins)
	}
	before := k.pan
	k.in.PAN, k.in.Expiry = "", ""
	if err := k.cardAndExpiry(ctx); err != nil {
		return err
	}
	if k.pan != before {
		fresh, err := k.sealedPINs(ctx)
		if err != nil {
			return err
		}
		*pins = fresh
		return nil
	}
	return k.currentPINAgain(ctx, pins)
}

// cardAndExpiry collects the card number and its expiry (each skipped when
// a transfer passed it).
func (k *session) cardAndExpiry(ctx context.Context) error {
	if err := k.card(ctx); err != nil {
		return err
	}
	return k.expiryStep(ctx)
}

// sealedPINs is a change's two PINs, each sealed into its PIN block for
// the card: a retry sends the blocks again, never kept digits.
type sealedPINs struct{ current, next contract.SealedPIN }

// sealedPINs collects the current PIN and the new PIN twice, and seals
// both; their digits are wiped.
//
// Each PIN is in clear from its entry to its seal and no longer: the
// current PIN is sealed (and wiped) as soon as it is typed, and the new
// PIN's "not the current one" rule asks a digest of it (secret.PINDigest);
// the new PIN is sealed once both entries agree.
func (k *session) sealedPINs(ctx context.Context) (sealedPINs, error) {
	current, err := k.currentPIN(ctx)
	if err != nil {
		return sealedPINs{}, err
	}
	digest := secret.DigestPIN(current)
	defer digest.Wipe()
	var pins sealedPINs
	pins.current, err = k.seal(current)
	current.Wipe()
	if err != nil {
		return sealedPINs{}, err
	}
	next, err := k.newPIN(ctx, k.f.service.ChangePolicy(), digest)
	if err != nil {
		return sealedPINs{}, err
	}
	defer next.Wipe()
	if pins.next, err = k.seal(next); err != nil {
		return sealedPINs{}, err
	}
	return pins, nil
}

// currentPINAgain asks for the current PIN once more after the host
// refused it, and seals it in place of the old block.
func (k *session) currentPINAgain(ctx context.Context, pins *sealedPINs) error {
	again, err := k.currentPIN(ctx)
	if err != nil {
		return err
	}
	defer again.Wipe()
	pins.current, err = k.seal(again)
	return err
}

// seal makes pin into the card host's PIN block for the call's card and
// wipes it; a block that cannot be made (the zone PIN key's token failed)
// ends the call with nothing sent.
func (k *session) seal(pin *secret.PIN) (contract.SealedPIN, error) {
	// The call's first seal fixes the key its PIN blocks are made under
	// for the rest of the call (a rotation takes over between calls).
	if k.sealSince.IsZero() {
		k.sealSince = time.Now()
	}
	sealed, err := k.f.service.SealPIN(k.pan, pin, k.sealSince)
	if err != nil {
		return contract.SealedPIN{}, fmt.Errorf("%w: %w", errSeal, err)
	}
	return sealed, nil
}

func (k *session) setup(ctx context.Context) error {
	return k.firstSetup(ctx, k.in.CardNo == "")
}

// firstSetup proves the caller holds the card, then sets its first PIN
// once. askCard collects the card number and expiry (again on each retry);
// otherwise an agent named the card.
func (k *session) firstSetup(ctx context.Context, askCard bool) error {
	card, final, err := k.verifyCard(ctx, askCard)
	if err != nil {
		return err
	}
	if final != nil {
		return k.speak(ctx, *final, prompts.ResultSet)
	}
	return k.setupPIN(ctx, card)
}

// verifyCard runs the card check with bounded retries. A refusal other than
// a mismatch ends the step with that outcome (final).
func (k *session) verifyCard(ctx context.Context, askCard bool) (contract.VerifiedCard, *outcome.Result, error) {
	var card contract.VerifiedCard
	var final *outcome.Result
	err := k.tries(ctx, "card_check", func() (Reason, error) {
		if askCard {
			k.pan, k.expiry = "", policy.Expiry{}
			if err := k.card(ctx); err != nil {
				return "", err
			}
			if err := k.expiryStep(ctx); err != nil {
				return "", err
			}
		}
		code, err := k.securityCode(ctx)
		if err != nil {
			return "", err
		}
		defer code.Wipe()
		// Every check counts against the caller and the card before it is
		// sent, whatever it finds: the line must not help anyone guess a
		// security code or search for cards, and a caller past the limit
		// costs KeySecure nothing more.
		if err := k.limit(ctx, true, k.counted()); err != nil {
			return "", err
		}
		settle, err := k.reserve(ctx)
		if err != nil {
			return "", err
		}
		var v contract.VerifiedCard
		// The check runs on the call's context: a hang-up stops the search.
		res := k.await(ctx, ctx, func(ctx context.Context) outcome.Result {
			var r outcome.Result
			v, r = k.f.service.VerifyCard(ctx, contract.CardCheck{PAN: k.pan, Expiry: k.expiry,
				CardNo: k.in.CardNo, CardholderNo: k.in.CardholderNo, Code: code})
			return r
		})
		settle(res.Kind == outcome.DetailsMismatch || res.Kind == outcome.CannotVerify)
		if err := ctx.Err(); err != nil {
			return "", err
		}
		switch res.Kind {
		case outcome.Verified:
			card = v
			return "", nil
		case outcome.DetailsMismatch, outcome.CannotVerify:
			k.res.Outcome = &res
			// Every failed check sounds the same: details that differ, no
			// physical card with those last four digits, a card the
			// platform will not show, a search past its bound. Nobody
			// learns which cards exist. (The audit keeps which it was.)
			return ReasonDetailsMismatch, nil
		}
		final = &res
		k.res.Outcome = final
		return "", nil
	})
	return card, final, err
}

// securityCode collects the 3 digits from the back of the card. The entry
// ends on its length (a '#' after it is dropped, as after the expiry).
func (k *session) securityCode(ctx context.Context) (*secret.SecurityCode, error) {
	var code *secret.SecurityCode
	err := k.tries(ctx, "security_code", func() (Reason, error) {
		e, reason, err := k.entry(ctx, []prompts.Item{prompts.P(prompts.EnterSecurityCode)}, SecurityCodeLength, "")
		if err != nil || reason != "" {
			secret.Zero(e.Digits)
			return reason, err
		}
		if len(e.Digits) != SecurityCodeLength {
			secret.Zero(e.Digits)
			return Reason(policy.ReasonIncomplete), nil
		}
		code = secret.NewSecurityCode(e.Digits)
		return "", nil
	})
	return code, err
}

// SecurityCodeLength is the card security code's length (CVV2/CVC2).
const SecurityCodeLength = 3

// setupPIN sets the first PIN of a verified card, once: the card is
// checked against the marks before the caller types a PIN, and claimed
// atomically just before the set is sent, so two calls cannot both set it.
func (k *session) setupPIN(ctx context.Context, card contract.VerifiedCard) error {
	marks := k.f.cfg.Marks
	alreadySet := func() error {
		res := outcome.Result{Kind: outcome.AlreadySet, Host: outcome.KeySecure, Description: "first PIN already set through the line"}
		k.res.Outcome = &res
		return k.speak(ctx, res, prompts.ResultSet)
	}
	if marks != nil {
		done, err := marks.SetupDone(ctx, card.ID)
		if err != nil {
			return errLimitStore
		}
		if done {
			return alreadySet()
		}
	}
	pin, err := k.newPIN(ctx, k.f.service.FirstSetupPolicy(), nil)
	if err != nil {
		return err
	}
	defer pin.Wipe()
	keep := true
	if marks != nil {
		claimed, err := marks.ClaimSetup(ctx, card.ID)
		if err != nil {
			return errLimitStore
		}
		if !claimed {
			return alreadySet()
		}
		keep = false
		defer func() {
			if !keep {
				// The set certainly did not happen: the card may try again.
				_ = marks.ReleaseSetup(context.WithoutCancel(ctx), card.ID)
			}
		}()
	}
	// The card was proved (its security code): nothing here fails a check.
	res, err := k.submit(ctx, nil, func(ctx context.Context) outcome.Result {
		return k.f.service.SetFirstPIN(ctx, contract.FirstSetup{Card: card, PIN: pin, Origin: k.origin()})
	})
	if err != nil {
		return err
	}
	// An ambiguous answer keeps the mark: the PIN may have been set.
	keep = res.Kind == outcome.Changed || res.Kind == outcome.Ambiguous
	return k.speak(ctx, res, prompts.ResultSet)
}

// submit counts the attempt, then sends the host call on a context detached
// from the caller's hang-up: once sent, a PIN change is seen through so the
// outcome (and the audit record) is true.
func (k *session) submit(ctx context.Context, fails []outcome.Kind, do func(context.Context) outcome.Result) (outcome.Result, error) {
	if ctx.Err() != nil {
		return outcome.Result{}, ctx.Err()
	}
	// Every submission counts, before it is sent.
	if err := k.limit(ctx, true, k.counted()); err != nil {
		return outcome.Result{}, err
	}
	settle := func(bool) {}
	if len(fails) > 0 {
		var err error
		if settle, err = k.reserve(ctx); err != nil {
			return outcome.Result{}, err
		}
	}
	res := k.await(ctx, context.WithoutCancel(ctx), do)
	settle(slices.Contains(fails, res.Kind))
	k.res.Outcome = &res
	if res.MsgID != "" {
		k.res.MsgIDs = append(k.res.MsgIDs, res.MsgID)
	}
	return res, nil
}

// counted is the card this call's attempts count against: its PAN when
// typed or passed in, else the card_no an agent passed.
func (k *session) counted() Card { return Card{PAN: k.pan, CardNo: k.in.CardNo} }

// reserve takes this request's place in the line guard's count of failing
// checks (errLineGuard when the guard is on: the request is not sent);
// settle ends it with the answer: failed counts it, else the place is given
// back.
func (k *session) reserve(ctx context.Context) (settle func(failed bool), err error) {
	g := k.f.cfg.LineGuard
	if g == nil {
		return func(bool) {}, nil
	}
	end, ok, err := g.Reserve(ctx)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, errLimitStore
	case !ok:
		return nil, errLineGuard
	}
	// Settled even after a hang-up: the answer, not the caller, decides.
	// A store that cannot be reached leaves the place held until its hold
	// ends: counted as failing meanwhile, the safe side.
	return func(failed bool) { _ = end(context.WithoutCancel(ctx), failed) }, nil
}

// origin says which call a request comes from, for the audit.
func (k *session) origin() contract.Origin {
	o := contract.Origin{ChannelID: k.in.ChannelID, CallerID: k.in.CallerID}
	if k.pan != "" {
		o.MaskedPAN = k.pan.Masked()
	}
	return o
}

// await runs do on hostCtx while the caller hears "please wait" and, while
// the host takes longer than HostWaitAnnounce, that the line is alive. The
// request goes out first; the prompt plays while it is in flight.
func (k *session) await(ctx, hostCtx context.Context, do func(context.Context) outcome.Result) outcome.Result {
	done := make(chan outcome.Result, 1)
	go func() { done <- do(hostCtx) }()
	_ = k.c.Say(ctx, prompts.P(prompts.PleaseWait))
	tick := time.NewTicker(k.f.cfg.HostWaitAnnounce)
	defer tick.Stop()
	for {
		select {
		case res := <-done:
			return res
		case <-tick.C:
			// A hang-up here is noted, but the result is still awaited.
			_ = k.c.Say(ctx, prompts.P(prompts.StillWorking))
		}
	}
}

// speak says the outcome.
func (k *session) speak(ctx context.Context, res outcome.Result, success prompts.ID) error {
	id := map[outcome.Kind]prompts.ID{
		outcome.Changed:         success,
		outcome.WrongPIN:        prompts.ReasonDetailsMismatch,
		outcome.NotEligible:     prompts.ResultNotEligible,
		outcome.UnknownCard:     prompts.ReasonDetailsMismatch,
		outcome.ExpiryMismatch:  prompts.ReasonDetailsMismatch,
		outcome.NoPINYet:        prompts.ReasonDetailsMismatch,
		outcome.WeakPIN:         prompts.ResultWeakPIN,
		outcome.Rejected:        prompts.ResultRejected,
		outcome.Unavailable:     prompts.ResultUnavailable,
		outcome.Ambiguous:       prompts.ResultAmbiguous,
		outcome.DetailsMismatch: prompts.ReasonDetailsMismatch,
		outcome.CannotVerify:    prompts.ReasonDetailsMismatch,
		outcome.AlreadySet:      prompts.ResultAlreadySet,
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
