package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
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

// Key is a software symmetric key: its cipher, built once, and the key
// check value (KCV) that key custodians identify a key by. The raw bytes are
// not kept: NewKey copies them into the cipher's key schedule and the caller
// wipes its own copy. It prints only its algorithm, length and KCV.
//
// A TDES schedule holds derived subkeys only. An AES schedule begins with
// the key itself (the first round key is the key), which is one reason a
// production zone PIN key lives in a token (package hsm), not here.
type Key struct {
	alg   Algorithm
	n     int
	block cipher.Block
	kcv   string
}

// ErrKeyLength is returned for key material of a length the algorithm does
// not take. It never contains the key.
var ErrKeyLength = errors.New("key has the wrong length for its algorithm")

// NewKey builds a Key for alg from raw after checking its length. raw is
// not kept: the caller wipes it.
func NewKey(alg Algorithm, raw []byte) (*Key, error) {
	k := &Key{alg: alg, n: len(raw)}
	switch alg {
	case TDES:
		if len(raw) != 16 && len(raw) != 24 {
			return nil, fmt.Errorf("%w: TDES takes 16 or 24 bytes, got %d", ErrKeyLength, len(raw))
		}
		full := make([]byte, 24)
		defer Zero(full)
		copy(full, raw)
		if len(raw) == 16 { // K1 K2 K1
			copy(full[16:], raw[:8])
		}
		blk, err := des.NewTripleDESCipher(full)
		if err != nil {
			return nil, err
		}
		k.block = blk
	case AES:
		if len(raw) != 16 && len(raw) != 24 && len(raw) != 32 {
			return nil, fmt.Errorf("%w: AES takes 16, 24 or 32 bytes, got %d", ErrKeyLength, len(raw))
		}
		blk, err := aes.NewCipher(raw)
		if err != nil {
			return nil, err
		}
		k.block = blk
	default:
		return nil, errors.New("unknown key algorithm")
	}
	k.kcv = KCVOf(k.block)
	return k, nil
}

// ParseHexKey decodes hex key material (spaces allowed, as key components are
// often written in groups of four). The error never echoes the input.
// Strings cannot be wiped: production keys come through ParseHexKeyBytes
// from a file, or from a token.
func ParseHexKey(alg Algorithm, s string) (*Key, error) {
	b := []byte(s)
	defer Zero(b)
	return ParseHexKeyBytes(alg, b)
}

// ParseHexKeyBytes decodes hex key material held in a byte slice (spaces
// and surrounding white space allowed) without making a string of it. The
// decoded bytes are wiped; the caller wipes hexKey.
func ParseHexKeyBytes(alg Algorithm, hexKey []byte) (*Key, error) {
	raw, err := DecodeHex(hexKey)
	if err != nil {
		return nil, err
	}
	defer Zero(raw)
	return NewKey(alg, raw)
}

// DecodeHex decodes hex key material (spaces and surrounding white space
// allowed) into a new slice that the caller wipes. The error never echoes
// the input.
func DecodeHex(hexKey []byte) ([]byte, error) {
	digits := make([]byte, 0, len(hexKey))
	defer func() { Zero(digits[:cap(digits)]) }()
	for _, c := range hexKey {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		digits = append(digits, c)
	}
	raw := make([]byte, hex.DecodedLen(len(digits)))
	if _, err := hex.Decode(raw, digits); err != nil || len(digits)%2 != 0 {
		Zero(raw)
		return nil, errors.New("key is not valid hexadecimal")
	}
	return raw, nil
}

// KCVOf is the key check value of a block cipher: the first three bytes, in
// upper-case hex, of its encryption of an all-zero block (the classic
// method for TDES and the one most HSMs still print for AES).
func KCVOf(blk cipher.Block) string {
	kcv, _ := KCV(blk.BlockSize(), func(dst, src []byte) error { blk.Encrypt(dst, src); return nil })
	return kcv
}

