package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Algorithm names the block cipher a key is for.
type Algorithm int

// The algorithms a zone PIN key can have.
const (
	TDES Algorithm = iota + 1 // double (16 bytes) or triple (24 bytes) length
	AES                       // 16, 24 or 32 bytes
)

func (a Algorithm) String() string {
	switch a {
	case TDES:
		return "TDES"
	case AES:
		return "AES"
	}
	return "unknown"
}

// Key is symmetric key material. It prints only its algorithm, length and key
// check value (KCV), which is how key custodians identify a key without
// seeing it.
type Key struct {
	alg Algorithm
	b   []byte
}

// ErrKeyLength is returned for key material of a length the algorithm does
// not take. It never contains the key.
var ErrKeyLength = errors.New("key has the wrong length for its algorithm")

// NewKey copies raw into a Key for alg after checking its length.
func NewKey(alg Algorithm, raw []byte) (*Key, error) {
	switch alg {
	case TDES:
		if len(raw) != 16 && len(raw) != 24 {
			return nil, fmt.Errorf("%w: TDES takes 16 or 24 bytes, got %d", ErrKeyLength, len(raw))
		}
	case AES:
		if len(raw) != 16 && len(raw) != 24 && len(raw) != 32 {
			return nil, fmt.Errorf("%w: AES takes 16, 24 or 32 bytes, got %d", ErrKeyLength, len(raw))
		}
	default:
		return nil, errors.New("unknown key algorithm")
	}
	return &Key{alg: alg, b: append([]byte(nil), raw...)}, nil
}

// ParseHexKey decodes hex key material (spaces allowed, as key components are
// often written in groups of four). The error never echoes the input.
func ParseHexKey(alg Algorithm, s string) (*Key, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	raw, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("key is not valid hexadecimal")
	}
	defer Zero(raw)
	return NewKey(alg, raw)
}

// Algorithm is the cipher the key is for.
func (k *Key) Algorithm() Algorithm { return k.alg }

// Len is the key length in bytes.
func (k *Key) Len() int { return len(k.b) }

// Block returns a block cipher under the key: TDES keys of 16 bytes are used
// as K1 K2 K1.
func (k *Key) Block() (cipher.Block, error) {
	switch k.alg {
	case TDES:
		raw := k.b
		if len(raw) == 16 {
			raw = append(append(make([]byte, 0, 24), k.b...), k.b[:8]...)
			defer Zero(raw)
		}
		return des.NewTripleDESCipher(raw)
	case AES:
		return aes.NewCipher(k.b)
	}
	return nil, errors.New("unknown key algorithm")
}

// KCV is the key check value: the first three bytes, in upper-case hex, of
// the key's encryption of an all-zero block (the classic method for TDES and
// the one most HSMs still print for AES).
func (k *Key) KCV() string {
	blk, err := k.Block()
	if err != nil {
		return "invalid"
	}
	zero := make([]byte, blk.BlockSize())
	out := make([]byte, blk.BlockSize())
	blk.Encrypt(out, zero)
	return strings.ToUpper(hex.EncodeToString(out[:3]))
}

// Describe is the safe description used by String and logs.
func (k *Key) Describe() string {
	if k == nil {
		return "key(unset)"
	}
	return fmt.Sprintf("%s-%d key KCV %s", k.alg, len(k.b)*8, k.KCV())
}

// String implements fmt.Stringer.
func (k *Key) String() string { return k.Describe() }

// GoString implements fmt.GoStringer.
func (k *Key) GoString() string { return "secret.Key(" + k.Describe() + ")" }

// Format makes every verb print the safe description.
func (k *Key) Format(f fmt.State, verb rune) { formatMasked(f, verb, k.Describe()) }

// MarshalJSON writes the safe description.
func (k *Key) MarshalJSON() ([]byte, error) { return json.Marshal(k.Describe()) }
