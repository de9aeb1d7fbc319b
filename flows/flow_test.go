package flows_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/internal/limits"
	"github.com/ivr-pin/ivr-pin/ivr/keypad"
	"github.com/ivr-pin/ivr-pin/pinsvc"
	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/contract"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/faults"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/keysecuresim"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// scripted is a Caller whose caller typed everything ahead. It records what
// was played and how the call ended.
type scripted struct {
	mu        sync.Mutex
	kp        *keypad.Keypad
	played    []prompts.ID
	lang      string
	continued *flows.Target
	hungUp    bool
	onPlay    func(prompts.ID)
}

func newScripted(keys string) *scripted {
	s := &scripted{kp: keypad.New()}
	for i := 0; i < len(keys); i++ {
		s.kp.Press(keys[i])
	}
	return s
}

func (s *scripted) Play(ctx context.Context, items ...prompts.Item) error {
	for _, it := range items {
		if it.Prompt != "" {
			s.mu.Lock()
			s.played = append(s.played, it.Prompt)
			s.mu.Unlock()
			if s.onPlay != nil {
				s.onPlay(it.Prompt)
			}
		}
	}
	return ctx.Err()
}
func (s *scripted) Say(ctx context.Context, items ...prompts.Item) error {
	return s.Play(ctx, items...)
}
func (s *scripted) Collect(ctx context.Context, spec keypad.Spec) (keypad.Entry, error) {
	return s.kp.Collect(ctx, spec)
}
func (s *scripted) Flush() {}
func (s *scripted) SetLanguage(_ context.Context, l string) error {
	s.lang = l
	return nil
}
func (s *scripted) Continue(_ context.Context, t flows.Target) error {
	s.continued = &t
	return nil
}
func (s *scripted) Hangup(context.Context) error {
	s.hungUp = true
	return nil
}

// sawAfter reports whether later was played after the last first.
func (s *scripted) sawAfter(first, later prompts.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := -1
	for i, p := range s.played {
		if p == first {
			at = i
		}
	}
	for _, p := range s.played[at+1:] {
		if p == later {
			return true
		}
	}
	return false
}

func (s *scripted) saw(id prompts.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.played {
		if p == id {
			return true
		}
	}
	return false
}

func newFlow(t *testing.T, mutate func(*flows.Config)) (*flows.Flow, *simrun.Running) {
	t.Helper()
	return newFlowWith(t, simrun.Options{}, mutate, nil)
}

// newFlowWith is newFlow with the simulators' options and the router's
// settings of a test's own.
func newFlowWith(t *testing.T, simOpts simrun.Options, mutate func(*flows.Config), router func(*pinsvc.Router)) (*flows.Flow, *simrun.Running) {
	t.Helper()
	sims, err := simrun.Start(simOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sims.Close)
	ch, _ := cardhost.New(sims.CardHostConfig())
	ks, _ := keysecure.New(sims.KeySecureConfig())
	cfg := flows.Config{Languages: []string{"en"}, FirstDigitTimeout: 100 * time.Millisecond, InterDigitTimeout: 100 * time.Millisecond, MaxTries: 3}
	if mutate != nil {
		mutate(&cfg)
	}
	r := &pinsvc.Router{CardHost: ch, KeySecure: ks}
	if router != nil {
		router(r)
	}
	return flows.New(cfg, r), sims
}

