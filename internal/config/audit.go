package config

// Audit is where the audit trail goes.
type Audit struct {
	AuditFile string `envconfig:"AUDIT_FILE" desc:"append-only audit file (one JSON record per call, synced on write); unset: stdout, tagged log=audit"`
}
