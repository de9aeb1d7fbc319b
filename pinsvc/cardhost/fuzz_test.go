package cardhost

import (
	"testing"

	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// FuzzAnswer: any body the card host (or something in front of it) sends
// is classified without panicking, into a known outcome, with bounded
// fields; and only a well-formed answer to our msg_id can say "changed".
func FuzzAnswer(f *testing.F) {
	k, _ := secret.ParseHexKey(secret.TDES, "0123456789ABCDEFFEDCBA9876543210")
	z, _ := pinblock.NewZPK(k, pinblock.ISO0)
	c, err := New(Config{URL: "https://cards.bank.example/x", BankID: "TB01", EncryptionMethod: MethodSymmetric, Encrypter: z})
	if err != nil {
		f.Fatal(err)
	}
	known := map[outcome.Kind]bool{outcome.Changed: true, outcome.WrongPIN: true, outcome.NotEligible: true, outcome.NoPINYet: true,
		outcome.WeakPIN: true, outcome.Rejected: true, outcome.Ambiguous: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, ok := c.classifyNI("0123456789AB", body)
		if !known[res.Kind] {
			t.Fatalf("kind %q", res.Kind)
		}
		if len(res.Code) > 20 || len(res.Description) > 100 || len(res.Reference) > 64 {
			t.Fatalf("unbounded fields: %d %d %d", len(res.Code), len(res.Description), len(res.Reference))
		}
		if !ok && res.Kind != outcome.Ambiguous {
			t.Fatalf("a body that is not an answer gave %s", res.Kind)
		}
	})
}