func TestScenarios(t *testing.T) {
	cases := []struct {
		name     string
		keys     string
		call     flows.Incoming
		end      string
		kind     outcome.Kind // "" means nothing submitted
		mustSay  []prompts.ID
		retries  int
		newPIN   string // the card host must hold it afterwards
		ksPINSet bool
	}{
		{name: "change succeeds", keys: "1" + "4111111111111111#" + "1228" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.PleaseWait, prompts.ResultChanged, prompts.Goodbye}, newPIN: "4829"},
		{name: "hash after expiry is ignored", keys: "1" + "4111111111111111#" + "1228#" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, newPIN: "4829"},
		{name: "first setup through KeySecure", keys: "2" + "4012888888881881#" + "0130" + "731" + "482915#" + "482915#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.EnterSecurityCode, prompts.PINRuleFrom, prompts.ResultSet}, ksPINSet: true},
		{name: "hash after the security code is ignored", keys: "2" + "4012888888881881#" + "0130#" + "731#" + "482915#" + "482915#",
			end: "outcome", kind: outcome.Changed, ksPINSet: true},
		{name: "wrong security code then right", keys: "2" + "4012888888881881#" + "0130" + "137" + "4012888888881881#" + "0130" + "731" + "482915#" + "482915#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonDetailsMismatch, prompts.TryAgain}, retries: 1, ksPINSet: true},
		{name: "short security code", keys: "2" + "4012888888881881#" + "0130" + "73#" + "731" + "482915#" + "482915#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonIncomplete}, retries: 1, ksPINSet: true},
		{name: "wrong security code three times sets nothing", keys: "2" + "4012888888881881#" + "0130" + "137" + "4012888888881881#" + "0130" + "138" + "4012888888881881#" + "0130" + "139",
			end: "too_many_tries", kind: outcome.DetailsMismatch, mustSay: []prompts.ID{prompts.ReasonDetailsMismatch, prompts.TooManyTries}, retries: 3},
		{name: "not activated is said before any PIN is typed", keys: "2" + "4761739001010119#" + "1129" + "958",
			end: "outcome", kind: outcome.NotEligible, mustSay: []prompts.ID{prompts.ResultNotEligible}},
		{name: "bad Luhn then good", keys: "1" + "4111111111111112#" + "4111111111111111#" + "1228" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonNotValid, prompts.TryAgain}, retries: 1},
		{name: "short card number", keys: "1" + "41111111#" + "4111111111111111#" + "1228" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonIncomplete}, retries: 1},
		{name: "expired then valid", keys: "1" + "4111111111111111#" + "0120" + "1228" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonExpired}, retries: 1},
		{name: "bad month", keys: "1" + "4111111111111111#" + "1328" + "1228" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonBadDate}, retries: 1},
		{name: "weak PIN then good", keys: "1" + "4111111111111111#" + "1228" + "7392#" + "1234#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonPINSequence}, retries: 1},
		{name: "a new PIN too long is refused whole, never cut", keys: "1" + "4111111111111111#" + "1228" + "7392#" + "19820514#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonPINTooLong}, retries: 1, newPIN: "4829"},
		{name: "a new PIN too short", keys: "1" + "4111111111111111#" + "1228" + "7392#" + "482#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonPINTooShort}, retries: 1, newPIN: "4829"},
		{name: "a common PIN", keys: "1" + "4111111111111111#" + "1228" + "7392#" + "1212#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonPINCommon}, retries: 1, newPIN: "4829"},
		{name: "a PIN of one digit throughout", keys: "1" + "4111111111111111#" + "1228" + "7392#" + "777777#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonPINSameDigits}, retries: 1, newPIN: "4829"},
		{name: "the card's expiry as a PIN", keys: "1" + "4111111111111111#" + "1228" + "7392#" + "1228#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonPINExpiry}, retries: 1, newPIN: "4829"},
		{name: "the card's last four digits in a PIN", keys: "1" + "4111111111111111#" + "1228" + "7392#" + "811119#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonPINCardDigits}, retries: 1, newPIN: "4829"},
		{name: "a current PIN too long", keys: "1" + "4111111111111111#" + "1228" + "7392000000000#" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonPINTooLong}, retries: 1, newPIN: "4829"},
		{name: "the host's order typed on a line that asks as printed", keys: "1" + "4111111111111111#" + "2812" + "1228" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonBadDate}, retries: 1, newPIN: "4829"},
		{name: "same PIN as current", keys: "1" + "4111111111111111#" + "1228" + "7392#" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonPINSame}, retries: 1},
		{name: "mismatch then match", keys: "1" + "4111111111111111#" + "1228" + "7392#" + "4829#" + "4828#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonPINMismatch}, retries: 1},
		{name: "star clears the card number", keys: "1" + "41111*" + "4111111111111111#" + "1228" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.EntryCleared}},
		// A wrong current PIN sounds like any other detail that does not
		// match, and asks the same again: card, expiry, current PIN (the new
		// PIN, sealed for this card, is kept).
		{name: "wrong current PIN, then right", keys: "1" + "4111111111111111#" + "1228" + "1357#" + "4829#" + "4829#" + "4111111111111111#" + "1228" + "7392#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonDetailsMismatch, prompts.TryAgain, prompts.ResultChanged}, retries: 1, newPIN: "4829"},
		{name: "three wrong current PINs: the host blocks the card", keys: "1" + "4111111111111111#" + "1228" + "1357#" + "4829#" + "4829#" +
			"4111111111111111#" + "1228" + "1358#" + "4111111111111111#" + "1228" + "1359#",
			end: "outcome", kind: outcome.NotEligible, mustSay: []prompts.ID{prompts.ReasonDetailsMismatch, prompts.ResultNotEligible}, retries: 2},
		// An expiry that is not the card's and a card the host does not know
		// sound the same; the caller types the card and the expiry again.
		{name: "expiry that is not the card's, then the right one", keys: "1" + "4111111111111111#" + "0129" + "7392#" + "4829#" + "4829#" + "4111111111111111#" + "1228" + "7392#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonDetailsMismatch, prompts.TryAgain}, retries: 1, newPIN: "4829"},
		{name: "card number the host does not know", keys: "1" + "4242424242424242#" + "1228" + "7392#" + "4829#" + "4829#" + strings.Repeat("4242424242424242#"+"1228"+"7392#", 2),
			end: "too_many_tries", kind: outcome.UnknownCard, mustSay: []prompts.ID{prompts.ReasonDetailsMismatch, prompts.TooManyTries}, retries: 3},
		{name: "a mistyped card number, then the right one (its PINs typed again)", keys: "1" + "4242424242424242#" + "1228" + "7392#" + "4829#" + "4829#" +
			"4111111111111111#" + "1228" + "7392#" + "4830#" + "4830#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReasonDetailsMismatch}, retries: 1, newPIN: "4830"},
		{name: "blocked card", keys: "1" + "4000056655665556#" + "0329" + "4826#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.NotEligible, mustSay: []prompts.ID{prompts.ResultNotEligible}},
		// No physical card with those last four digits sounds like any
		// other failed card check, and counts like one.
		{name: "virtual card refused by KeySecure", keys: strings.Repeat("2"+"5105105105105100#"+"0729"+"402", 1) + strings.Repeat("5105105105105100#"+"0729"+"402", 2),
			end: "too_many_tries", kind: outcome.DetailsMismatch, mustSay: []prompts.ID{prompts.ReasonDetailsMismatch}, retries: 3},
		// A card with no PIN yet is a card that exists: it sounds like any
		// mismatch too (its first PIN is menu option 2, behind its security
		// code).
		{name: "no PIN yet sounds like details that do not match", keys: "1" + strings.Repeat("4012888888881881#"+"0130"+"1357#"+"4829#"+"4829#", 1) +
			strings.Repeat("4012888888881881#"+"0130"+"1357#", 2),
			end: "too_many_tries", kind: outcome.NoPINYet, mustSay: []prompts.ID{prompts.ReasonDetailsMismatch, prompts.TooManyTries}, retries: 3},
		{name: "no input three times", keys: "",
			end: "too_many_tries", mustSay: []prompts.ID{prompts.NoInput, prompts.TooManyTries, prompts.Goodbye}, retries: 3},
		{name: "three bad card numbers", keys: "1" + "1#" + "2#" + "3#",
			end: "too_many_tries", mustSay: []prompts.ID{prompts.ReasonIncomplete, prompts.TooManyTries}, retries: 3},
		{name: "invalid menu choice then repeat then change", keys: "7" + "9" + "1" + "4111111111111111#" + "1228" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.InvalidChoice}, retries: 1},
		{name: "no agent configured", keys: "0" + "1" + "4111111111111111#" + "1228" + "7392#" + "4829#" + "4829#",
			end: "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.NoAgent}},
		{name: "transfer in with a known card and back", keys: "7392#" + "4829#" + "4829#",
			call: flows.Incoming{Mode: flows.ModeChange, PAN: "4111111111111111", Expiry: "2812", Return: &flows.Target{Context: "agents", Extension: "return", Priority: 1}},
			end:  "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.ReturningToAgent}, newPIN: "4829"},
		{name: "agent passes KeySecure card numbers", keys: "731" + "482915#" + "482915#",
			call: flows.Incoming{Mode: flows.ModeSetup, CardNo: "C202605220001", CardholderNo: "U202605220001"},
			end:  "outcome", kind: outcome.Changed, mustSay: []prompts.ID{prompts.EnterSecurityCode}, ksPINSet: true},
		{name: "agent passes KeySecure card numbers, caller has not the card", keys: "137" + "138" + "139",
			call: flows.Incoming{Mode: flows.ModeSetup, CardNo: "C202605220001", CardholderNo: "U202605220001"},
			end:  "too_many_tries", kind: outcome.DetailsMismatch, retries: 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, sims := newFlow(t, nil)
			s := newScripted(c.keys)
			res := f.Run(context.Background(), s, c.call)
			if res.End != c.end {
				t.Fatalf("end %q, want %q (played %v)", res.End, c.end, s.played)
			}
			if c.kind == "" && res.Outcome != nil {
				t.Fatalf("submitted %v", res.Outcome)
			}
			if c.kind != "" && (res.Outcome == nil || res.Outcome.Kind != c.kind) {
				t.Fatalf("outcome %v, want %s (played %v)", res.Outcome, c.kind, s.played)
			}
			for _, id := range c.mustSay {
				if !s.saw(id) {
					t.Errorf("never said %s (played %v)", id, s.played)
				}
			}
			if len(res.Retries) != c.retries {
				t.Errorf("retries %v, want %d", res.Retries, c.retries)
			}
			if c.newPIN != "" && !sims.CardHost.PINIs("4111111111111111", c.newPIN) {
				t.Error("card host does not hold the new PIN")
			}
			if c.ksPINSet != (sims.KeySecure.PINSets() == 1) {
				t.Errorf("KeySecure PIN sets %d", sims.KeySecure.PINSets())
			}
			if c.call.Return != nil {
				if s.continued == nil || *s.continued != *c.call.Return || s.hungUp || !res.Returned {
					t.Fatalf("not returned to the agent: %+v hungUp=%v", s.continued, s.hungUp)
				}
			} else if !s.hungUp {
				t.Fatal("call not hung up")
			}
			if res.MaskedPAN != "" && !strings.Contains(res.MaskedPAN, "******") {
				t.Fatalf("PAN in result not masked: %s", res.MaskedPAN)
			}
		})
	}
}

func TestAgentOption(t *testing.T) {
	target := &flows.Target{Context: "agents", Extension: "queue", Priority: 1}
	f, _ := newFlow(t, func(c *flows.Config) { c.Agent = target })
	s := newScripted("0")
	res := f.Run(context.Background(), s, flows.Incoming{})
	if res.End != "agent" || s.continued == nil || *s.continued != *target || s.hungUp {
		t.Fatalf("%+v continued=%v", res, s.continued)
	}
}

func TestLanguageMenu(t *testing.T) {
	f, _ := newFlow(t, func(c *flows.Config) { c.Languages = []string{"en", "ar", "zh"} })
	s := newScripted("2" + "1" + "4111111111111111#" + "1228" + "7392#" + "4829#" + "4829#")
	res := f.Run(context.Background(), s, flows.Incoming{})
	if s.lang != "ar" || res.Language != "ar" || res.Outcome == nil || res.Outcome.Kind != outcome.Changed {
		t.Fatalf("lang %s res %+v", s.lang, res)
	}
	// A language passed in by a transfer skips the menu.
	s2 := newScripted("1" + "4111111111111111#" + "1228" + "4829#" + "4830#" + "4830#")
	f.Run(context.Background(), s2, flows.Incoming{Language: "zh"})
	if s2.lang != "zh" || s2.saw(prompts.LanguageChoice) {
		t.Fatalf("language menu not skipped: %s %v", s2.lang, s2.played)
	}
}

func TestHangUpBeforeSubmitSendsNothing(t *testing.T) {
	f, sims := newFlow(t, nil)
	s := newScripted("1" + "4111111111111111#" + "1228" + "7392#" + "4829#")
	// The caller hangs up while asked to confirm the new PIN.
	s.onPlay = func(id prompts.ID) {
		if id == prompts.ConfirmNewPIN {
			s.kp.HangUp()
		}
	}
	res := f.Run(context.Background(), s, flows.Incoming{})
	if res.End != "hangup" || res.Outcome != nil {
		t.Fatalf("%+v", res)
	}
	if n := len(sims.CardHost.Received()); n != 0 {
		t.Fatalf("%d host requests after a hang-up", n)
	}
	if s.hungUp {
		t.Fatal("hung up a channel that was already gone")
	}
}

func TestSlowHostKeepsTheCallerInformed(t *testing.T) {
	f, sims := newFlow(t, func(c *flows.Config) { c.HostWaitAnnounce = 50 * time.Millisecond })
	sims.CardHost.Faults.Set(faultDelay(300 * time.Millisecond))
	s := newScripted("1" + "4111111111111111#" + "1228" + "7392#" + "4829#" + "4829#")
	res := f.Run(context.Background(), s, flows.Incoming{})
	if !s.saw(prompts.StillWorking) || res.Outcome == nil || res.Outcome.Kind != outcome.Changed {
		t.Fatalf("%+v %v", res, s.played)
	}
}

func faultDelay(d time.Duration) faults.Fault {
	return faults.Fault{Kind: faults.Delay, Delay: d, Count: 1}
}

// newMarkedFlow is a flow whose first setups are marked in a real attempt
// store (bbolt in a temporary directory), as serve wires it.
func newMarkedFlow(t *testing.T) (*flows.Flow, *simrun.Running) {
	t.Helper()
	store, err := limits.OpenBolt(filepath.Join(t.TempDir(), "attempts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	l := limits.New(store, []byte("0123456789abcdef"), limits.Rule{Max: 20, Window: time.Hour, Lockout: time.Hour}, limits.Rule{Max: 20, Window: time.Hour, Lockout: time.Hour})
	return newFlow(t, func(c *flows.Config) { c.Limiter, c.Marks = l, l })
}

func TestFirstSetupHappensOncePerCard(t *testing.T) {
	f, sims := newMarkedFlow(t)
	first := newScripted("2" + "4012888888881881#" + "0130" + "731" + "482915#" + "482915#")
	if res := f.Run(context.Background(), first, flows.Incoming{CallerID: "+15551230001"}); res.Outcome == nil || res.Outcome.Kind != outcome.Changed {
		t.Fatalf("first setup: %+v", res)
	}
	// The same card again, by PAN or named by an agent: refused before any PIN is typed.
	for name, in := range map[string]struct {
		keys string
		call flows.Incoming
	}{
		"typed":    {"2" + "4012888888881881#" + "0130" + "731", flows.Incoming{CallerID: "+15551230002"}},
		"by agent": {"731", flows.Incoming{Mode: flows.ModeSetup, CardNo: "C202605220001", CardholderNo: "U202605220001"}},
	} {
		again := newScripted(in.keys)
		res := f.Run(context.Background(), again, in.call)
		if res.Outcome == nil || res.Outcome.Kind != outcome.AlreadySet || !again.saw(prompts.ResultAlreadySet) || again.saw(prompts.EnterNewPIN) {
			t.Fatalf("%s: second setup %+v (played %v)", name, res, again.played)
		}
	}
	if n := sims.KeySecure.PINSets(); n != 1 || !sims.KeySecure.PINIs("C202605220001", "482915") {
		t.Fatalf("KeySecure set %d PINs", n)
	}
}

func TestTwoCallsRacingForOneCardSetItOnce(t *testing.T) {
	f, sims := newMarkedFlow(t)
	var wg sync.WaitGroup
	results := make([]flows.Result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newScripted("2" + "4012888888881881#" + "0130" + "731" + "48291" + string(rune('5'+i)) + "#" + "48291" + string(rune('5'+i)) + "#")
			results[i] = f.Run(context.Background(), s, flows.Incoming{CallerID: "+1555123000" + string(rune('1'+i))})
		}()
	}
	wg.Wait()
	changed, refused := 0, 0
	for _, r := range results {
		switch {
		case r.Outcome != nil && r.Outcome.Kind == outcome.Changed:
			changed++
		case r.Outcome != nil && r.Outcome.Kind == outcome.AlreadySet:
			refused++
		}
	}
	if changed != 1 || refused != 1 || sims.KeySecure.PINSets() != 1 {
		t.Fatalf("%d set, %d refused, %d PIN sets", changed, refused, sims.KeySecure.PINSets())
	}
}

func TestAFailedSetReleasesTheMark(t *testing.T) {
	f, sims := newMarkedFlow(t)
	sims.KeySecure.Faults.Set(faults.Fault{Kind: faults.Status, Status: 503, Count: 1, Path: keysecuresim.RouteSetPIN})
	s := newScripted("2" + "4012888888881881#" + "0130" + "731" + "482915#" + "482915#")
	if res := f.Run(context.Background(), s, flows.Incoming{}); res.Outcome == nil || res.Outcome.Kind != outcome.Unavailable {
		t.Fatalf("%+v", res)
	}
	s2 := newScripted("2" + "4012888888881881#" + "0130" + "731" + "482915#" + "482915#")
	if res := f.Run(context.Background(), s2, flows.Incoming{}); res.Outcome == nil || res.Outcome.Kind != outcome.Changed {
		t.Fatalf("after a set that certainly failed: %+v", res)
	}
}

func TestAnAmbiguousSetKeepsTheMark(t *testing.T) {
	f, sims := newMarkedFlow(t)
	sims.KeySecure.Faults.Set(faults.Fault{Kind: faults.Reset, Count: 1, Path: keysecuresim.RouteSetPIN})
	s := newScripted("2" + "4012888888881881#" + "0130" + "731" + "482915#" + "482915#")
	if res := f.Run(context.Background(), s, flows.Incoming{}); res.Outcome == nil || res.Outcome.Kind != outcome.Ambiguous {
		t.Fatalf("%+v", res)
	}
	s2 := newScripted("2" + "4012888888881881#" + "0130" + "731")
	if res := f.Run(context.Background(), s2, flows.Incoming{}); res.Outcome == nil || res.Outcome.Kind != outcome.AlreadySet {
		t.Fatalf("after an ambiguous set: %+v", res)
	}
}

func TestWithoutPCIDisplayFirstSetupIsRefused(t *testing.T) {
	f, sims := newFlowWith(t, simrun.Options{KeySecurePCIDisplayOff: true}, nil, nil)
	for name, keys := range map[string]string{
		"menu 2": "2" + "4012888888881881#" + "0130" + "731",
	} {
		s := newScripted(keys)
		res := f.Run(context.Background(), s, flows.Incoming{})
		if res.Outcome == nil || res.Outcome.Kind != outcome.CannotVerify || !s.saw(prompts.ReasonDetailsMismatch) || s.sawAfter(prompts.EnterSecurityCode, prompts.EnterNewPIN) {
			t.Fatalf("%s: %+v (played %v)", name, res, s.played)
		}
	}
	if sims.KeySecure.PINSets() != 0 {
		t.Fatal("a PIN was set on an unverified card")
	}
}

func TestHangUpDuringTheCardCheckStopsIt(t *testing.T) {
	f, sims := newFlow(t, nil)
	// Every card list page is slow: the card is three windows back, so a
	// search that outlived the call would send more list requests.
	sims.KeySecure.Faults.Set(faults.Fault{Kind: faults.Delay, Delay: 2 * time.Second, Path: keysecuresim.RouteCardList})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newScripted("2" + "4012888888881881#" + "0130" + "731")
	s.onPlay = func(id prompts.ID) {
		if id == prompts.PleaseWait {
			go func() {
				for sims.KeySecure.Calls(keysecuresim.RouteCardList) == 0 {
					time.Sleep(5 * time.Millisecond)
				}
				s.kp.HangUp()
				cancel() // what the ARI session does on a hang-up
			}()
		}
	}
	res := f.Run(ctx, s, flows.Incoming{})
	if res.End != "hangup" || sims.KeySecure.PINSets() != 0 {
		t.Fatalf("%+v", res)
	}
	if n := sims.KeySecure.Calls(keysecuresim.RouteCardList); n != 1 {
		t.Fatalf("%d card list requests: the search went on after the hang-up", n)
	}
}

// The spoken PIN rule follows the configured lengths, with the line's own
// number prompts; the menu offers an agent only when one is configured.
func TestSpokenRulesFollowTheConfiguration(t *testing.T) {
	f, _ := newFlow(t, nil)
	rec := &recording{scripted: newScripted("1" + "4111111111111111#" + "1228" + "7392#" + "4829#" + "4829#")}
	f.Run(context.Background(), rec, flows.Incoming{})
	if !rec.sawSequence(prompts.PINRuleFrom, prompts.Number(4), prompts.PINRuleTo, prompts.Number(6), prompts.PINRuleDigits, prompts.PINRuleEasy) ||
		rec.saw(prompts.PINRuleRuns) {
		t.Fatalf("default rule: %v", rec.items)
	}
	if rec.saw(prompts.MenuAgent) {
		t.Fatal("the menu offers an agent that is not configured")
	}

	f2, _ := newFlowWith(t, simrun.Options{},
		func(c *flows.Config) { c.Agent = &flows.Target{Context: "agents", Extension: "queue", Priority: 1} },
		func(r *pinsvc.Router) { r.Policy = policy.PINPolicy{MinLength: 5, MaxLength: 5} })
	rec2 := &recording{scripted: newScripted("1" + "4111111111111111#" + "1228" + "7392#" + "48291#" + "48291#")}
	if res := f2.Run(context.Background(), rec2, flows.Incoming{}); res.Outcome == nil || res.Outcome.Kind != outcome.Changed {
		t.Fatalf("%+v", res)
	}
	if !rec2.sawSequence(prompts.PINRuleFrom, prompts.Number(5), prompts.PINRuleDigits) || rec2.saw(prompts.PINRuleTo) {
		t.Fatalf("five-digit rule: %v", rec2.items)
	}
	if !rec2.saw(prompts.MenuAgent) {
		t.Fatal("the configured agent is not offered")
	}
	// First setup follows KeySecure's rule: exactly six.
	rec3 := &recording{scripted: newScripted("2" + "4012888888881881#" + "0130" + "731" + "482915#" + "482915#")}
	f.Run(context.Background(), rec3, flows.Incoming{})
	if !rec3.sawSequence(prompts.PINRuleFrom, prompts.Number(6), prompts.PINRuleDigits, prompts.PINRuleEasy, prompts.PINRuleRuns) {
		t.Fatalf("first setup rule: %v", rec3.items)
	}
}

func TestTheLanguageMenuSaysEachNumberInItsLanguage(t *testing.T) {
	f, _ := newFlow(t, func(c *flows.Config) { c.Languages = []string{"en", "ar", "zh"} })
	rec := &recording{scripted: newScripted("3")}
	f.Run(context.Background(), rec, flows.Incoming{})
	want := []prompts.Item{prompts.PIn(prompts.LanguageChoice, "en"), prompts.N(1, "en"), prompts.PIn(prompts.LanguageChoice, "ar"),
		prompts.N(2, "ar"), prompts.PIn(prompts.LanguageChoice, "zh"), prompts.N(3, "zh")}
	if len(rec.items) < len(want) {
		t.Fatalf("%v", rec.items)
	}
	for i, it := range want {
		if rec.items[i] != it {
			t.Fatalf("item %d: %+v, want %+v (all: %v)", i, rec.items[i], it, rec.items)
		}
	}
}

// recording is a scripted caller that keeps every item, language included.
type recording struct {
	*scripted
	items []prompts.Item
}

func (r *recording) Play(ctx context.Context, items ...prompts.Item) error {
	r.mu.Lock()
	r.items = append(r.items, items...)
	r.mu.Unlock()
	return r.scripted.Play(ctx, items...)
}

func (r *recording) Say(ctx context.Context, items ...prompts.Item) error {
	return r.Play(ctx, items...)
}

func (r *recording) sawSequence(ids ...prompts.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i+len(ids) <= len(r.items); i++ {
		match := true
		for j, id := range ids {
			if r.items[i+j].Prompt != id {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// sealRecorder is the service with every PIN it sealed kept, to see when
// each was wiped.
type sealRecorder struct {
	contract.Service
	mu     sync.Mutex
	sealed []*secret.PIN
}

func (s *sealRecorder) SealPIN(pan secret.PAN, pin *secret.PIN, since time.Time) (contract.SealedPIN, error) {
	s.mu.Lock()
	s.sealed = append(s.sealed, pin)
	s.mu.Unlock()
	return s.Service.SealPIN(pan, pin, since)
}

// The current PIN is sealed and wiped as soon as it is typed: when the
// line asks for the new PIN it is no longer in clear anywhere in the call,
// and the "not the current PIN" rule still refuses it.
func TestTheCurrentPINIsSealedBeforeTheNewPINIsAsked(t *testing.T) {
	sims, err := simrun.Start(simrun.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sims.Close)
	ch, _ := cardhost.New(sims.CardHostConfig())
	ks, _ := keysecure.New(sims.KeySecureConfig())
	rec := &sealRecorder{Service: &pinsvc.Router{CardHost: ch, KeySecure: ks}}
	f := flows.New(flows.Config{Languages: []string{"en"}, FirstDigitTimeout: 100 * time.Millisecond, InterDigitTimeout: 100 * time.Millisecond, MaxTries: 3}, rec)
	s := newScripted("1" + "4111111111111111#" + "1228" + "7392#" + "7392#" + "4829#" + "4829#")
	var atNewPIN []bool // for each time the new PIN is asked: was the current PIN sealed and wiped?
	s.onPlay = func(p prompts.ID) {
		if p == prompts.EnterNewPIN {
			rec.mu.Lock()
			atNewPIN = append(atNewPIN, len(rec.sealed) == 1 && rec.sealed[0].Wiped())
			rec.mu.Unlock()
		}
	}
	res := f.Run(context.Background(), s, flows.Incoming{})
	if res.Outcome == nil || res.Outcome.Kind != outcome.Changed || !sims.CardHost.PINIs("4111111111111111", "4829") {
		t.Fatalf("the change did not go through: %+v", res)
	}
	if len(atNewPIN) != 2 || !atNewPIN[0] || !atNewPIN[1] {
		t.Fatalf("the current PIN sealed and wiped each time the new PIN was asked: %v (the second ask follows the same-as-current refusal)", atNewPIN)
	}
	if !s.saw(prompts.ReasonPINSame) {
		t.Fatal("a new PIN equal to the current one was not refused")
	}
	for i, p := range rec.sealed {
		if !p.Wiped() {
			t.Errorf("sealed PIN %d not wiped", i)
		}
	}
}
