package policy

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

func TestCheckPAN(t *testing.T) {
	cases := []struct {
		name, pan string
		want      Reason
	}{
		{"valid 16", "4111111111111111", ""},
		{"valid 19", "4111111111111111110", ""},
		{"valid 16 visa test", "4761739001010119", ""},
		{"15 digits", "411111111111111", ReasonIncomplete},
		{"empty", "", ReasonIncomplete},
		{"20 digits", "41111111111111111113", ReasonTooLong},
		{"luhn fails", "4111111111111112", ReasonNotValidCard},
		{"star", "4111*11111111111", ReasonNotDigits},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckPAN(c.pan)
			if got := ReasonOf(err); got != c.want {
				t.Fatalf("reason = %q, want %q", got, c.want)
			}
		})
	}
}

func TestLuhn(t *testing.T) {
	for in, want := range map[string]bool{
		"79927398713": true, "79927398710": false, "4012345678909": true,
		"0": false, "": false, "4x": false,
	} {
		if got := Luhn(in); got != want {
			t.Errorf("Luhn(%s) = %v", in, got)
		}
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, time.November, 24, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want Reason
	}{
		{"2611", ""}, // the current month is still valid
		{"2612", ""},
		{"3001", ""},
		{"2610", ReasonExpired},
		{"2512", ReasonExpired},
		{"2613", ReasonBadDate},
		{"2600", ReasonBadDate},
		{"261", ReasonIncomplete},
		{"26111", ReasonTooLong},
		{"26a1", ReasonNotDigits},
	}
	for _, c := range cases {
		e, err := ParseExpiry(c.in, now)
		if got := ReasonOf(err); got != c.want {
			t.Errorf("ParseExpiry(%s) reason %q, want %q", c.in, got, c.want)
		}
		if err == nil && e.YYMM() != c.in {
			t.Errorf("YYMM round trip %s -> %s", c.in, e.YYMM())
		}
	}
}

func TestParseExpiryAs(t *testing.T) {
	now := time.Date(2026, time.November, 24, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		order ExpiryOrder
		in    string
		yymm  string
		want  Reason
	}{
		{MMYY, "1228", "2812", ""}, // as printed on the card
		{YYMM, "2812", "2812", ""},
		{MMYY, "2812", "", ReasonBadDate}, // the host's order typed on an MMYY line
		{MMYY, "1026", "", ReasonExpired},
		{MMYY, "122", "", ReasonIncomplete},
		{MMYY, "12a8", "", ReasonNotDigits},
	}
	for _, c := range cases {
		e, err := ParseExpiryAs(c.order, c.in, now)
		if got := ReasonOf(err); got != c.want {
			t.Errorf("%s %s: reason %q, want %q", c.order, c.in, got, c.want)
		}
		if err == nil && e.YYMM() != c.yymm {
			t.Errorf("%s %s: got %s", c.order, c.in, e.YYMM())
		}
	}
}

