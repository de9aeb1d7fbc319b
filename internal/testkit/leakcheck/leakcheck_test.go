package leakcheck_test

import (
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/testkit/leakcheck"
)

func TestFind(t *testing.T) {
	s := leakcheck.Secrets{
		PANs:  []string{"4111111111111111"},
		Short: []string{"7392", "731"},
		Keys:  []string{"7392#"},
	}
	cases := []struct {
		name, text string
		leaks      int
	}{
		{"clean log line", `{"level":"info","pan":"411111******1111","msg":"call ended"}`, 0},
		{"PIN as a JSON value", `{"pin":"7392"}`, 1},
		{"PIN in a sentence", `current PIN 7392 refused`, 1},
		{"PIN after an equals sign", `PIN=7392&x=1`, 1},
		{"security code as a value", `{"cvv":731}`, 1},
		{"full PAN inside a word", `cardno4111111111111111x`, 1},
		{"typed key group", `dtmf 7392# seen`, 2},
		{"digits inside a ULID playback id", `DELETE /ari/playbacks/01jdx7392kq4731vzt-pb`, 0},
		{"digits inside a msg_id", `msg_id mi7392ab0731`, 0},
		{"PIN inside a longer number", `duration_ns 1173920000 channel 1764365222.7310`, 0},
		{"hex id with a digit-only section", `id 5a1f3c2e-7392-4abc-9d0e-1b2c3d4e5f60`, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := leakcheck.Find(c.text, s)
			if len(got) != c.leaks {
				t.Fatalf("%d leaks %v, want %d", len(got), got, c.leaks)
			}
			for _, l := range got {
				if strings.Contains(l, "7392") || strings.Contains(l, "4111111111111111") {
					t.Fatalf("the report repeats the secret: %s", l)
				}
			}
		})
	}
}
