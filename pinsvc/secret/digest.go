package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
)

// PINDigest stands for a PIN that has been sealed and wiped but must still
// be told apart from a new one ("the new PIN must not be the current
// one"): an HMAC-SHA256 of its digits under a key of its own, drawn at
// random and never used again. It holds no digit, so the current PIN is in
// clear only from its entry to its seal, not through the new PIN's two
// entries. What it does not do: a reader of the process's memory who finds
// both the key and the digest can still try every PIN of the length against
// them; against that reader stand the process's own guards (no core, not
// dumpable, memory locked; internal/harden).
type PINDigest struct {
	key, sum []byte
}

// DigestPIN makes the digest of p (p is left as it is; the caller wipes it).
func DigestPIN(p *PIN) *PINDigest {
	d := &PINDigest{key: make([]byte, 32)}
	_, _ = rand.Read(d.key)
	d.sum = d.mac(p.Bytes())
	return d
}

func (d *PINDigest) mac(digits []byte) []byte {
	m := hmac.New(sha256.New, d.key)
	m.Write(digits)
	return m.Sum(nil)
}

// Matches reports whether digits are the digested PIN (constant time);
// false for a nil or wiped digest.
func (d *PINDigest) Matches(digits []byte) bool {
	if d == nil || d.key == nil {
		return false
	}
	return hmac.Equal(d.mac(digits), d.sum)
}

// Wipe clears the key and the digest.
func (d *PINDigest) Wipe() {
	if d == nil {
		return
	}
	Zero(d.key)
	Zero(d.sum)
	d.key, d.sum = nil, nil
}

// The digest prints as the mask, as a PIN does.
func (d *PINDigest) String() string                { return Masked }
func (d *PINDigest) GoString() string              { return "secret.PINDigest(" + Masked + ")" }
func (d *PINDigest) Format(f fmt.State, verb rune) { formatMasked(f, verb, Masked) }
func (d *PINDigest) MarshalJSON() ([]byte, error)  { return json.Marshal(Masked) }
func (d *PINDigest) MarshalText() ([]byte, error)  { return []byte(Masked), nil }