// KCV is a key's check value from its block encryption (in software or in
// a token), as key custodians and HSM vendors print it: for TDES (8-byte
// blocks) the first three bytes of the encryption of a zero block; for AES
// (16-byte blocks) the first three bytes of AES-CMAC over a zero block
// (ANSI X9.24-1:2017; what payShield and AWS Payment Cryptography print).
//
// CMAC of one complete block M is E(M xor K1) with K1 the doubling of
// E(0) (RFC 4493, section 2.4), so for M = 0 it is E(dbl(E(0))): two ECB
// encryptions. A token key therefore needs no CKA_SIGN (which a key of one
// purpose must not have) for its KCV to be the CMAC one.
func KCV(blockSize int, encrypt func(dst, src []byte) error) (string, error) {
	zero := make([]byte, blockSize)
	out := make([]byte, blockSize)
	if err := encrypt(out, zero); err != nil {
		return "", err
	}
	if blockSize == 16 {
		k1 := cmacDouble(out)
		if err := encrypt(out, k1); err != nil {
			return "", err
		}
	}
	return strings.ToUpper(hex.EncodeToString(out[:3])), nil
}

// cmacDouble is RFC 4493's subkey step on a 16-byte block: shifted left
// one bit, xor 0x87 into the last byte when the top bit was set.
func cmacDouble(l []byte) []byte {
	out := make([]byte, len(l))
	carry := byte(0)
	for i := len(l) - 1; i >= 0; i-- {
		out[i] = l[i]<<1 | carry
		carry = l[i] >> 7
	}
	if carry != 0 {
		out[len(out)-1] ^= 0x87
	}
	return out
}

// Algorithm is the cipher the key is for.
func (k *Key) Algorithm() Algorithm { return k.alg }

// Len is the key length in bytes.
func (k *Key) Len() int { return k.n }

// Block returns the block cipher under the key (safe for concurrent use):
// TDES keys of 16 bytes are used as K1 K2 K1.
func (k *Key) Block() (cipher.Block, error) {
	if k == nil || k.block == nil {
		return nil, errors.New("key is not set")
	}
	return k.block, nil
}

// BlockSize is the cipher's block size in bytes.
func (k *Key) BlockSize() int { return k.block.BlockSize() }

// EncryptBlock enciphers one block (ECB). It never fails for a software key;
// the error is for keys held in a token.
func (k *Key) EncryptBlock(dst, src []byte) error {
	k.block.Encrypt(dst, src)
	return nil
}

// DecryptBlock deciphers one block (ECB): KeySecure's contract decrypts
// under its apiSecret; a zone PIN key never does.
func (k *Key) DecryptBlock(dst, src []byte) error {
	k.block.Decrypt(dst, src)
	return nil
}

// KCV is the key check value.
func (k *Key) KCV() string { return k.kcv }

// Describe is the safe description used by String and logs.
func (k *Key) Describe() string {
	if k == nil {
		return "key(unset)"
	}
	return fmt.Sprintf("%s-%d key KCV %s", k.alg, k.n*8, k.kcv)
}

// String implements fmt.Stringer.
func (k *Key) String() string { return k.Describe() }

// GoString implements fmt.GoStringer.
func (k *Key) GoString() string { return "secret.Key(" + k.Describe() + ")" }

// Format makes every verb print the safe description.
func (k *Key) Format(f fmt.State, verb rune) { formatMasked(f, verb, k.Describe()) }

// MarshalJSON writes the safe description.
func (k *Key) MarshalJSON() ([]byte, error) { return json.Marshal(k.Describe()) }

