package secret

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// AES KCVs are AES-CMAC of a zero block (ANSI X9.24-1:2017), as openssl
// and the HSM vendors print them; TDES KCVs stay ECB of a zero block.
func TestKCVs(t *testing.T) {
	cases := []struct {
		name, hexKey, want string
		alg                Algorithm
	}{
		// openssl mac -cipher AES-128-CBC -macopt hexkey:... -in <16 zero bytes> CMAC
		{"AES-128, RFC 4493's key", "2b7e151628aed2a6abf7158809cf4f3c", "7AD386", AES},
		{"AES-256, RFC 4493's key", "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", "1A0B2D", AES},
		// ECB of zeros, as payShield prints a TDES KCV.
		{"TDES double length", "0123456789ABCDEFFEDCBA9876543210", "08D7B4", TDES},
	}
	for _, c := range cases {
		k, err := ParseHexKey(c.alg, c.hexKey)
		if err != nil {
			t.Fatal(err)
		}
		if k.KCV() != c.want {
			t.Errorf("%s: KCV %s, want %s", c.name, k.KCV(), c.want)
		}
	}
}

// The CMAC KCV agrees with openssl's for random keys of each AES length.
func TestAESKCVAgreesWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl")
	}
	zero := filepath.Join(t.TempDir(), "zero")
	if err := os.WriteFile(zero, make([]byte, 16), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{16, 24, 32} {
		raw := make([]byte, n)
		_, _ = rand.Read(raw)
		k, err := NewKey(AES, raw)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(openssl, "mac", "-cipher", fmt.Sprintf("AES-%d-CBC", 8*n), "-macopt", "hexkey:"+hex.EncodeToString(raw), "-in", zero, "CMAC").Output()
		if err != nil {
			t.Skipf("this openssl has no mac command: %v", err)
		}
		if want := strings.ToUpper(string(out[:6])); k.KCV() != want {
			t.Errorf("AES-%d: KCV %s, openssl's CMAC %s", 8*n, k.KCV(), want)
		}
	}
}

// PCI PIN 2: single-length DES is not an approved PIN cipher; TDES takes
// two or three parts, AES 128, 192 or 256 bits.
func TestKeysOfUnapprovedLengthsAreRefused(t *testing.T) {
	for _, c := range []struct {
		alg Algorithm
		n   int
	}{{TDES, 8}, {TDES, 32}, {AES, 8}, {AES, 20}} {
		raw := bytes.Repeat([]byte{0x5b}, c.n)
		if _, err := NewKey(c.alg, raw); !errors.Is(err, ErrKeyLength) {
			t.Errorf("%v key of %d bytes: %v, want ErrKeyLength", c.alg, c.n, err)
		}
	}
}
