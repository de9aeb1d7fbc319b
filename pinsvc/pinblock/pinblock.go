// Package pinblock builds and reads ISO 9564-1 PIN blocks (formats 0, 1, 3
// and 4) and encrypts them under a zone PIN key (TDES for the 8-byte formats,
// AES for format 4) or, for the card host's ASYNC_ENC method, under an RSA
// public key.
//
// It is our own small package rather than moov-io/pinblock: that library
// accepts non-digit PINs and has a debug writer that prints the PAN and PIN
// in clear, and wiping the clear block after use is easier to guarantee in
// code we own. The known answers published in ANSI X9.24-1 and elsewhere are
// its tests.
package pinblock

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// Format is an ISO 9564-1 PIN block format.
type Format int

// The supported formats.
const (
	ISO0 Format = 0 // PIN XOR PAN, 8 bytes: the card host default
	ISO1 Format = 1 // PIN with random fill, no PAN, 8 bytes
	ISO3 Format = 3 // PIN with random A-F fill XOR PAN, 8 bytes
	ISO4 Format = 4 // AES, 16 bytes, PIN and PAN fields enciphered in two passes
)

// ParseFormat reads "ISO0", "ISO-0", "0", "iso4" and the like.
func ParseFormat(s string) (Format, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimPrefix(strings.TrimPrefix(t, "ISO"), "-")
	switch t {
	case "0":
		return ISO0, nil
	case "1":
		return ISO1, nil
	case "3":
		return ISO3, nil
	case "4":
		return ISO4, nil
	}
	return 0, fmt.Errorf("unknown PIN block format %q (want ISO0, ISO1, ISO3 or ISO4)", s)
}

func (f Format) String() string { return fmt.Sprintf("ISO%d", int(f)) }

// BlockSize is the length in bytes of a block of this format.
func (f Format) BlockSize() int {
	if f == ISO4 {
		return 16
	}
	return 8
}

// NeedsPAN reports whether the format binds the block to the card number.
func (f Format) NeedsPAN() bool { return f != ISO1 }

// Errors. None of them carries a PIN or a PAN.
var (
	ErrPINLength = errors.New("PIN must be 4 to 12 digits")
	ErrPINDigits = errors.New("PIN must contain only digits")
	ErrPAN       = errors.New("PAN must be 13 to 19 digits for this format")
	ErrBlock     = errors.New("malformed PIN block")
	ErrFormat    = errors.New("unsupported PIN block format")
)

func checkPIN(pin []byte) error {
	if len(pin) < 4 || len(pin) > 12 {
		return ErrPINLength
	}
	for _, c := range pin {
		if c < '0' || c > '9' {
			return ErrPINDigits
		}
	}
	return nil
}

func checkPAN(pan string, minLen int) error {
	if len(pan) < minLen || len(pan) > 19 {
		return ErrPAN
	}
	for i := 0; i < len(pan); i++ {
		if pan[i] < '0' || pan[i] > '9' {
			return ErrPAN
		}
	}
	return nil
}

// panBlock is the format 0/3 account field: 0000 then the 12 right-most PAN
// digits excluding the check digit, packed as 8 bytes.
func panBlock(pan string) ([8]byte, error) {
	var out [8]byte
	if err := checkPAN(pan, 13); err != nil {
		return out, err
	}
	digits := pan[len(pan)-13 : len(pan)-1]
	for i := 0; i < 12; i++ {
		setNibble(out[:], 4+i, digits[i]-'0')
	}
	return out, nil
}

func setNibble(b []byte, i int, v byte) {
	if i%2 == 0 {
		b[i/2] = b[i/2]&0x0F | v<<4
	} else {
		b[i/2] = b[i/2]&0xF0 | v&0x0F
	}
}

func nibble(b []byte, i int) byte {
	if i%2 == 0 {
		return b[i/2] >> 4
	}
	return b[i/2] & 0x0F
}

// fill returns a nibble for the fill positions of each format.
type fillFunc func() (byte, error)

func randomNibble(r io.Reader, lo, hi byte) fillFunc {
	return func() (byte, error) {
		var b [1]byte
		for {
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return 0, err
			}
			// Rejection sampling keeps the distribution uniform.
			n := b[0] & 0x0F
			if n >= lo && n <= hi {
				return n, nil
			}
		}
	}
}

func constNibble(v byte) fillFunc { return func() (byte, error) { return v, nil } }

// pinField8 is the 8-byte PIN field of formats 0, 1 and 3.
func pinField8(control byte, pin []byte, fill fillFunc) ([8]byte, error) {
	var out [8]byte
	if err := checkPIN(pin); err != nil {
		return out, err
	}
	setNibble(out[:], 0, control)
	setNibble(out[:], 1, byte(len(pin)))
	for i, c := range pin {
		setNibble(out[:], 2+i, c-'0')
	}
	for i := 2 + len(pin); i < 16; i++ {
		n, err := fill()
		if err != nil {
			return out, err
		}
		setNibble(out[:], i, n)
	}
	return out, nil
}

