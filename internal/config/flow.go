package config

import (
	"strconv"
	"time"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// Flow is what the caller meets: languages, entries, tries, timeouts and
// where a call goes when it cannot finish.
type Flow struct {
	Languages         []string      `envconfig:"LANGUAGES" default:"en" desc:"prompt languages, comma separated, first is the default"`
	PromptWords       string        `envconfig:"PROMPT_WORDS" desc:"directory of <lang>.toml files whose prompt words replace or add to the shipped ones (docs/prompts.md); unset: the shipped words"`
	ExpiryOrder       string        `envconfig:"EXPIRY_ORDER" default:"MMYY" desc:"order the caller types the expiry in: MMYY (as printed on cards) or YYMM (the card host's order)"`
	FirstDigitTimeout time.Duration `envconfig:"FIRST_DIGIT_TIMEOUT" default:"8s" desc:"wait for the first digit of an entry"`
	InterDigitTimeout time.Duration `envconfig:"INTER_DIGIT_TIMEOUT" default:"5s" desc:"wait between digits"`
	MaxTries          int           `envconfig:"MAX_TRIES" default:"3" desc:"tries per step before goodbye"`
	PINMinLength      int           `envconfig:"PIN_MIN_LENGTH" default:"4" desc:"shortest new PIN for a change"`
	PINMaxLength      int           `envconfig:"PIN_MAX_LENGTH" default:"6" desc:"longest new PIN for a change"`
	AgentTransfer     string        `envconfig:"AGENT_TRANSFER" desc:"dialplan target for 0 (an agent), as context,extension,priority; unset: no agent option"`
	AgentOnFailure    string        `envconfig:"AGENT_ON_FAILURE" default:"offer" desc:"with AGENT_TRANSFER, a call that cannot finish (tries used up, a refusal, a host not available, a limit): offer (press 0 for an agent), transfer (at once) or never"`
	CallTimeout       time.Duration `envconfig:"CALL_TIMEOUT" default:"10m" desc:"hard limit on one call"`
	DrainTimeout      time.Duration `envconfig:"DRAIN_TIMEOUT" default:"2m" desc:"on SIGTERM, how long active calls may finish"`
	DrainFallback     string        `envconfig:"DRAIN_FALLBACK" desc:"during a drain, send new calls here (context,extension,priority); unset: a short closing message"`
	HostWaitAnnounce  time.Duration `envconfig:"HOST_WAIT_ANNOUNCE" default:"2s" desc:"after this long waiting for a host, tell the caller the line is alive"`
}

// problems checks the application's words, the caller-facing choices, the
// dialplan targets, the tries, the PIN lengths and the durations.
func (f *Flow) problems() []error {
	var out []error
	add := func(v, reason string) { out = append(out, problem(v, reason)) }
	if len(f.Languages) == 0 || f.Languages[0] == "" {
		add("LANGUAGES", "needs at least one language")
	}
	if words, err := f.Prompts(); err != nil {
		add("PROMPT_WORDS", err.Error())
	} else {
		seen := map[string]bool{}
		for _, l := range f.Languages {
			if seen[l] {
				add("LANGUAGES", "lists "+strconv.Quote(l)+" twice")
				break
			}
			seen[l] = true
			if err := words.Check([]string{l}); err != nil {
				add("LANGUAGES", strconv.Quote(l)+": "+err.Error())
				break
			}
		}
	}
	switch policy.ExpiryOrder(f.ExpiryOrder) {
	case policy.MMYY, policy.YYMM:
	default:
		add("EXPIRY_ORDER", "must be MMYY or YYMM, not "+strconv.Quote(f.ExpiryOrder))
	}
	switch flows.AgentOnFailure(f.AgentOnFailure) {
	case flows.AgentOffer, flows.AgentTransfer, flows.AgentNever:
	default:
		add("AGENT_ON_FAILURE", "must be offer, transfer or never, not "+strconv.Quote(f.AgentOnFailure))
	}
	for _, t := range []struct{ name, value string }{{"AGENT_TRANSFER", f.AgentTransfer}, {"DRAIN_FALLBACK", f.DrainFallback}} {
		if t.value != "" && flows.ParseTarget(t.value) == nil {
			add(t.name, "must be context,extension,priority with a priority of 1 or more")
		}
	}
	if f.MaxTries < 1 || f.MaxTries > 9 {
		add("MAX_TRIES", "must be 1 to 9")
	}
	if f.PINMinLength < 4 || f.PINMaxLength > 12 || f.PINMinLength > f.PINMaxLength {
		add("PIN_MIN_LENGTH", "PIN lengths must satisfy 4 <= min <= max <= 12")
	}
	return append(out, positive([]namedDuration{
		{"FIRST_DIGIT_TIMEOUT", f.FirstDigitTimeout}, {"INTER_DIGIT_TIMEOUT", f.InterDigitTimeout},
		{"CALL_TIMEOUT", f.CallTimeout}, {"DRAIN_TIMEOUT", f.DrainTimeout}, {"HOST_WAIT_ANNOUNCE", f.HostWaitAnnounce},
	})...)
}

// Prompts is the prompt catalogue: the shipped words with PROMPT_WORDS's
// files laid over them.
func (f *Flow) Prompts() (*prompts.Catalogue, error) { return prompts.Load(f.PromptWords) }

// FlowConfig is the call flow's configuration; the limits, marks and line
// guard are the caller's to add.
func (f *Flow) FlowConfig() flows.Config {
	return flows.Config{Languages: f.Languages, FirstDigitTimeout: f.FirstDigitTimeout, InterDigitTimeout: f.InterDigitTimeout,
		MaxTries: f.MaxTries, Agent: flows.ParseTarget(f.AgentTransfer), HostWaitAnnounce: f.HostWaitAnnounce,
		AgentOnFailure: flows.AgentOnFailure(f.AgentOnFailure), ExpiryOrder: policy.ExpiryOrder(f.ExpiryOrder)}
}

// PINPolicy is the new PIN's policy for a change.
func (f *Flow) PINPolicy() policy.PINPolicy {
	return policy.PINPolicy{MinLength: f.PINMinLength, MaxLength: f.PINMaxLength}
}

// namedDuration is a duration setting and its variable.
type namedDuration struct {
	name  string
	value time.Duration
}

// positive refuses each duration that is not positive.
func positive(ds []namedDuration) []error {
	var out []error
	for _, d := range ds {
		if d.value <= 0 {
			out = append(out, problem(d.name, "must be a positive duration"))
		}
	}
	return out
}
