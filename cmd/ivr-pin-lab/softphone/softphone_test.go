package softphone

import (
	"github.com/zaf/g711"

	"bytes"
	"testing"
)

// RFC 4733 section 2.3: event, E|R|volume, duration (network order).
func TestEventPayload(t *testing.T) {
	cases := []struct {
		key      byte
		end      bool
		duration uint16
		want     []byte
	}{
		{'5', false, 160, []byte{5, 10, 0x00, 0xA0}},
		{'0', false, 800, []byte{0, 10, 0x03, 0x20}},
		{'*', true, 800, []byte{10, 0x80 | 10, 0x03, 0x20}},
		{'#', true, 800, []byte{11, 0x80 | 10, 0x03, 0x20}},
	}
	for _, c := range cases {
		if got := event(c.key, c.end, c.duration); !bytes.Equal(got, c.want) {
			t.Errorf("event(%q, %v, %d) = % x, want % x", c.key, c.end, c.duration, got, c.want)
		}
	}
}

// G.711 known values, as sox decodes them (printf "\xef" | sox -t ul -r 8000 - -t s16 -L - | od -t d2).
func TestG711Decoding(t *testing.T) {
	for _, c := range []struct {
		code byte
		want int16
	}{{0xFF, 0}, {0x7F, 0}, {0x00, -32124}, {0x80, 32124}, {0xEF, 132}} {
		if got := g711.DecodeUlawFrame(c.code); got != c.want {
			t.Errorf("ulaw(%#x) = %d, want %d", c.code, got, c.want)
		}
	}
	for _, c := range []struct {
		code byte
		want int16
	}{{0xD5, 8}, {0x55, -8}, {0xAA, 32256}, {0x2A, -32256}} {
		if got := g711.DecodeAlawFrame(c.code); got != c.want {
			t.Errorf("alaw(%#x) = %d, want %d", c.code, got, c.want)
		}
	}
}

func TestArguments(t *testing.T) {
	for _, ok := range []string{"sip:1000@127.0.0.1", "sip:100@pbx.example:5070"} {
		u, err := ParseTarget(ok)
		if err != nil || u.Port == 0 {
			t.Errorf("ParseTarget(%q) = %v, %v", ok, u, err)
		}
	}
	for _, bad := range []string{"1000@127.0.0.1", "sip:127.0.0.1", "sips:1000@h", "sip:@h", ""} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
	if CheckKeys([]string{"1", "4111#", "*9"}) != nil || CheckKeys([]string{"12a"}) == nil || CheckKeys([]string{"1 2"}) == nil {
		t.Error("CheckKeys")
	}
	if r := (Result{Sent: 6, Groups: 6, FarEndHungUp: true}); !r.OK() {
		t.Error("a complete call is not OK")
	}
	if r := (Result{Sent: 5, Groups: 6, FarEndHungUp: true}); r.OK() {
		t.Error("a call that hung up before the last group is OK")
	}
}
