package config

import (
	"bytes"
	"encoding/hex"
)

// Audit is where the audit trail goes, and the key that chains it.
type Audit struct {
	AuditFile string `envconfig:"AUDIT_FILE" desc:"append-only audit file (one JSON record per call, synced on write); unset: stdout, tagged log=audit"`
	AuditKey  string `envconfig:"AUDIT_KEY" secret:"true" desc:"hex HMAC-SHA256 key (at least 32 bytes; openssl rand -hex 32) that chains every audit record to the one before it, so a record removed, inserted or changed shows (ivr-pin audit check); required with AUDIT_FILE outside a lab; never the LIMIT_KEY"`
}

// problems checks the audit key's form and that it is not the limit key.
func (a *Audit) problems(limitKey string) []error {
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
