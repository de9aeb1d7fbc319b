// Package hsm keeps the zone PIN key where a bank keeps it: in a PKCS#11
// token (a hardware security module in production, SoftHSM2 in tests and
// labs). The clear key never enters the process: each PIN block is
// enciphered by the token (CKM_DES3_ECB or CKM_AES_ECB, one block a call)
// through a bounded pool of sessions, and the key is found by its label and
// identified by a key check value (KCV) that the token computes.
//
// A token that fails (a module error, a lost session, a key that has gone)
// makes every encryption fail at once, so the line fails closed; Ready
// reports why; Watch reopens the token in the background and the line
// recovers without a restart once the token answers again with the same
// key (same KCV).
//
// The PKCS#11 binding is github.com/miekg/pkcs11, which needs cgo: a build
// with CGO_ENABLED=0 has everything but Open, which then says so (see
// nocgo.go). A cgo build needs the C library (glibc) and, at run time, the
// token vendor's module; it links nothing of it until a module is named.
package hsm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// Config says which token to open.
type Config struct {
	Module     string // path of the token's PKCS#11 library
	TokenLabel string // CKA_LABEL of the token (its CK_TOKEN_INFO label)
	PIN        string // the user PIN (CKU_USER)
	// Sessions bounds the sessions kept open for encryption (default 8):
	// each encryption holds one for two calls into the module.
	Sessions int
}

// KeyType is a key's algorithm and length as a key ceremony names it.
type KeyType string

// The key types a zone PIN key can have: the formats the software path
// supports.
const (
	TDES2  KeyType = "tdes2"  // double-length TDES, 16 bytes (CKK_DES2)
	TDES3  KeyType = "tdes3"  // triple-length TDES, 24 bytes (CKK_DES3)
	AES128 KeyType = "aes128" // CKK_AES, 16 bytes
	AES192 KeyType = "aes192" // CKK_AES, 24 bytes
	AES256 KeyType = "aes256" // CKK_AES, 32 bytes
	// HMAC256 is the audit trail's chain key: a generic secret of 32
	// bytes that signs with CKM_SHA256_HMAC and does nothing else.
	HMAC256 KeyType = "hmac256"
)

// KeyTypes lists them in the order usage texts show.
var KeyTypes = []KeyType{TDES2, TDES3, AES128, AES192, AES256, HMAC256}

