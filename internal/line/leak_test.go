package line_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/demo"
	"github.com/ivr-pin/ivr-pin/internal/testkit/leakcheck"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/faults"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// The PINs, security codes and PANs the scenarios type. None is the last
// four digits of a test card, so a masked PAN cannot look like a leak.
var (
	typedPINs  = []string{"7392", "4829", "4828", "5557", "1357", "482915", "4826", "730164", "482916"}
	typedCodes = []string{"731", "402", "137"}
	typedPANs  = []string{"4111111111111111", "4012888888881881", "4000056655665556", "5105105105105100", "4111111111111112"}
)

// secrets is everything the scenarios typed, for leakcheck.
func secrets(keys ...[]string) leakcheck.Secrets {
	s := leakcheck.Secrets{PANs: typedPANs, Short: append(append([]string(nil), typedPINs...), typedCodes...)}
	for _, group := range keys {
		for _, k := range group {
			if len(k) > 3 && strings.HasSuffix(k, "#") {
				s.Keys = append(s.Keys, k)
			}
		}
	}
	return s
}

// TestNothingWrittenHoldsAPINOrAFullPAN runs every kind of call with debug
// logging and scans everything the line wrote: its logs, every REST request
// it made to Asterisk, and the audit records.
func TestNothingWrittenHoldsAPINOrAFullPAN(t *testing.T) {
	bothTransports(t, func(t *testing.T, tr string) {
		l := startLine(t, func(c *config.Config) { c.FirstDigitTimeout = 2 * time.Second }, demo.Options{Transport: tr, HostTimeout: 300 * time.Millisecond})
		scenarios := []struct {
			opts aritest.CallOptions
			keys []string
			hang string // hang up when this prompt plays
		}{
			{keys: []string{"1", "4111111111111111#", "1228", "7392#", "4829#", "4829#"}},
			{keys: []string{"1", "4111111111111112#", "4111111111111111#", "1228", "4829#", "5557#", "4828#", "4828#"}},
			{keys: []string{"1", "4111111111111111#", "1228", "1357#", "7392#", "7392#"}},
			{keys: []string{"1", "4000056655665556#", "0329", "4826#", "4829#", "4829#"}},
			{keys: []string{"2", "4012888888881881#", "0130", "137", "4012888888881881#", "0130", "731", "482915#", "482916#", "482915#", "482915#"}},
			{keys: []string{"2", "5105105105105100#", "0729", "402"}},
			{keys: []string{"1", "4111111111111111#", "1228", "4828#", "4829#"}, hang: "confirm-new-pin"},
			{opts: aritest.CallOptions{Args: []string{"transfer", "mode=setup", "return=ivr-pin-return/agent7/1"},
				Variables: map[string]string{"IVRPIN_CARD_NO": "C202605220001", "IVRPIN_CARDHOLDER_NO": "U202605220001"}},
				keys: []string{"731", "730164#", "730164#"}},
			{opts: aritest.CallOptions{Args: []string{"transfer", "mode=change"},
				Variables: map[string]string{"IVRPIN_PAN": "4111111111111111", "IVRPIN_EXPIRY": "2812"}},
				keys: []string{"4829#", "7392#", "7392#"}},
		}
		for i, s := range scenarios {
			if i == 2 {
				// One change whose answer is lost: the ambiguous path logs too.
				l.Sims.CardHost.Faults.Set(faults.Fault{Kind: faults.Reset, Count: 1})
			}
			ch, err := l.ARI.PlaceCall(s.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range s.keys {
				if s.hang != "" && aritest.Count(ch.Snapshot().Played, s.hang) > 0 {
					break
				}
				if err := ch.PressEachWhenAsked(prompts.AsksMedia, 20*time.Second, g); err != nil {
					t.Logf("scenario %d: the caller stopped typing: %v", i, err)
					break
				}
			}
			if s.hang != "" {
				_ = ch.WaitPlayed(5*time.Second, s.hang, 1)
				ch.Hangup()
			}
			if _, err := ch.WaitEnded(20 * time.Second); err != nil {
				t.Fatalf("scenario %d did not end: %v", i, err)
			}
			if _, err := l.RecordFor(ch.ID, 5*time.Second); err != nil {
				t.Fatalf("scenario %d: %v", i, err)
			}
		}

		var written strings.Builder
		written.WriteString(l.logs.String())
		for _, e := range l.ARI.RESTLog() {
			written.WriteString(e.Method + " " + e.Path + "?" + e.Query + " " + e.Body + "\n")
		}
		for _, r := range l.Records() {
			b, _ := json.Marshal(r)
			written.Write(b)
			written.WriteByte('\n')
		}
		// A line per key leaks as surely as the whole PIN: join every one-key
		// value of the structured logs, in order, and scan that too.
		var keys strings.Builder
		for _, ln := range strings.Split(l.logs.String(), "\n") {
			var fields map[string]any
			if json.Unmarshal([]byte(ln), &fields) != nil {
				continue
			}
			for _, v := range fields {
				if str, ok := v.(string); ok && len(str) == 1 && strings.Contains("0123456789*#", str) {
					keys.WriteString(str)
				}
			}
		}
		written.WriteString("\nkeys:" + keys.String() + "\n")
		out := written.String()
		// Every scenario's call record and the app's logs must be there (the
		// logger ran at debug level: startLine sets it).
		if len(out) < 1000 || strings.Count(out, `"msg":"call ended"`) < len(scenarios) {
			t.Fatalf("too little was captured to prove anything (%d bytes)", len(out))
		}
		var typed [][]string
		for _, sc := range scenarios {
			typed = append(typed, sc.keys)
		}
		for _, leak := range leakcheck.Find(out, secrets(typed...)) {
			t.Error(leak)
		}
		if !strings.Contains(out, "411111******1111") {
			t.Error("the masked PAN is missing: the audit lost its card reference")
		}
	})
}
