package line

import (
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/flows"
)

// FuzzStasisArgs: transfer arguments and channel variables of any shape
// parse to a call without panicking, and never to a half-valid return
// target or sequence number.
func FuzzStasisArgs(f *testing.F) {
	f.Fuzz(func(t *testing.T, joined string, vars string) {
		args := strings.Split(joined, ",")
		get := func(name string) string {
			for _, kv := range strings.Split(vars, ";") {
				if k, v, ok := strings.Cut(kv, "="); ok && k == name {
					return v
				}
			}
			return ""
		}
		call := ParseTransfer(args, get)
		if r := call.Return; r != nil && (r.Context == "" || r.Extension == "" || r.Priority < 1) {
			t.Fatalf("half-valid return target %+v", r)
		}
		if s := call.SequenceNumber; s != "" && (len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9') {
			t.Fatalf("sequence number %q", s)
		}
		switch call.Mode {
		case "", flows.ModeChange, flows.ModeSetup:
		default:
			t.Fatalf("mode %q", call.Mode)
		}
	})
}

func TestParseTransfer(t *testing.T) {
	vars := map[string]string{"IVRPIN_PAN": "4111111111111111", "IVRPIN_EXPIRY": "2812", "IVRPIN_MODE": "setup", "IVRPIN_SEQ": "01"}
	cases := []struct {
		name string
		args []string
		want flows.Incoming
	}{
		{"nothing", nil, flows.Incoming{}},
		{"arguments", []string{"mode=change", "lang=ar", "return=agents/agent7/1", "seq=02"},
			flows.Incoming{Mode: flows.ModeChange, Language: "ar", SequenceNumber: "02", Return: &flows.Target{Context: "agents", Extension: "agent7", Priority: 1}}},
		{"variables only with transfer", []string{"mode=change"}, flows.Incoming{Mode: flows.ModeChange}},
		{"transfer reads variables; arguments win", []string{"transfer", "mode=change"},
			flows.Incoming{Mode: flows.ModeChange, PAN: "4111111111111111", Expiry: "2812", SequenceNumber: "01"}},
		{"unknown mode asks the menu", []string{"mode=agent"}, flows.Incoming{}},
		{"return without a priority", []string{"return=agents/agent7"}, flows.Incoming{}},
		{"return with priority 0", []string{"return=agents/agent7/0"}, flows.Incoming{}},
		{"return with an empty context", []string{"return=/agent7/1"}, flows.Incoming{}},
		{"three-digit sequence number", []string{"seq=001"}, flows.Incoming{}},
		{"a long agent extension", []string{"return=agents/5551234/1"}, flows.Incoming{Return: &flows.Target{Context: "agents", Extension: "5551234", Priority: 1}}},
		{"a PAN argument", []string{"transfer", "mode=change", "pan=4111111111111111"}, flows.Incoming{Unsafe: "card details"}},
		{"a PIN argument", []string{"pin=7392"}, flows.Incoming{Unsafe: "card details"}},
		{"a card number anywhere", []string{"mode=change", "4111111111111111"}, flows.Incoming{Unsafe: "card details"}},
		{"a card number in a value", []string{"return=agents/4111111111111111/1"}, flows.Incoming{Unsafe: "card details"}},
		{"KeySecure's card ids", []string{"mode=setup", "card_no=C202605220001", "cardholder_no=U202605220001"}, flows.Incoming{Mode: flows.ModeSetup}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ParseTransfer(c.args, func(n string) string { return vars[n] })
			if (c.want.Unsafe == "") != (got.Unsafe == "") || !strings.Contains(got.Unsafe, c.want.Unsafe) || strings.Contains(got.Unsafe, "4111") {
				t.Fatalf("unsafe %q, want %q", got.Unsafe, c.want.Unsafe)
			}
			if got.Mode != c.want.Mode || got.Language != c.want.Language || got.PAN != c.want.PAN || got.Expiry != c.want.Expiry ||
				got.SequenceNumber != c.want.SequenceNumber || (got.Return == nil) != (c.want.Return == nil) ||
				(got.Return != nil && *got.Return != *c.want.Return) {
				t.Fatalf("got %+v (return %+v), want %+v", got, got.Return, c.want)
			}
		})
	}
}
