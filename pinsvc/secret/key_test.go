package secret

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// Every DES weak and semi-weak key, as K1 or as K2 of a double-length key,
// with parity or without, and keys of one byte repeated are refused; a
// good key passes.
func TestWeaknessRefusesWeakAndSemiWeakDESKeys(t *testing.T) {
	good := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}
	SetOddParity(good)
	if w := Weakness(TDES, good); w != "" {
		t.Fatalf("a good key: %s", w)
	}
	for i, w := range desWeak {
		for part := range 2 {
			for _, parity := range []bool{true, false} {
				raw := slices.Clone(good)
				binary.BigEndian.PutUint64(raw[8*part:], w)
				if !parity {
					raw[8*part] &^= 1 // the parity bit differs; DES ignores it
				}
				if got := Weakness(TDES, raw); !strings.Contains(got, "weak or semi-weak") {
					t.Errorf("weak key %d as part %d (parity %v): %q", i, part+1, parity, got)
				}
			}
		}
	}
	for _, b := range []byte{0x11, 0xFF} {
		if w := Weakness(AES, bytes.Repeat([]byte{b}, 32)); w == "" {
			t.Errorf("AES key of %#x repeated accepted", b)
		}
	}
}
