package config

import (
	"strings"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// Rotation is the zone PIN key's next key: from NI_ZPK_NEXT_FROM on, a call
// seals its PINs under it and names it by NI_NEXT_KEY_ID, while calls that
// began before finish under the current key. Every instance switches at
// the same instant, by its clock alone (docs/operations.md has the
// runbook).
type Rotation struct {
	NIZPKNextLabel string `envconfig:"NI_ZPK_NEXT_LABEL" desc:"CKA_LABEL of the next zone PIN key in the token (a rotation: imported by the key ceremony under a new label)"`
	NIZPKNextKCV   string `envconfig:"NI_ZPK_NEXT_KCV" desc:"the next key's check value from its ceremony; required with NI_ZPK_NEXT_LABEL, and not the current key's"`
	NIZPKNext      string `envconfig:"NI_ZPK_NEXT" secret:"true" desc:"the next key in software, hex: labs only (production sets NI_ZPK_NEXT_LABEL)"`
	NINextKeyID    string `envconfig:"NI_NEXT_KEY_ID" desc:"the next key's encryption_key_id at the card host; required with a next key, and not NI_KEY_ID (which the current key then needs)"`
	NIZPKNextFrom  string `envconfig:"NI_ZPK_NEXT_FROM" desc:"the instant (RFC 3339, e.g. 2027-01-04T02:00:00Z) from which new calls use the next key; required with a next key"`

	nextSoft softwareKey // NI_ZPK_NEXT, once parsed into its cipher
}

// HasNextKey reports whether a rotation is configured (any of its settings).
func (r *Rotation) HasNextKey() bool {
	return r.NIZPKNextLabel != "" || r.NIZPKNextKCV != "" || r.nextSoft.given(r.NIZPKNext) ||
		r.NINextKeyID != "" || r.NIZPKNextFrom != ""
}

// NextFrom is NI_ZPK_NEXT_FROM parsed.
func (r *Rotation) NextFrom() (time.Time, error) {
	t, err := time.Parse(time.RFC3339, r.NIZPKNextFrom)
	if err != nil {
		return time.Time{}, problem("NI_ZPK_NEXT_FROM", "must be an RFC 3339 instant, e.g. 2027-01-04T02:00:00Z")
	}
	return t, nil
}

// rotationProblems checks a next key against the current one: it needs a
// key (in the token, pinned by its KCV, or in software), its own id at the
// card host beside the current key's, an instant, and must not be the
// current key.
func (c *Config) rotationProblems() []error {
	r := &c.Rotation
	if !r.HasNextKey() {
		return nil
	}
	var out []error
	add := func(v, reason string) { out = append(out, problem(v, reason)) }
	tokenNext, softNext := r.NIZPKNextLabel != "", r.nextSoft.given(r.NIZPKNext)
	switch {
	case tokenNext && softNext:
		add("NI_ZPK_NEXT_LABEL", "IVRPIN_NI_ZPK_NEXT is set too: the next key is in the token or in software, never both")
	case !tokenNext && !softNext:
		add("NI_ZPK_NEXT_LABEL", "required with a rotation (NI_NEXT_KEY_ID, NI_ZPK_NEXT_FROM): the next key, in the token (or NI_ZPK_NEXT in a lab)")
	case tokenNext && !c.TokenKey():
		add("NI_ZPK_NEXT_LABEL", "needs the current key in the token too (NI_ZPK_LABEL)")
	case tokenNext && r.NIZPKNextLabel == c.NIZPKLabel:
		add("NI_ZPK_NEXT_LABEL", "is the current key's label: import the next key under a new one")
	case softNext && c.TokenKey():
		add("NI_ZPK_NEXT", "the current key is in the token: the next one is too (NI_ZPK_NEXT_LABEL)")
	}
	if tokenNext {
		switch {
		case len(r.NIZPKNextKCV) != 6 || !isHex(r.NIZPKNextKCV):
			add("NI_ZPK_NEXT_KCV", "required with NI_ZPK_NEXT_LABEL: the next key's 6 hex digit check value from its ceremony")
		case strings.EqualFold(r.NIZPKNextKCV, c.NIZPKKCV):
			add("NI_ZPK_NEXT_KCV", "is the current key's KCV: the next key must be a new key")
		}
	}
	if softNext {
		if k, err := c.NextZPK(); err != nil {
			out = append(out, err)
		} else if cur, err := c.ZPK(); err == nil && cur != nil && cur.KCV() == k.KCV() {
			add("NI_ZPK_NEXT", "is the current key (the same KCV "+k.KCV()+"): the next key must be a new key")
		}
	}
	switch {
	case r.NINextKeyID == "":
		add("NI_NEXT_KEY_ID", "required with a next key: the card host tells the keys apart by encryption_key_id")
	case c.NIKeyID == "":
		add("NI_KEY_ID", "required with a next key: the current key's encryption_key_id, so the card host can tell the keys apart")
	case r.NINextKeyID == c.NIKeyID:
		add("NI_NEXT_KEY_ID", "is NI_KEY_ID: the next key needs an id of its own")
	case len(r.NINextKeyID) > cardhost.MaxKeyField:
		add("NI_NEXT_KEY_ID", "is too long for encryption_key_id")
	}
	if _, err := r.NextFrom(); err != nil {
		out = append(out, err)
	}
	if c.NIEncryptionMethod == cardhost.MethodAsymmetric {
		add("NI_ZPK_NEXT_LABEL", "a rotation of the zone PIN key needs SYMMETRIC_ENC")
	}
	return out
}

// softwareNextKeyProblems is serve's refusal of a software next key
// outside a lab, as of a software current key.
func (c *Config) softwareNextKeyProblems() []error {
	if !c.nextSoft.given(c.NIZPKNext) || c.Lab {
		return nil
	}
	return []error{problem(c.GivenAs("NI_ZPK_NEXT"), "a next zone PIN key in software is for labs (IVRPIN_LAB=true); production imports it into the HSM and sets NI_ZPK_NEXT_LABEL")}
}

// NextZPK parses the software next key (once: the cipher is kept); nil
// when none is given.
func (c *Config) NextZPK() (*secret.Key, error) {
	return c.nextSoft.parse("NI_ZPK_NEXT", c.ZPKAlgorithm(), c.NIZPKNext)
}

// NextKey is the card host client's rotation: the next key's encrypter
// under tokenNext (the token's key, or nil for the software next key), its
// id and instant; nil when none is configured.
func (c *Config) NextKey(tokenNext pinblock.Cipher) (*cardhost.NextKey, error) {
	if !c.HasNextKey() {
		return nil, nil
	}
	var key pinblock.Cipher = tokenNext
	if key == nil {
		k, err := c.NextZPK()
		if err != nil {
			return nil, err
		}
		if k == nil {
			return nil, problem("NI_ZPK_NEXT_LABEL", "the next key in the token is not open")
		}
		key = k
	}
	enc, err := c.CardHost.encrypter(key, "NI_ZPK_NEXT_LABEL")
	if err != nil {
		return nil, err
	}
	from, err := c.NextFrom()
	if err != nil {
		return nil, err
	}
	return &cardhost.NextKey{Encrypter: enc, KeyID: c.NINextKeyID, From: from}, nil
}
