package sim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
)

// Vault keeps PINs the way a host should: only as an HMAC under a key made
// at start, bound to the card, so neither simulator ever holds a clear PIN.
type Vault struct{ key []byte }

// NewVault makes a vault with a fresh random key.
func NewVault() *Vault {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &Vault{key: k}
}

// Seal returns the keyed hash of pin for the card id.
func (v *Vault) Seal(id string, pin []byte) []byte {
	m := hmac.New(sha256.New, v.key)
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write(pin)
	return m.Sum(nil)
}

// Matches reports, in constant time, whether sealed is pin's hash for id.
func (v *Vault) Matches(sealed []byte, id string, pin []byte) bool {
	return sealed != nil && hmac.Equal(sealed, v.Seal(id, pin))
}
