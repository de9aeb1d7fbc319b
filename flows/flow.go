// Package flows is the PIN line's call flow: what to say, what to collect,
// what to check, and what to do with the answer, written against the small
// Channel interface so it never sees ARI. internal/line's channel implements
// it over an *ivr.Call (Asterisk); tests implement it over a scripted
// keypad.
//
// One call: language menu (when several languages are configured and none
// was passed in), main menu (1 change, 2 first PIN of a new card, 0 agent,
// 9 repeat), card number, expiry, then for a change the current PIN, or for
// a first setup the card's security code (checked with the card platform
// before any PIN is typed), new PIN, new PIN again, submit, outcome, then
// goodbye or back to the agent who transferred the call in. Every step has a
// bounded number of tries and says why an entry was refused.
package flows

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ivr-pin/ivr-pin/ivr/keypad"
	"github.com/ivr-pin/ivr-pin/pinsvc/contract"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// Target is a place in the dialplan.
type Target struct {
	Context, Extension string
	Priority           int
}

// Channel is what the flow needs from the telephone channel a call is on
// (internal/line adapts an ivr.Call to it; tests script one).
type Channel interface {
	// Play plays items in order; a key press stops it (barge-in) and the key
	// stays typed ahead for the next Collect.
	Play(ctx context.Context, items ...prompts.Item) error
	// Say plays items to the end whatever is pressed (typed-ahead keys are
	// dropped first): outcomes and goodbyes must be heard.
	Say(ctx context.Context, items ...prompts.Item) error
	// Collect reads one entry from the keypad.
	Collect(ctx context.Context, spec keypad.Spec) (keypad.Entry, error)
	// Flush drops typed-ahead keys.
	Flush()
	// SetLanguage switches the language prompts are played in.
	SetLanguage(ctx context.Context, lang string) error
	// Continue sends the channel back to the dialplan.
	Continue(ctx context.Context, t Target) error
	// Hangup ends the call.
	Hangup(ctx context.Context) error
}

// Incoming is what is known about a call as it comes in: its channel and
// caller ids, and what a transfer passed.
type Incoming struct {
	ChannelID string
	CallerID  string
	Language  string // passed in by a transfer; "" means ask or use the default
	Mode      Mode   // passed in by a transfer; "" means ask
	// A transfer may pre-identify the card, by PAN (with expiry) or by
	// KeySecure's card_no and cardholder_no.
	PAN                  secret.PAN
	Expiry               string
	CardNo, CardholderNo string
	// SequenceNumber is the card's sequence number when a transfer knows it.
	SequenceNumber string
	// Return is where a transferred call goes back to; nil hangs up.
	Return *Target
	// Unsafe says why what the call arrived with was refused (card
	// details in the Stasis arguments): nothing of it is used, and the
	// call goes to the agents (or hears "not available").
	Unsafe string
}

// Mode is what the caller came to do.
type Mode string

// The modes.
const (
	ModeChange Mode = "change"
	ModeSetup  Mode = "setup"
	ModeAgent  Mode = "agent"
)

// Limiter bounds attempts per caller and per card (internal/limits).
type Limiter interface {
	// Check fails when the caller or the card (none yet: Card{}) is locked
	// out.
	Check(ctx context.Context, callerID string, card Card) error
	// Record counts one attempt, checking and counting at once (no two
	// calls pass the limit together), and fails past the limit.
	Record(ctx context.Context, callerID string, card Card) error
	// IsLimited tells a limit from a store failure.
	IsLimited(err error) bool
}

// SetupMarks remember which cards had their first PIN set through the line,
// so a card's first setup happens once (internal/limits). card is the card
// platform's own identifier of the card (contract.VerifiedCard.ID).
type SetupMarks interface {
	// SetupDone reports whether the card's first PIN was set (or claimed).
	SetupDone(ctx context.Context, card string) (bool, error)
	// ClaimSetup marks the card before its first PIN is sent; false when it
	// was already marked (another call got there first).
	ClaimSetup(ctx context.Context, card string) (bool, error)
	// ReleaseSetup removes a claim whose set certainly did not happen.
	ReleaseSetup(ctx context.Context, card string) error
}

// Card is what an attempt counts against: the card's PAN when typed or
// passed in, else KeySecure's card_no an agent passed (both empty: no card
// is known yet).
type Card struct {
	PAN    secret.PAN
	CardNo string
}