// Weakness says why key material must not be used as a zone PIN key, or ""
// when it may. HSMs refuse the same keys: all zeros, a TDES key whose parts
// repeat (K1 = K2 is single DES in disguise; K2 = K3 in a triple-length key
// likewise), and a TDES key without odd parity in every byte.
func Weakness(alg Algorithm, raw []byte) string {
	zero := true
	for _, b := range raw {
		if b != 0 {
			zero = false
			break
		}
	}
	if zero {
		return "is all zeros"
	}
	if OneByte(raw) {
		return "is one byte repeated"
	}
	if alg != TDES {
		return ""
	}
	if i := desWeakPart(raw); i >= 0 {
		return fmt.Sprintf("has a DES weak or semi-weak key as its part %d (FIPS 74)", i+1)
	}
	if len(raw) >= 16 && equalBytes(raw[:8], raw[8:16]) {
		return "has equal halves (K1 = K2: single DES in disguise)"
	}
	if len(raw) == 24 && equalBytes(raw[8:16], raw[16:24]) {
		return "has K2 = K3 (single DES in disguise)"
	}
	if !OddParity(raw) {
		return "lacks odd parity in every byte (as HSMs require of DES keys)"
	}
	return ""
}

// desWeak are the 4 weak and 12 semi-weak DES keys (FIPS 74; NIST SP
// 800-67 3.3.2), with odd parity; compared with the parity bits masked off.
var desWeak = [16]uint64{
	0x0101010101010101, 0xFEFEFEFEFEFEFEFE, 0xE0E0E0E0F1F1F1F1, 0x1F1F1F1F0E0E0E0E,
	0x01FE01FE01FE01FE, 0xFE01FE01FE01FE01, 0x1FE01FE00EF10EF1, 0xE01FE01FF10EF10E,
	0x01E001E001F101F1, 0xE001E001F101F101, 0x1FFE1FFE0EFE0EFE, 0xFE1FFE1FFE0EFE0E,
	0x011F011F010E010E, 0x1F011F010E010E01, 0xE0FEE0FEF1FEF1FE, 0xFEE0FEE0FEF1FEF1,
}

// desWeakPart is the index of the first 8-byte part of raw that is a DES
// weak or semi-weak key, or -1.
func desWeakPart(raw []byte) int {
	const noParity = 0xFEFEFEFEFEFEFEFE
	for i := 0; i+8 <= len(raw); i += 8 {
		p := binary.BigEndian.Uint64(raw[i:]) & noParity
		for _, w := range desWeak {
			if p == w&noParity {
				return i / 8
			}
		}
	}
	return -1
}

// OneByte reports whether b is one byte repeated (all zeros, say): key
// material with no entropy.
func OneByte(b []byte) bool {
	for _, c := range b {
		if c != b[0] {
			return false
		}
	}
	return true
}

// OddParity reports whether every byte has an odd number of set bits.
func OddParity(raw []byte) bool {
	for _, b := range raw {
		if bits.OnesCount8(b)%2 == 0 {
			return false
		}
	}
	return true
}

// SetOddParity sets each byte's low bit so the byte has odd parity (DES
// ignores that bit, so the key's cipher is unchanged).
func SetOddParity(raw []byte) {
	for i, b := range raw {
		if bits.OnesCount8(b&0xFE)%2 == 0 {
			raw[i] = b | 1
		} else {
			raw[i] = b &^ 1
		}
	}
}

// equalBytes compares without an early exit (the parts are key material).
func equalBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := range a {
		d |= a[i] ^ b[i]
	}
	return d == 0
}

// HMACCheckZeros is what an HMAC key's check value is computed over: a
// zero block of 16 bytes, as a cipher key's is over a zero block.
var HMACCheckZeros = make([]byte, 16)

// HMACKCV is an HMAC-SHA256 key's check value: the first three bytes of
// its MAC over HMACCheckZeros, in upper-case hex (the audit key's, printed
// by its ceremony and pinned by the configuration as a cipher key's is).
// sum computes the MAC (in software, or in a token).
func HMACKCV(sum func(data []byte) ([]byte, error)) (string, error) {
	mac, err := sum(HMACCheckZeros)
	if err != nil {
		return "", err
	}
	if len(mac) < 3 {
		return "", errors.New("the MAC is too short")
	}
	return strings.ToUpper(hex.EncodeToString(mac[:3])), nil
}
