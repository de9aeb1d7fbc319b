package keysecure

import (
	"encoding/json"
	"testing"
)

// FuzzAnswer: any answer body decodes (or fails) without panicking, as an
// envelope and as each data shape the client reads.
func FuzzAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		var env Envelope
		if json.Unmarshal(body, &env) != nil {
			return
		}
		var td TokenData
		_ = json.Unmarshal(env.Data, &td)
		var cl CardListData
		_ = json.Unmarshal(env.Data, &cl)
		var sp SetPINData
		_ = json.Unmarshal(env.Data, &sp)
	})
}

// FuzzPrivateInfo: any decrypted private info parses without panicking; a
// parsed PAN and security code are digits only and the buffer is wiped.
func FuzzPrivateInfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, plain []byte) {
		buf := append([]byte(nil), plain...)
		pi, err := parsePrivateInfo(buf)
		if err != nil {
			return
		}
		for _, b := range [][]byte{pi.pan, pi.cvv} {
			if len(b) == 0 {
				t.Fatal("empty field accepted")
			}
			for _, c := range b {
				if c < '0' || c > '9' {
					t.Fatalf("non-digit %q kept", c)
				}
			}
		}
		own := pi.buf
		pi.wipe()
		for _, c := range own {
			if c != 0 {
				t.Fatal("private info not wiped")
			}
		}
		for _, c := range buf {
			if c != 0 {
				t.Fatal("decrypted plaintext not wiped")
			}
		}
	})
}