// Clear builds the clear (unencrypted) 8-byte block of format 0, 1 or 3.
// rnd supplies the random fill of formats 1 and 3 (nil means crypto/rand).
// The caller wipes the result with secret.Zero when done.
func Clear(f Format, pin []byte, pan string, rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var field [8]byte
	var err error
	switch f {
	case ISO0:
		field, err = pinField8(0, pin, constNibble(0xF))
	case ISO1:
		field, err = pinField8(1, pin, randomNibble(rnd, 0, 15))
		if err == nil {
			return field[:], nil
		}
	case ISO3:
		field, err = pinField8(3, pin, randomNibble(rnd, 0xA, 0xF))
	default:
		return nil, ErrFormat
	}
	if err != nil {
		return nil, err
	}
	acct, err := panBlock(pan)
	if err != nil {
		secret.Zero(field[:])
		return nil, err
	}
	out := make([]byte, 8)
	for i := range out {
		out[i] = field[i] ^ acct[i]
	}
	secret.Zero(field[:])
	return out, nil
}

// ParseClear recovers the PIN digits from a clear block of format 0, 1 or 3,
// checking the control nibble, the length and the fill. The returned slice is
// the caller's to wipe.
func ParseClear(f Format, block []byte, pan string) ([]byte, error) {
	if len(block) != 8 {
		return nil, ErrBlock
	}
	field := make([]byte, 8)
	copy(field, block)
	defer secret.Zero(field)
	if f == ISO0 || f == ISO3 {
		acct, err := panBlock(pan)
		if err != nil {
			return nil, err
		}
		for i := range field {
			field[i] ^= acct[i]
		}
	} else if f != ISO1 {
		return nil, ErrFormat
	}
	pin, err := readPIN(field, byte(f))
	if err != nil {
		return nil, err
	}
	for i := 2 + len(pin); i < 16; i++ {
		d := nibble(field, i)
		if (f == ISO0 && d != 0xF) || (f == ISO3 && d < 0xA) {
			secret.Zero(pin)
			return nil, ErrBlock
		}
	}
	return pin, nil
}

// PINField4 is the 16-byte plaintext PIN field of format 4: control 4,
// length, PIN digits, 'A' fill to 16 nibbles, then 8 random bytes.
func PINField4(pin []byte, rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if err := checkPIN(pin); err != nil {
		return nil, err
	}
	out := make([]byte, 16)
	setNibble(out, 0, 4)
	setNibble(out, 1, byte(len(pin)))
	for i, c := range pin {
		setNibble(out, 2+i, c-'0')
	}
	for i := 2 + len(pin); i < 16; i++ {
		setNibble(out, i, 0xA)
	}
	if _, err := io.ReadFull(rnd, out[8:]); err != nil {
		secret.Zero(out)
		return nil, err
	}
	return out, nil
}

// PANField4 is the 16-byte plaintext PAN field of format 4: a nibble giving
// the PAN length minus 12, the PAN, and '0' fill to 32 nibbles.
func PANField4(pan string) ([]byte, error) {
	if err := checkPAN(pan, 12); err != nil {
		return nil, err
	}
	out := make([]byte, 16)
	setNibble(out, 0, byte(len(pan)-12))
	for i := 0; i < len(pan); i++ {
		setNibble(out, 1+i, pan[i]-'0')
	}
	return out, nil
}

// ParsePINField4 recovers the PIN from a format 4 plaintext PIN field.
func ParsePINField4(field []byte) ([]byte, error) {
	if len(field) != 16 {
		return nil, ErrBlock
	}
	pin, err := readPIN(field, 4)
	if err != nil {
		return nil, err
	}
	for i := 2 + len(pin); i < 16; i++ {
		if nibble(field, i) != 0xA {
			secret.Zero(pin)
			return nil, ErrBlock
		}
	}
	return pin, nil
}

// readPIN reads the control nibble, the length and the PIN digits that every
// format's PIN field starts with. The result is the caller's to wipe.
func readPIN(field []byte, control byte) ([]byte, error) {
	if nibble(field, 0) != control {
		return nil, ErrBlock
	}
	n := int(nibble(field, 1))
	if n < 4 || n > 12 {
		return nil, ErrBlock
	}
	pin := make([]byte, n)
	for i := 0; i < n; i++ {
		d := nibble(field, 2+i)
		if d > 9 {
			secret.Zero(pin)
			return nil, ErrBlock
		}
		pin[i] = '0' + d
	}
	return pin, nil
}
