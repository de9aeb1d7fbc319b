package config

import (
	"os"
	"strings"

	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// Token is where the zone PIN key is: in a PKCS#11 token (an HSM; SoftHSM2
// in labs) found by its label and pinned by its check value, or in
// software for a lab and the demo.
type Token struct {
	NIZPK            string `envconfig:"NI_ZPK" secret:"true" desc:"software zone PIN key, hex (TDES 16/24 bytes with odd parity; AES for ISO4): labs and the demo only; production sets NI_ZPK_LABEL"`
	NIZPKLabel       string `envconfig:"NI_ZPK_LABEL" desc:"CKA_LABEL of the zone PIN key in the PKCS#11 token (set instead of NI_ZPK, never both)"`
	NIZPKKCV         string `envconfig:"NI_ZPK_KCV" desc:"the zone PIN key's check value from the key ceremony (6 hex digits; AES: CMAC, TDES: ECB of zeros); required with NI_ZPK_LABEL; start-up fails if the key's differs"`
	PKCS11Module     string `envconfig:"PKCS11_MODULE" desc:"path of the token's PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so)"`
	PKCS11TokenLabel string `envconfig:"PKCS11_TOKEN_LABEL" desc:"label of the token that holds the zone PIN key"`
	PKCS11PIN        string `envconfig:"PKCS11_PIN" secret:"true" desc:"the token's user PIN (give it as PKCS11_PIN_FILE)"`
	PKCS11Sessions   int    `envconfig:"PKCS11_SESSIONS" default:"8" desc:"token sessions kept open for PIN block encryption (1 to 64)"`

	// The software zone PIN key, once parsed into its cipher.
	zpkSoft softwareKey
}

// problems checks where the zone PIN key is: a software key, or a key in a
// PKCS#11 token with everything needed to reach it; labels are the
// settings that name a key in the token (tokenLabels). given says whether
// a secret setting was given (a refused file counts).
func (k *Token) problems(given func(name, value string) bool, labels []string) []error {
	var out []error
	add := func(v, reason string) { out = append(out, problem(v, reason)) }
	if k.TokenKey() && k.HasSoftwareZPK() {
		add("NI_ZPK_LABEL", "IVRPIN_NI_ZPK (or _FILE) is set too: the zone PIN key is either in the token or in software, never both")
	}
	if k.NIZPKKCV != "" {
		if len(k.NIZPKKCV) != 6 || !isHex(k.NIZPKKCV) {
			add("NI_ZPK_KCV", "must be the key's 6 hex digit check value")
		} else if zpk := k.zpkSoft.key; zpk != nil && !strings.EqualFold(zpk.KCV(), k.NIZPKKCV) {
			add("NI_ZPK_KCV", "does not match the key: its KCV is "+zpk.KCV())
		}
	}
	if k.PKCS11Sessions < 1 || k.PKCS11Sessions > 64 {
		add("PKCS11_SESSIONS", "must be 1 to 64")
	}
	if k.PKCS11Module != "" {
		if st, err := os.Stat(k.PKCS11Module); err != nil || st.IsDir() {
			add("PKCS11_MODULE", "no such file: "+k.PKCS11Module)
		}
	}
	if k.TokenKey() && k.NIZPKKCV == "" {
		// Pinned: a key substituted under the same label is refused
		// (PCI PIN 17-18), not used in silence.
		add("NI_ZPK_KCV", "required with NI_ZPK_LABEL: the check value from the key ceremony pins the key the token holds under that label")
	}
	if len(labels) == 0 {
		return out
	}
	for _, need := range []struct{ name, value string }{
		{"PKCS11_MODULE", k.PKCS11Module}, {"PKCS11_TOKEN_LABEL", k.PKCS11TokenLabel}, {"PKCS11_PIN", k.PKCS11PIN},
	} {
		if !given(need.name, need.value) {
			add(need.name, "required with "+labels[0]+": that key is in a PKCS#11 token")
		}
	}
	return out
}

// tokenLabels are the settings, of those set, that name a key in the
// PKCS#11 token: each needs the token's settings.
func (c *Config) tokenLabels() []string {
	var out []string
	for _, l := range []struct{ name, value string }{
		{"NI_ZPK_LABEL", c.NIZPKLabel}, {"KEYSECURE_KEY_LABEL", c.KeySecureKeyLabel}, {"AUDIT_KEY_LABEL", c.AuditKeyLabel},
	} {
		if l.value != "" {
			out = append(out, l.name)
		}
	}
	return out
}

// HSM is the token's configuration.
func (k *Token) HSM() hsm.Config {
	return hsm.Config{Module: k.PKCS11Module, TokenLabel: k.PKCS11TokenLabel, PIN: k.PKCS11PIN, Sessions: k.PKCS11Sessions}
}

// TokenKey reports whether the zone PIN key is in a PKCS#11 token.
func (k *Token) TokenKey() bool { return k.NIZPKLabel != "" }

// HasSoftwareZPK reports whether a software zone PIN key is configured
// (IVRPIN_NI_ZPK or IVRPIN_NI_ZPK_FILE).
func (k *Token) HasSoftwareZPK() bool {
	return k.zpkSoft.given(k.NIZPK)
}

// ZPKFile is IVRPIN_NI_ZPK_FILE, the software zone PIN key's file ("" when
// the key is in the environment, a token, or unset).
func (k *Token) ZPKFile() string { return k.zpkSoft.file }

// ZPK parses the software zone PIN key for the configured format (once: the
// cipher is kept, the hex is not).
func (c *Config) ZPK() (*secret.Key, error) {
	k, err := c.zpkSoft.parse("NI_ZPK", c.ZPKAlgorithm(), c.NIZPK)
	if k == nil && err == nil {
		return nil, problem("NI_ZPK", "required for SYMMETRIC_ENC (or NI_ZPK_LABEL, a key in a PKCS#11 token)")
	}
	return k, err
}

// Encrypter builds the card host's PIN block encrypter. tokenKey is the
// zone PIN key found in the PKCS#11 token (NI_ZPK_LABEL); nil means the
// software key (or RSA, for ASYNC_ENC).
func (c *Config) Encrypter(tokenKey pinblock.Cipher) (pinblock.Encrypter, error) {
	switch {
	case c.NIEncryptionMethod == cardhost.MethodAsymmetric:
		return c.CardHost.encrypter(nil, "")
	case tokenKey != nil:
		return c.CardHost.encrypter(tokenKey, "NI_ZPK_LABEL")
	case c.TokenKey():
		return nil, problem("NI_ZPK_LABEL", "the key in the token is not open")
	}
	k, err := c.ZPK()
	if err != nil {
		return nil, err
	}
	return c.CardHost.encrypter(k, "NI_ZPK")
}

// CardHostClient is the card-host client's configuration; tokenKey as for
// Encrypter, and tokenNext the next key found in the token (a rotation).
func (c *Config) CardHostClient(tokenKey, tokenNext pinblock.Cipher) (cardhost.Config, error) {
	enc, err := c.Encrypter(tokenKey)
	if err != nil {
		return cardhost.Config{}, err
	}
	cfg, err := c.CardHost.ClientConfig(enc, c.AllowInsecureHosts)
	if err != nil {
		return cardhost.Config{}, err
	}
	cfg.Next, err = c.NextKey(tokenNext)
	return cfg, err
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}
