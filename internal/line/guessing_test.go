package line_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/demo"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/faults"
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

// An unknown card, an expiry that is not the card's and a wrong current
// PIN sound the same, to the end of the call: a guesser cannot tell a card
// number that exists from one that does not, nor a right expiry from a
// wrong one.
func TestFailedChecksSoundTheSame(t *testing.T) {
	l := startLine(t, nil, demo.Options{})
	cases := []struct {
		name, outcome string
		keys          []string
	}{
		{"unknown card", "unknown_card", []string{change, "4242424242424242#", exp, oldPIN, newPIN, newPIN}},
		{"wrong expiry", "expiry_mismatch", []string{change, card, "0129", oldPIN, newPIN, newPIN}},
		{"wrong current PIN", "wrong_pin", []string{change, card, exp, "1357#", newPIN, newPIN}},
	}
	var heard [][]string
	for _, c := range cases {
		ch, rec := l.call(t, aritest.CallOptions{}, c.keys...)
		if rec.Outcome != c.outcome {
			t.Fatalf("%s: the audit keeps what happened: %q, want %q", c.name, rec.Outcome, c.outcome)
		}
		heard = append(heard, afterWait(ch))
	}
	if !slices.Contains(heard[0], "sound:ivr-pin/reason-details-mismatch") {
		t.Fatalf("heard %v", heard[0])
	}
	for i := range cases[1:] {
		if !slices.Equal(heard[0], heard[i+1]) {
			t.Fatalf("%s and %s sound different:\n%v\n%v", cases[0].name, cases[i+1].name, heard[0], heard[i+1])
		}
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
		pan := testkit.LuhnPAN(fmt.Sprintf("400000%09d", 900+i)) // no physical card ends so
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
		pan := testkit.LuhnPAN(fmt.Sprintf("424242%09d", i))
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
		{"ivrpin_ari_listener_logins_refused_total", "slowed"},
		{"ivrpin_ari_listener_connections_closed_total", "max_connections"}, {"ivrpin_ari_listener_connections_closed_total", "not_upgraded"},
		{"ivrpin_ari_listener_connections_closed_total", "source_share"}, {"ivrpin_ari_listener_connections_closed_total", "reserved"},
		{"ivrpin_ari_listener_connections_closed_total", "persistent_refused"}, {"ivrpin_ari_listener_connections_closed_total", "no_life"},
		{"ivrpin_ari_listener_connections_closed_total", "no_call"}, {"ivrpin_ari_calls_refused_total", "channel_taken"},
		{"ivrpin_ari_listener_sources_evicted_total", ""},
	} {
		label := "reason"
		if c.reason == "" {
			label = ""
		}
		if v := counter(t, l, c.name, label, c.reason); v != 0 {
			t.Errorf("%s{reason=%q} = %v at start-up", c.name, c.reason, v)
		}
	}
}

