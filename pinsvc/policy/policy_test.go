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

func TestWeak(t *testing.T) {
	cases := map[string]bool{
		"1111": true, "2228": true, "9111": true, "1234": true, "4567": true,
		"9876": true, "5432": true, "123456": true, "111111": true, "048": false,
		"1357": false, "2580": false, "7392": false, "482915": false, "1212": false,
		"8901": false, // wrap-around is not sequential
		"1122": false, "9798": false, "135246": false, "903214": true,
	}
	for in, want := range cases {
		if got := Weak([]byte(in)); got != want {
			t.Errorf("Weak(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestPINPolicy(t *testing.T) {
	old := secret.PINFromString("7392")
	cases := []struct {
		name   string
		policy PINPolicy
		pin    string
		old    *secret.PIN
		want   Reason
	}{
		{"good 4", DefaultPINPolicy, "4829", old, ""},
		{"good 6", DefaultPINPolicy, "482915", old, ""},
		{"too short", DefaultPINPolicy, "482", old, ReasonPINLength},
		{"too long", DefaultPINPolicy, "4829150", old, ReasonPINLength},
		{"repeated", DefaultPINPolicy, "5551", old, ReasonPINWeak},
		{"ascending", DefaultPINPolicy, "1234", old, ReasonPINWeak},
		{"descending", DefaultPINPolicy, "9870", old, ReasonPINWeak},
		{"same as old", DefaultPINPolicy, "7392", old, ReasonPINSameAsOld},
		{"keysecure needs 6", KeySecurePINPolicy, "4829", nil, ReasonPINLength},
		{"keysecure 6 ok", KeySecurePINPolicy, "482915", nil, ""},
		{"keysecure weak", KeySecurePINPolicy, "482111", nil, ReasonPINWeak},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.policy.CheckNew(secret.PINFromString(c.pin), c.old)
			if got := ReasonOf(err); got != c.want {
				t.Fatalf("reason = %q, want %q", got, c.want)
			}
		})
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