// LineGuard counts failing card-detail checks across the whole line and
// refuses calls while too many have failed lately (internal/limits).
type LineGuard interface {
	// On reports whether the guard refuses new calls.
	On(ctx context.Context) (bool, error)
	// Reserve takes a request's place in the count before it is sent,
	// waiting while places held by requests in flight fill it (false: the
	// guard is on, the request must not go). settle ends the place with
	// the answer: failed keeps it as a failing check, else it is given
	// back.
	Reserve(ctx context.Context) (settle func(ctx context.Context, failed bool) error, ok bool, err error)
}

// Config holds the flow's settings.
type Config struct {
	// LineGuard, when set, guards against guessing spread over many caller
	// ids.
	LineGuard LineGuard
	// Limiter bounds attempts; nil means no limits.
	Limiter Limiter
	// Marks make a card's first setup happen once; nil means no marks (the
	// console's demo). serve always sets them.
	Marks             SetupMarks
	Languages         []string // first is the default
	FirstDigitTimeout time.Duration
	InterDigitTimeout time.Duration
	MaxTries          int
	Agent             *Target // nil: no agent option
	// AgentOnFailure is what a caller whose call cannot finish is offered
	// when Agent is set (IVRPIN_AGENT_ON_FAILURE); "" means AgentOffer.
	AgentOnFailure AgentOnFailure
	// ExpiryOrder is the order the caller types the expiry in; "" means
	// as printed (policy.MMYY).
	ExpiryOrder      policy.ExpiryOrder
	HostWaitAnnounce time.Duration // say "still working" after this long
	Now              func() time.Time
}

// AgentOnFailure says what happens when a call cannot finish and an agent
// is configured.
type AgentOnFailure string

// The choices.
const (
	// AgentOffer says "to speak to an agent, press 0 now" and waits as
	// long as for any first digit.
	AgentOffer AgentOnFailure = "offer"
	// AgentTransfer sends the caller to the agents at once.
	AgentTransfer AgentOnFailure = "transfer"
	// AgentNever ends the call with its own words, as without an agent.
	AgentNever AgentOnFailure = "never"
)

// Steps are the steps whose refusals are counted (Retry.Step).
var Steps = []string{"language", "menu", "card", "expiry", "current_pin", "security_code", "card_check", "new_pin", "confirm_pin", "host_answer"}

// Reason is why an entry or a step was refused, as the caller hears it
// (each has a prompt) and the audit records it: a policy.Reason, or one of
// the flow's own below.
type Reason string

// The flow's own reasons.
const (
	ReasonNoInput         Reason = "no_input"
	ReasonCleared         Reason = "cleared"
	ReasonInvalidChoice   Reason = "invalid_choice"
	ReasonDetailsMismatch Reason = "details_mismatch" // a card check failed: never which detail
	// reasonRepeat and reasonNoAgent ask a menu again without counting a
	// try.
	reasonRepeat  Reason = "repeat"
	reasonNoAgent Reason = "no_agent"
)

// reasonOf is the reason a policy error gives.
func reasonOf(err error) Reason { return Reason(policy.ReasonOf(err)) }

// Retry records one refused entry, for metrics and the audit record.
type Retry struct {
	Step   string `json:"step"`
	Reason Reason `json:"reason"`
}

// Result is what a call came to. It holds no PIN and only a masked PAN.
type Result struct {
	Path     Mode
	Language string
	// LangFallback is a language asked for (a transfer's lang, a channel
	// variable, the console's --lang) that the line does not have: the
	// call played Language, the default, instead.
	LangFallback string
	MaskedPAN    string
	Outcome      *outcome.Result // nil when nothing was submitted
	End          string          // how it ended: the audit's end (docs/operations.md lists them)
	// AgentReason says why the call went to the agents: "caller_choice"
	// from the menu, else what it could not finish (an End such as
	// too_many_tries or limited, or the outcome's kind).
	AgentReason string
	// MsgIDs are the references of every request sent that could change a
	// PIN (the audit closes each attempt with them).
	MsgIDs   []string
	Retries  []Retry
	Returned bool // continued back to the dialplan
}

// Flow runs calls. It is safe for concurrent use: all per-call state lives in
// Run's frame.
type Flow struct {
	cfg     Config
	service contract.Service
}

