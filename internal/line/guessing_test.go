package line_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/demo"
)

// afterWait is what a caller heard after the line asked the host.
func afterWait(ch *aritest.Channel) []string {
	played := ch.Snapshot().Played
	i := slices.Index(played, "sound:ivr-pin/please-wait")
	if i < 0 {
		return nil
	}
	return played[i:]
}

// An unknown card and an expiry that is not the card's sound the same: a
// guesser cannot tell a card number that exists from one that does not.
func TestUnknownCardAndWrongExpirySoundTheSame(t *testing.T) {
	l := startLine(t, nil, demo.Options{})
	unknown, urec := l.call(t, aritest.CallOptions{}, change, "4242424242424242#", exp, oldPIN, newPIN, newPIN)
	wrongExp, erec := l.call(t, aritest.CallOptions{}, change, card, "0129", oldPIN, newPIN, newPIN)
	if urec.Outcome != "unknown_card" || erec.Outcome != "expiry_mismatch" {
		t.Fatalf("audit keeps what happened: %q / %q", urec.Outcome, erec.Outcome)
	}
	a, b := afterWait(unknown), afterWait(wrongExp)
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Fatalf("they sound different:\n%v\n%v", a, b)
	}
	if !slices.Contains(a, "sound:ivr-pin/reason-details-mismatch") {
		t.Fatalf("heard %v", a)
	}
}

// Twelve first setups from one caller, each for a card with no physical
// card behind its last four digits: every check counts, and the caller is
// refused at the caller limit, before KeySecure is asked again.
func TestFirstSetupChecksCountAgainstTheCaller(t *testing.T) {
	l := startLine(t, func(c *config.Config) { c.LimitCallerMax, c.LimitCallerWindow = 10, time.Hour }, demo.Options{})
	var ends []string
	var ksAt10 int
	for i := 0; i < 12; i++ {
		pan := luhnPAN(fmt.Sprintf("400000%09d", 900+i)) // no physical card ends so
		_, rec := l.call(t, aritest.CallOptions{CallerNumber: "15557770001"}, "2", pan+"#", "1229", "123")
		ends = append(ends, rec.End)
		if i == 9 {
			ksAt10 = len(l.Sims.KeySecure.Received())
		}
	}
	for i, e := range ends {
		want := "too_many_tries"
		if i >= 10 {
			want = "limited"
		}
		if e != want {
			t.Fatalf("call %d ended %q, want %q (all: %v)", i+1, e, want, ends)
		}
	}
	if n := len(l.Sims.KeySecure.Received()); n != ksAt10 {
		t.Fatalf("%d KeySecure requests after the caller was limited", n-ksAt10)
	}
	// The operator sees what the checks cost KeySecure, by kind.
	lists := counter(t, l, "ivrpin_keysecure_requests_total", "kind", "list")
	tokens := counter(t, l, "ivrpin_keysecure_requests_total", "kind", "token")
	if int(lists) != ksAt10 || tokens < 1 || counter(t, l, "ivrpin_keysecure_requests_total", "kind", "set") != 0 {
		t.Fatalf("ivrpin_keysecure_requests_total: %v list and %v token requests; the simulator saw %d card requests", lists, tokens, ksAt10)
	}
}

// counter reads one labelled counter from the line's registry.
func counter(t *testing.T, l *testLine, name, label, value string) float64 {
	t.Helper()
	mfs, err := l.Line.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// Twelve callers, twelve caller ids, twelve cards the host does not know:
// past a line guard of ten failed checks the line refuses new calls, so
// guessing spread over many ids is stopped too.
func TestLineGuardStopsSpreadGuessing(t *testing.T) {
	l := startLine(t, func(c *config.Config) {
		c.LimitCallerMax, c.LimitCardMax = 10, 5
		c.LimitLineFailedMax, c.LimitLineWindow = 10, time.Hour
	}, demo.Options{})
	var ends []string
	for i := 0; i < 12; i++ {
		pan := luhnPAN(fmt.Sprintf("424242%09d", i))
		sent := len(l.Sims.CardHost.Received())
		ch, rec := l.call(t, aritest.CallOptions{CallerNumber: fmt.Sprintf("1555888%04d", i)}, change, pan+"#", exp, oldPIN, newPIN, newPIN)
		ends = append(ends, rec.End)
		if i >= 10 {
			if rec.End != "line_guard" || !played(ch, "result-unavailable") || len(l.Sims.CardHost.Received()) != sent {
				t.Fatalf("caller %d: %+v (ends %v)", i+1, rec, ends)
			}
		} else if rec.End == "line_guard" {
			t.Fatalf("the guard was on before ten failures: %v", ends)
		}
	}
	if on, err := l.Line.LineGuard.On(t.Context()); err != nil || !on {
		t.Fatalf("guard on: %v %v", on, err)
	}
}

// On the outbound transport the listener's counters exist from start-up,
// one series per reason.
func TestListenerCountersExistFromStartUp(t *testing.T) {
	l := startLine(t, nil, demo.Options{Transport: demo.Outbound})
	for _, c := range []struct{ name, reason string }{
		{"ivrpin_ari_listener_logins_refused_total", "credentials"}, {"ivrpin_ari_listener_logins_refused_total", "throttled"},
		{"ivrpin_ari_listener_connections_closed_total", "max_connections"}, {"ivrpin_ari_listener_connections_closed_total", "not_upgraded"},
		{"ivrpin_ari_listener_connections_closed_total", "no_call"}, {"ivrpin_ari_calls_refused_total", "channel_taken"},
	} {
		if v := counter(t, l, c.name, "reason", c.reason); v != 0 {
			t.Errorf("%s{reason=%q} = %v at start-up", c.name, c.reason, v)
		}
	}
}