// ParseKeyType reads a key type's name.
func ParseKeyType(s string) (KeyType, error) {
	for _, t := range KeyTypes {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown key type %q (want tdes2, tdes3, aes128, aes192, aes256 or hmac256)", s)
}

// IsHMAC reports whether the type is the audit's HMAC key (no cipher).
func (t KeyType) IsHMAC() bool { return t == HMAC256 }

// Algorithm is the block cipher of the type (HMAC256 has none: TDES's
// zero value is never used for it).
func (t KeyType) Algorithm() secret.Algorithm {
	if strings.HasPrefix(string(t), "aes") {
		return secret.AES
	}
	return secret.TDES
}

// Len is the key length in bytes.
func (t KeyType) Len() int {
	switch t {
	case TDES2, AES128:
		return 16
	case TDES3, AES192:
		return 24
	case AES256, HMAC256:
		return 32
	}
	return 0
}

// Info is what a token says of a key: never its value.
type Info struct {
	Label string
	Type  KeyType
	KCV   string // computed by the token; "" when the key may not encrypt
	// Attributes are the key's boolean attributes by their PKCS#11 names
	// (CKA_SENSITIVE, CKA_EXTRACTABLE, ...). An attribute the token does
	// not report is absent.
	Attributes map[string]bool
}

// Problem says why the key must not be used as a zone PIN key (it could
// leave the token in clear, or cannot encrypt), or "" when it may.
func (i Info) Problem() string { return i.ProblemFor(PINBlocks) }

// Purpose is what a key in the token is for: one purpose per key (PCI PIN
// 19), checked by its attributes.
type Purpose int

const (
	// PINBlocks is a zone PIN key: it encrypts PIN blocks and nothing else.
	PINBlocks Purpose = iota
	// AuditMAC is the audit trail's chain key: it signs (HMAC-SHA256),
	// and may verify, and does nothing else.
	AuditMAC
	// KeySecureSecret is KeySecure's apiSecret, an AES key that must
	// encrypt a first PIN and decrypt the card data KeySecure returns (its
	// contract's one key for both: a documented exception to PCI PIN 19,
	// docs/pci.md).
	KeySecureSecret
)

// ProblemFor says why the key must not be used for purpose, or "".
func (i Info) ProblemFor(purpose Purpose) string {
	if v, ok := i.Attributes["CKA_EXTRACTABLE"]; !ok || v {
		return "CKA_EXTRACTABLE is true: the token would hand the key out"
	}
	if v, ok := i.Attributes["CKA_SENSITIVE"]; !ok || !v {
		return "CKA_SENSITIVE is false: the token would hand the key out in clear"
	}
	p := purposes[purpose]
	if i.Type.IsHMAC() != (purpose == AuditMAC) {
		return p.wrongType
	}
	for _, a := range p.need {
		if !i.Attributes[a] {
			return a + " is false: " + p.needs
		}
	}
	// One purpose per key (PCI PIN 19).
	for _, a := range p.refuse {
		if i.Attributes[a] {
			return a + " is true: " + p.only
		}
	}
	return ""
}

// purposes are, for each purpose, the attributes a key must have and those
// it must not, and what a refusal says.
var purposes = map[Purpose]struct {
	need, refuse           []string
	wrongType, needs, only string
}{
	PINBlocks: {
		need: []string{"CKA_ENCRYPT"}, refuse: []string{"CKA_DECRYPT", "CKA_WRAP", "CKA_UNWRAP", "CKA_SIGN", "CKA_DERIVE"},
		wrongType: "CKA_ENCRYPT is false: the key cannot encrypt", needs: "the key cannot encrypt",
		only: "a zone PIN key must serve one purpose, encrypting PIN blocks (PCI PIN 19); make it again with only CKA_ENCRYPT",
	},
	KeySecureSecret: {
		need: []string{"CKA_ENCRYPT", "CKA_DECRYPT"}, refuse: []string{"CKA_WRAP", "CKA_UNWRAP", "CKA_SIGN", "CKA_DERIVE"},
		wrongType: "CKA_ENCRYPT is false: the key cannot encrypt",
		needs:     "KeySecure's secret must encrypt a first PIN and decrypt the card data KeySecure returns",
		only:      "KeySecure's secret may only encrypt and decrypt; make it again with the ceremony's --purpose keysecure",
	},
	AuditMAC: {
		need: []string{"CKA_SIGN"}, refuse: []string{"CKA_ENCRYPT", "CKA_DECRYPT", "CKA_WRAP", "CKA_UNWRAP", "CKA_DERIVE"},
		wrongType: "it is not an HMAC key that may sign: the audit key is a generic secret of 32 bytes with CKA_SIGN (key import --purpose audit --type hmac256)",
		needs:     "the audit key must sign (HMAC-SHA256)",
		only:      "the audit key may only sign (PCI PIN 19); make it again with the ceremony's --purpose audit",
	},
}

// ErrNoKey is returned when no key has the label.
var ErrNoKey = errors.New("no secret key with that label in the token")

// ErrNotReady is wrapped by every encryption refused while the token is not
// usable; the text after it says why.
var ErrNotReady = errors.New("PIN key token not available")

// What Open can fail on, for a caller that names the setting to fix.
var (
	// ErrModule: the module could not be loaded or did not start.
	ErrModule = errors.New("the PKCS#11 module")
	// ErrNoToken: no token with the label among the module's.
	ErrNoToken = errors.New("no such token")
	// ErrPIN: the token refused the user PIN, or has locked it.
	ErrPIN = errors.New("the token's user PIN")
)