// New makes a flow; zero settings take the documented defaults.
func New(cfg Config, svc contract.Service) *Flow {
	if len(cfg.Languages) == 0 {
		cfg.Languages = []string{"en"}
	}
	if cfg.FirstDigitTimeout <= 0 {
		cfg.FirstDigitTimeout = 8 * time.Second
	}
	if cfg.InterDigitTimeout <= 0 {
		cfg.InterDigitTimeout = 5 * time.Second
	}
	if cfg.MaxTries <= 0 {
		cfg.MaxTries = 3
	}
	if cfg.HostWaitAnnounce <= 0 {
		cfg.HostWaitAnnounce = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.AgentOnFailure = cmp.Or(cfg.AgentOnFailure, AgentOffer)
	cfg.ExpiryOrder = cmp.Or(cfg.ExpiryOrder, policy.MMYY)
	return &Flow{cfg: cfg, service: svc}
}

// errTooManyTries ends the call politely.
var errTooManyTries = errors.New("too many tries")

// errAgent ends the flow with a transfer to an agent.
var errAgent = errors.New("transferred to an agent")

// errLimited and errLimitStore end the call when a limit is reached or the
// attempt store cannot be asked (the line fails closed).
var (
	errLimited    = errors.New("attempt limit reached")
	errLimitStore = errors.New("attempt store unavailable")
	// errLineGuard: too many card checks failed across the line lately.
	errLineGuard = errors.New("line guard on")
	// errSeal: the PIN block could not be made (the zone PIN key's token
	// failed): nothing is sent, the caller hears "not available".
	errSeal = errors.New("PIN block not made")
	// errUnsafeArguments: the call arrived with card details where they
	// are logged (Incoming.Unsafe): nothing of them is used.
	errUnsafeArguments = errors.New("card details in the call's arguments")
)

// session is one call's state as the flow runs it.
type session struct {
	f      *Flow
	c      Channel
	in     Incoming
	res    *Result
	pan    secret.PAN
	expiry policy.Expiry
	// cardPassedIn: the card came with a transfer, not from the keypad.
	cardPassedIn bool
	// sealSince is when the call sealed its first PIN (zero before).
	sealSince time.Time
}

// unfinished are the ends of a call that could not finish for a reason a
// person might still solve (an agent may be offered): the audit's end, and
// what the caller hears.
var unfinished = []struct {
	err error
	end string
	say prompts.ID
}{
	{errTooManyTries, "too_many_tries", prompts.TooManyTries},
	{errLimited, "limited", prompts.LimitReached},
	{errLimitStore, "limit_store_unavailable", prompts.ResultUnavailable},
	{errLineGuard, "line_guard", prompts.ResultUnavailable},
	{errSeal, "pin_key_unavailable", prompts.ResultUnavailable},
	{errUnsafeArguments, "unsafe_arguments", prompts.ResultUnavailable},
}

// Run takes one call from arrival to hang-up or return to the dialplan.
func (f *Flow) Run(ctx context.Context, c Channel, in Incoming) Result {
	res := Result{Language: in.Language}
	k := &session{f: f, c: c, in: in, res: &res}
	err := k.run(ctx)
	// failed is what could not be finished, when the call ends on a
	// failure a person might still solve ("" on success or hang-up).
	failed := ""
	switch {
	case err == nil:
		res.End = cmp.Or(res.End, "outcome")
		if res.Outcome != nil && res.Outcome.Kind != outcome.Changed {
			failed = string(res.Outcome.Kind)
		}
	case errors.Is(err, keypad.ErrHungUp), errors.Is(err, context.Canceled):
		res.End = "hangup"
		return res
	case errors.Is(err, context.DeadlineExceeded):
		res.End = "timeout"
	case errors.Is(err, errAgent):
		res.End = "agent"
		return res
	default:
		res.End = "error"
		for _, e := range unfinished {
			if errors.Is(err, e.err) {
				res.End, failed = e.end, e.end
				_ = c.Say(ctx, prompts.P(e.say))
				break
			}
		}
	}
	if failed != "" && k.toAgent(ctx, failed) {
		return res
	}
	k.finish(ctx)
	return res
}

// toAgent offers a caller whose call could not finish to an agent, or
// sends them at once, as AgentOnFailure says; true when the call went to
// the agents. A caller an agent transferred in goes back to that agent
// anyway (finish), and a call past its deadline is not held longer.
func (k *session) toAgent(ctx context.Context, why string) bool {
	cfg := k.f.cfg
	if cfg.Agent == nil || cfg.AgentOnFailure == AgentNever || k.in.Return != nil || ctx.Err() != nil {
		return false
	}
	if cfg.AgentOnFailure == AgentOffer {
		k.c.Flush()
		if err := k.c.Play(ctx, prompts.P(prompts.AgentOffer)); err != nil {
			return false
		}
		// As long as any first digit is waited for (IVRPIN_FIRST_DIGIT_TIMEOUT).
		e, err := k.c.Collect(ctx, k.menuSpec())
		if err != nil || string(e.Digits) != "0" {
			return false
		}
	}
	if k.agent(ctx) != errAgent {
		return false
	}
	k.res.End, k.res.AgentReason = "agent", why
	return true
}

// finish says goodbye, or returns a transferred caller to the agent.
func (k *session) finish(ctx context.Context) {
	// Leave even when the call's deadline passed: a short grace context.
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	if k.in.Return != nil {
		_ = k.c.Say(ctx, prompts.P(prompts.ReturningToAgent))
		if k.c.Continue(ctx, *k.in.Return) == nil {
			k.res.Returned = true
			return
		}
	}
	_ = k.c.Say(ctx, prompts.P(prompts.Goodbye))
	_ = k.c.Hangup(ctx)
}

func (k *session) run(ctx context.Context) error {
	if k.in.Unsafe != "" {
		return errUnsafeArguments
	}
	if err := k.language(ctx); err != nil {
		return err
	}
	if err := k.c.Play(ctx, prompts.P(prompts.Welcome)); err != nil {
		return err
	}
	if err := k.limit(ctx, false, Card{}); err != nil {
		return err
	}
	if g := k.f.cfg.LineGuard; g != nil {
		on, err := g.On(ctx)
		if err != nil {
			return errLimitStore
		}
		if on {
			return errLineGuard
		}
	}
	mode := k.in.Mode
	if mode == "" {
		var err error
		if mode, err = k.menu(ctx); err != nil {
			return err
		}
	}
	if mode == ModeSetup && !k.f.service.FirstSetupAvailable() {
		mode = ModeChange
	}
	k.res.Path = mode
	switch mode {
	case ModeAgent:
		k.res.AgentReason = "caller_choice"
		return k.agent(ctx)
	case ModeSetup:
		return k.setup(ctx)
	}
	return k.change(ctx)
}

func (k *session) language(ctx context.Context) error {
	langs := k.f.cfg.Languages
	lang := k.in.Language
	if lang != "" && !slices.Contains(langs, lang) {
		// Asked for by a transfer or a channel variable, but not one of
		// the line's: the default plays, and the record says so.
		k.res.LangFallback, lang = lang, langs[0]
	}
	if lang == "" && len(langs) == 1 {
		lang = langs[0]
	}
	if lang == "" {
		items := make([]prompts.Item, 0, 2*len(langs))
		for i, l := range langs {
			items = append(items, prompts.PIn(prompts.LanguageChoice, l))
			items = append(items, prompts.Digits(strconv.Itoa(i+1), l)...)
		}
		err := k.choose(ctx, "language", items, func(key string) Reason {
			n := 0
			if len(key) == 1 {
				n = int(key[0] - '0')
			}
			if n < 1 || n > len(langs) {
				return ReasonInvalidChoice
			}
			lang = langs[n-1]
			return ""
		})
		if err != nil {
			return err
		}
	}
	k.res.Language = lang
	return k.c.SetLanguage(ctx, lang)
}

// choose plays a menu's items and takes one key, which pick answers: ""
// when it is a choice, else why not (bounded tries, as any step).
func (k *session) choose(ctx context.Context, step string, items []prompts.Item, pick func(key string) Reason) error {
	return k.tries(ctx, step, func() (Reason, error) {
		if err := k.c.Play(ctx, items...); err != nil {
			return "", err
		}
		e, err := k.c.Collect(ctx, k.menuSpec())
		if err != nil || e.End == keypad.EndNoInput {
			return ReasonNoInput, err
		}
		return pick(string(e.Digits)), nil
	})
}

func (k *session) menuSpec() keypad.Spec {
	return keypad.Spec{Max: 1, FirstDigitTimeout: k.f.cfg.FirstDigitTimeout, InterDigitTimeout: k.f.cfg.InterDigitTimeout}
}

func (k *session) menu(ctx context.Context) (Mode, error) {
	var mode Mode
	// The menu offers only what this line can do.
	items := []prompts.Item{prompts.P(prompts.MenuChange)}
	if k.f.service.FirstSetupAvailable() {
		items = append(items, prompts.P(prompts.MenuSetup))
	}
	if k.f.cfg.Agent != nil {
		items = append(items, prompts.P(prompts.MenuAgent))
	}
	items = append(items, prompts.P(prompts.MenuRepeat))
	err := k.choose(ctx, "menu", items, func(key string) Reason {
		switch key {
		case "1":
			mode = ModeChange
		case "2":
			if !k.f.service.FirstSetupAvailable() {
				return ReasonInvalidChoice
			}
			mode = ModeSetup
		case "0":
			if k.f.cfg.Agent == nil {
				// Not a caller error: say so and offer the menu again, untried.
				return reasonNoAgent
			}
			mode = ModeAgent
		case "9":
			return reasonRepeat
		default:
			return ReasonInvalidChoice
		}
		return ""
	})
	return mode, err
}

func (k *session) agent(ctx context.Context) error {
	if err := k.c.Say(ctx, prompts.P(prompts.TransferAgent)); err != nil {
		return err
	}
	if err := k.c.Continue(ctx, *k.f.cfg.Agent); err != nil {
		return err
	}
	return errAgent
}

// tries runs one step until it succeeds (reason ""), saying each refusal's
// reason, at most MaxTries times. "repeat" and "no_agent" do not count.
func (k *session) tries(ctx context.Context, step string, attempt func() (Reason, error)) error {
	for n := 0; n < k.f.cfg.MaxTries; {
		reason, err := attempt()
		if err != nil {
			return err
		}
		if reason == "" {
			return nil
		}
		switch reason {
		case reasonRepeat:
			continue
		case reasonNoAgent:
			if err := k.c.Say(ctx, prompts.P(prompts.NoAgent)); err != nil {
				return err
			}
			continue
		}
		n++
		k.res.Retries = append(k.res.Retries, Retry{Step: step, Reason: reason})
		k.c.Flush()
		say := []prompts.Item{prompts.P(reasonPrompt(reason))}
		if n < k.f.cfg.MaxTries {
			say = append(say, prompts.P(prompts.TryAgain))
		}
		if err := k.c.Play(ctx, say...); err != nil {
			return err
		}
	}
	return errTooManyTries
}

func reasonPrompt(reason Reason) prompts.ID {
	if id, ok := reasonPrompts[reason]; ok {
		return id
	}
	return prompts.InvalidChoice
}

// reasonPrompts says each refusal's reason: every policy.Reason a step can
// give (a test holds it to the policy's list) and the flow's own.
var reasonPrompts = map[Reason]prompts.ID{
	Reason(policy.ReasonIncomplete):      prompts.ReasonIncomplete,
	Reason(policy.ReasonTooLong):         prompts.ReasonTooLong,
	Reason(policy.ReasonNotValidCard):    prompts.ReasonNotValid,
	Reason(policy.ReasonNotDigits):       prompts.ReasonNotValid,
	Reason(policy.ReasonBadDate):         prompts.ReasonBadDate,
	Reason(policy.ReasonExpired):         prompts.ReasonExpired,
	Reason(policy.ReasonPINTooShort):     prompts.ReasonPINTooShort,
	Reason(policy.ReasonPINTooLong):      prompts.ReasonPINTooLong,
	Reason(policy.ReasonPINSameDigits):   prompts.ReasonPINSameDigits,
	Reason(policy.ReasonPINSequence):     prompts.ReasonPINSequence,
	Reason(policy.ReasonPINCommon):       prompts.ReasonPINCommon,
	Reason(policy.ReasonPINCardDigits):   prompts.ReasonPINCardDigits,
	Reason(policy.ReasonPINExpiryDigits): prompts.ReasonPINExpiry,
	Reason(policy.ReasonPINRuns):         prompts.ReasonPINRuns,
	Reason(policy.ReasonPINSameAsOld):    prompts.ReasonPINSame,
	Reason(policy.ReasonPINMismatch):     prompts.ReasonPINMismatch,
	ReasonDetailsMismatch:                prompts.ReasonDetailsMismatch,
	ReasonNoInput:                        prompts.NoInput,
	ReasonCleared:                        prompts.EntryCleared,
	ReasonInvalidChoice:                  prompts.InvalidChoice,
}

// ParseTarget reads "context,extension,priority" (IVRPIN_AGENT_TRANSFER);
// anything else is nil.
func ParseTarget(s string) *Target {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return nil
	}
	prio, err := strconv.Atoi(strings.TrimSpace(parts[2]))
	ctx, ext := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
	if err != nil || prio < 1 || ctx == "" || ext == "" {
		return nil
	}
	return &Target{Context: ctx, Extension: ext, Priority: prio}
}

// limit checks (record false) or counts (record true) an attempt for the
// caller and the card, when a limiter is configured.
func (k *session) limit(ctx context.Context, record bool, card Card) error {
	l := k.f.cfg.Limiter
	if l == nil {
		return nil
	}
	var err error
	if record {
		err = l.Record(ctx, k.in.CallerID, card)
	} else {
		err = l.Check(ctx, k.in.CallerID, card)
	}
	switch {
	case err == nil:
		return nil
	case l.IsLimited(err):
		return errLimited
	}
	return errLimitStore
}