func TestHasRun(t *testing.T) {
	cases := map[string]bool{
		"1111": true, "2228": true, "9111": true, "1234": true, "4567": true,
		"9876": true, "5432": true, "123456": true, "111111": true, "048": false,
		"1357": false, "2580": false, "7392": false, "482915": false, "1212": false,
		"8901": false, // wrap-around is not sequential
		"1122": false, "9798": false, "135246": false, "903214": true,
	}
	for in, want := range cases {
		if got := HasRun([]byte(in)); got != want {
			t.Errorf("HasRun(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestPINPolicy(t *testing.T) {
	exp := Expiry{Year: 2028, Month: time.December}
	facts := PINFacts{PAN: "4111111111114829", Expiry: exp, Current: secret.DigestPIN(secret.PINFromString("7392"))}
	cases := []struct {
		name   string
		policy PINPolicy
		pin    string
		facts  PINFacts
		want   Reason
	}{
		{"good 4", DefaultPINPolicy, "4482", facts, ""},
		{"good 6", DefaultPINPolicy, "582915", facts, ""},
		{"common but not easy elsewhere", DefaultPINPolicy, "2580", facts, ""},
		{"a double pair is not a rule", DefaultPINPolicy, "1123", facts, ""},
		{"too short", DefaultPINPolicy, "482", facts, ReasonPINTooShort},
		{"too long", DefaultPINPolicy, "4829150", facts, ReasonPINTooLong},
		{"same digits", DefaultPINPolicy, "555555", facts, ReasonPINSameDigits},
		{"same digits and common: one reason", DefaultPINPolicy, "1111", facts, ReasonPINSameDigits},
		{"ascending", DefaultPINPolicy, "3456", facts, ReasonPINSequence},
		{"descending", DefaultPINPolicy, "987654", facts, ReasonPINSequence},
		{"wrap-around is no run", DefaultPINPolicy, "8901", facts, ""},
		{"common", DefaultPINPolicy, "1212", facts, ReasonPINCommon},
		{"common 6969", DefaultPINPolicy, "6969", facts, ReasonPINCommon},
		{"card's last four", DefaultPINPolicy, "4829", facts, ReasonPINCardDigits},
		{"card's last four inside", DefaultPINPolicy, "048290", facts, ReasonPINCardDigits},
		{"expiry as printed", DefaultPINPolicy, "1228", facts, ReasonPINExpiryDigits},
		{"expiry as the host keeps it", DefaultPINPolicy, "281205", facts, ReasonPINExpiryDigits},
		{"no card known", DefaultPINPolicy, "4829", PINFacts{}, ""},
		{"same as current", DefaultPINPolicy, "7392", facts, ReasonPINSameAsOld},
		{"keysecure needs 6", KeySecurePINPolicy, "4729", PINFacts{}, ReasonPINTooShort},
		{"keysecure 6 ok", KeySecurePINPolicy, "582915", PINFacts{}, ""},
		{"keysecure runs", KeySecurePINPolicy, "582111", PINFacts{}, ReasonPINRuns},
		{"runs allowed off keysecure", DefaultPINPolicy, "582111", facts, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.policy.CheckNew(secret.PINFromString(c.pin), c.facts)
			if got := ReasonOf(err); got != c.want {
				t.Fatalf("reason = %q, want %q", got, c.want)
			}
		})
	}
}

func TestEveryCommonPINIsRefused(t *testing.T) {
	if len(CommonPINs) != 20 {
		t.Fatalf("%d common PINs, the studies' top 20 expected", len(CommonPINs))
	}
	for pin := range CommonPINs {
		if err := DefaultPINPolicy.CheckNew(secret.PINFromString(pin), PINFacts{}); err == nil {
			t.Errorf("%s accepted", pin)
		}
	}
}

func TestGuidanceFollowsTheTable(t *testing.T) {
	if g := DefaultPINPolicy.Guidance(); len(g) != 1 || g[0] != GuideEasy {
		t.Fatalf("default guidance %v", g)
	}
	if g := KeySecurePINPolicy.Guidance(); len(g) != 2 || g[1] != GuideRuns {
		t.Fatalf("KeySecure guidance %v", g)
	}
}

func TestCheckConfirm(t *testing.T) {
	if err := CheckConfirm(secret.PINFromString("4829"), secret.PINFromString("4829")); err != nil {
		t.Fatal(err)
	}
	err := CheckConfirm(secret.PINFromString("4829"), secret.PINFromString("4828"))
	if ReasonOf(err) != ReasonPINMismatch {
		t.Fatalf("mismatch not reported: %v", err)
	}
	var r *Rejection
	if !errors.As(err, &r) || r.Field != "PIN" {
		t.Fatal("rejection has no field")
	}
}

func ExampleCheckPAN() {
	err := CheckPAN("4111111111111112")
	fmt.Println(ReasonOf(err))
	// Output: not_valid
}
