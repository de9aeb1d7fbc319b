package flows_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// Before the expiry is asked, the caller hears the last four digits of the
// card number typed: a mistyped number is noticed before any PIN.
func TestTheCardsLastFourDigitsAreReadBackBeforeTheExpiry(t *testing.T) {
	f, _ := newFlow(t, nil)
	rec := &recording{scripted: newScripted("1" + "5555555555554444#" + "0629" + "2580#" + "4829#" + "4829#")}
	res := f.Run(context.Background(), rec, flows.Incoming{})
	if res.Outcome == nil || res.Outcome.Kind != outcome.Changed {
		t.Fatalf("%+v (played %v)", res, rec.played)
	}
	if !rec.sawSequence(prompts.CardEnding, prompts.Number(4), prompts.Number(4), prompts.Number(4), prompts.Number(4), prompts.EnterExpiry) {
		t.Fatalf("no read-back before the expiry: %v", rec.items)
	}
}

// A bank whose cards print the year first keeps the host's order.
func TestTheExpiryInTheHostsOrder(t *testing.T) {
	f, sims := newFlow(t, func(c *flows.Config) { c.ExpiryOrder = policy.YYMM })
	rec := &recording{scripted: newScripted("1" + "4111111111111111#" + "2812" + "7392#" + "4829#" + "4829#")}
	res := f.Run(context.Background(), rec, flows.Incoming{})
	if res.Outcome == nil || res.Outcome.Kind != outcome.Changed || !rec.saw(prompts.EnterExpiryYYMM) || rec.saw(prompts.EnterExpiry) {
		t.Fatalf("%+v (played %v)", res, rec.played)
	}
	if got := sims.CardHost.Received(); len(got) != 1 || !strings.Contains(string(got[0]), `"card_expiry_date":"2812"`) {
		t.Fatalf("the host got %s", got)
	}
}

// A call that cannot finish goes to the agents when one is configured, as
// IVRPIN_AGENT_ON_FAILURE says; the reason goes with it.
func TestACallThatCannotFinishReachesAnAgent(t *testing.T) {
	agents := &flows.Target{Context: "agents", Extension: "queue", Priority: 1}
	// Three wrong current PINs: the host blocks the card on the third (each
	// asks the card, its expiry and the current PIN again).
	wrong := "1" + "4111111111111111#" + "1228" + "1357#" + "4829#" + "4829#" + "4111111111111111#" + "1228" + "1358#" + "4111111111111111#" + "1228" + "1359#"
	cases := []struct {
		name     string
		mode     flows.AgentOnFailure
		keys     string
		call     flows.Incoming
		end, why string
		offered  bool
	}{
		{"offered and taken", flows.AgentOffer, wrong + "0", flows.Incoming{}, "agent", "not_eligible", true},
		{"offered, not taken", flows.AgentOffer, wrong, flows.Incoming{}, "outcome", "", true},
		{"transferred at once", flows.AgentTransfer, wrong, flows.Incoming{}, "agent", "not_eligible", false},
		{"never", flows.AgentNever, wrong, flows.Incoming{}, "outcome", "", false},
		{"tries used up", flows.AgentTransfer, "1" + "1#" + "2#" + "3#", flows.Incoming{}, "agent", "too_many_tries", false},
		// A caller an agent sent in goes back to that agent instead.
		{"transferred in: back to the agent", flows.AgentTransfer, "1357#" + "4829#" + "4829#" + "1358#" + "1359#",
			flows.Incoming{Mode: flows.ModeChange, PAN: "4111111111111111", Expiry: "2812", Return: &flows.Target{Context: "desk", Extension: "7", Priority: 1}}, "outcome", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, _ := newFlow(t, func(cfg *flows.Config) { cfg.Agent, cfg.AgentOnFailure = agents, c.mode })
			s := newScripted(c.keys)
			res := f.Run(context.Background(), s, c.call)
			if res.End != c.end || res.AgentReason != c.why {
				t.Fatalf("end %q agent_reason %q, want %q %q (played %v)", res.End, res.AgentReason, c.end, c.why, s.played)
			}
			if s.saw(prompts.AgentOffer) != c.offered {
				t.Fatalf("offered %v (played %v)", !c.offered, s.played)
			}
			toAgents := s.continued != nil && *s.continued == *agents
			if toAgents != (c.end == "agent") || (toAgents && (s.hungUp || !s.saw(prompts.TransferAgent))) {
				t.Fatalf("continued %+v hung up %v (played %v)", s.continued, s.hungUp, s.played)
			}
		})
	}
}

// A language the line does not have plays the default and says so in the
// result (the audit's lang_fallback).
func TestAnUnknownLanguageFallsBackVisibly(t *testing.T) {
	f, _ := newFlow(t, func(c *flows.Config) { c.Languages = []string{"en", "ar"} })
	s := newScripted("")
	res := f.Run(context.Background(), s, flows.Incoming{Language: "fr"})
	if res.Language != "en" || s.lang != "en" || res.LangFallback != "fr" || s.saw(prompts.LanguageChoice) {
		t.Fatalf("%+v lang %s (played %v)", res, s.lang, s.played)
	}
	res = f.Run(context.Background(), newScripted(""), flows.Incoming{Language: "ar"})
	if res.LangFallback != "" || res.Language != "ar" {
		t.Fatalf("%+v", res)
	}
}