// Ten guessers at once, each from a caller id of its own and each trying
// three times, against a line guard of five: the places are taken before
// the requests go, so no more than five failing checks reach the host (in
// a PIN change) or KeySecure's private info (in a first setup), however
// the calls interleave; the rest hear "not available".
func TestLineGuardHoldsAgainstParallelGuessers(t *testing.T) {
	cases := []struct {
		name  string
		keys  func(i int) []string
		sent  func(l *testLine) int
		audit string
	}{
		{"change", func(i int) []string {
			pan := testkit.LuhnPAN(fmt.Sprintf("424242%09d", 500+i)) + "#"
			return []string{change, pan, exp, oldPIN, newPIN, newPIN,
				"wait:reason-details-mismatch", pan, exp, oldPIN, "wait:reason-details-mismatch", pan, exp, oldPIN}
		}, func(l *testLine) int { return len(l.Sims.CardHost.Received()) }, "unknown_card"},
		{"first setup", func(i int) []string {
			code := fmt.Sprintf("%03d", 100+i) // never the card's 731
			return []string{"2", setupCard, "0130", code, "wait:reason-details-mismatch", setupCard, "0130", code,
				"wait:reason-details-mismatch", setupCard, "0130", code}
		}, func(l *testLine) int {
			return int(counter(t, l, "ivrpin_keysecure_requests_total", "kind", "private_info"))
		}, "details_mismatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := startLine(t, func(c *config.Config) {
				c.LimitCallerMax, c.LimitCardMax = 100, 100
				c.LimitLineFailedMax, c.LimitLineWindow = 5, time.Hour
			}, demo.Options{})
			// Slow hosts keep every check in flight together.
			slow := faults.Fault{Kind: faults.Delay, Delay: 200 * time.Millisecond}
			l.Sims.CardHost.Faults.Set(slow)
			l.Sims.KeySecure.Faults.Set(slow)
			ends := make([]string, 10)
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, rec, err := l.place(t, aritest.CallOptions{CallerNumber: fmt.Sprintf("1555444%04d", i)}, c.keys(i)...)
					if err != nil {
						t.Error(err)
					}
					ends[i] = rec.End
				}()
			}
			wg.Wait()
			if !slices.Contains(ends, "line_guard") {
				t.Fatalf("no call was stopped by the guard: %v", ends)
			}
			if on, err := l.Line.LineGuard.On(t.Context()); err != nil || !on {
				t.Fatalf("guard on: %v %v", on, err)
			}
		})
	}
}

// A card an agent passed in (KeySecure's card_no) is counted as a typed one
// is: three calls of three wrong security codes each against a card limit
// of five send at most five checks to KeySecure for it.
func TestTransferredCardIsCounted(t *testing.T) {
	l := startLine(t, func(c *config.Config) {
		c.LimitCardMax, c.LimitCardWindow, c.LimitCardLockout = 5, time.Hour, time.Hour
		c.LimitCallerMax = 100
	}, demo.Options{})
	var ends []string
	for i := range 3 {
		_, rec := l.call(t, aritest.CallOptions{CallerNumber: fmt.Sprintf("1555333%04d", i),
			Args: []string{"mode=setup", "card_no=C202605220001", "cardholder_no=U202605220001"}},
			"137", "wait:reason-details-mismatch", "138", "wait:reason-details-mismatch", "139")
		ends = append(ends, rec.End)
	}
	if n := counter(t, l, "ivrpin_keysecure_requests_total", "kind", "private_info"); n > 5 {
		t.Fatalf("%v security-code checks reached KeySecure for one card, limit 5 (ends %v)", n, ends)
	}
	if ends[2] != "limited" {
		t.Fatalf("the third call was not limited: %v", ends)
	}
}

// The line's KeySecure budget: once five requests were sent in the window,
// nothing more goes, the check is heard as "not available", and the
// operator sees the refusals.
func TestKeySecureBudgetBoundsWhatChecksCost(t *testing.T) {
	l := startLine(t, func(c *config.Config) {
		c.LimitKeySecureMax, c.LimitKeySecureWindow = 5, time.Hour
		c.LimitCallerMax, c.LimitCardMax = 100, 100
	}, demo.Options{})
	var ends []string
	for i := range 3 {
		_, rec := l.call(t, aritest.CallOptions{CallerNumber: fmt.Sprintf("1555222%04d", i)}, "2", setupCard, "0130", "137")
		ends = append(ends, rec.Outcome)
	}
	sent := 0.0
	for _, kind := range keysecure.RequestKinds {
		sent += counter(t, l, "ivrpin_keysecure_requests_total", "kind", kind)
	}
	if sent > 5 || len(l.Sims.KeySecure.Received()) > 5 {
		t.Fatalf("%v requests sent (the simulator saw %d), budget 5", sent, len(l.Sims.KeySecure.Received()))
	}
	if !slices.Contains(ends, "unavailable") || counter(t, l, "ivrpin_keysecure_requests_refused_total", "", "") == 0 {
		t.Fatalf("the spent budget was not heard or counted: outcomes %v", ends)
	}
}
