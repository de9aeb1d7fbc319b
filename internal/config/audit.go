package config

import (
	"bytes"
	"encoding/hex"
)

// Audit is where the audit trail goes, and the key that chains it.
type Audit struct {
	AuditFile     string `envconfig:"AUDIT_FILE" desc:"append-only audit file (one JSON record per call, synced on write); unset: stdout, tagged log=audit"`
	AuditKey      string `envconfig:"AUDIT_KEY" secret:"true" desc:"hex HMAC-SHA256 key (at least 32 bytes; openssl rand -hex 32) that chains every audit record to the one before it, so a record removed, inserted or changed shows (ivr-pin audit check); required with AUDIT_FILE outside a lab (or AUDIT_KEY_LABEL); never the LIMIT_KEY"`
	AuditKeyLabel string `envconfig:"AUDIT_KEY_LABEL" desc:"CKA_LABEL of the audit chain's HMAC key in the PKCS#11 token (key import --purpose audit --type hmac256), instead of AUDIT_KEY: it never leaves the token"`
	AuditKeyKCV   string `envconfig:"AUDIT_KEY_KCV" desc:"the audit key's check value from its ceremony (HMAC over a zero block, 6 hex digits); required with AUDIT_KEY_LABEL"`
}

// problems checks the audit key's form and that it is not the limit key.
func (a *Audit) problems(limitKey string) []error {
	if a.AuditKeyLabel != "" {
		switch {
		case a.AuditKey != "":
			return []error{problem("AUDIT_KEY_LABEL", "AUDIT_KEY is set too: the audit key is in the token or in a file, never both")}
		case len(a.AuditKeyKCV) != 6 || !isHex(a.AuditKeyKCV):
			return []error{problem("AUDIT_KEY_KCV", "required with AUDIT_KEY_LABEL: the key's 6 hex digit check value from its ceremony")}
		}
		return nil
	}
	if a.AuditKey == "" {
		return nil
	}
	k, err := a.AuditKeyBytes()
	if err != nil {
		return []error{err}
	}
	if lk, err := hex.DecodeString(limitKey); err == nil && bytes.Equal(k, lk) {
		return []error{problem("AUDIT_KEY", "is the LIMIT_KEY: each key has one purpose (one that hashes card numbers must not also vouch for the audit trail); make another with `openssl rand -hex 32`")}
	}
	return nil
}

// AuditKeyBytes decodes AUDIT_KEY (nil when unset: records unchained).
func (a *Audit) AuditKeyBytes() ([]byte, error) {
	if a.AuditKey == "" {
		return nil, nil
	}
	return hexKey("AUDIT_KEY", a.AuditKey, 32, 12)
}

// HasAuditKey reports whether the audit records are chained (a key in a
// file or in the token).
func (a *Audit) HasAuditKey() bool { return a.AuditKey != "" || a.AuditKeyLabel != "" }
