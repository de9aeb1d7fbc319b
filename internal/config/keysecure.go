package config

import (
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
)

// KeySecure is the card platform that sets a physical card's first PIN and
// shows the card's private details for the security-code check.
type KeySecure struct {
	KeySecureURL       string        `envconfig:"KEYSECURE_URL" secret:"url" desc:"KeySecure base URL; unset: the built-in simulator (console only)"`
	KeySecureAPIKey    string        `envconfig:"KEYSECURE_API_KEY" secret:"true" desc:"merchant Api-Key"`
	KeySecureAPISecret string        `envconfig:"KEYSECURE_API_SECRET" secret:"true" desc:"merchant apiSecret (16, 24 or 32 bytes), in software; or set KEYSECURE_KEY_LABEL"`
	KeySecureKeyLabel  string        `envconfig:"KEYSECURE_KEY_LABEL" desc:"CKA_LABEL of the apiSecret as an AES key in the PKCS#11 token (key import --purpose keysecure): it never leaves the token"`
	KeySecureKeyKCV    string        `envconfig:"KEYSECURE_KEY_KCV" desc:"the apiSecret key's check value from its ceremony (AES CMAC, 6 hex digits); required with KEYSECURE_KEY_LABEL"`
	KeySecureTimeout   time.Duration `envconfig:"KEYSECURE_TIMEOUT" default:"10s" desc:"KeySecure request timeout"`
	KeySecureLanguage  string        `envconfig:"KEYSECURE_LANGUAGE" desc:"Language header: en_US or zh_CN"`
	KeySecureLookback  time.Duration `envconfig:"KEYSECURE_LOOKBACK" default:"17520h" desc:"how far back to search card creation dates"`
	KeySecureTimezone  string        `envconfig:"KEYSECURE_TIMEZONE" desc:"Timezone header (platform default UTC+8)"`
	KeySecureSkew      time.Duration `envconfig:"KEYSECURE_CLOCK_SKEW" default:"2s" desc:"taken off the Timestamp header, so a fast local clock is not refused as 'in the future' (0 to 30s)"`
	KeySecureMaxList   int           `envconfig:"KEYSECURE_MAX_LIST_REQUESTS" default:"40" desc:"card list requests one card search may make"`
	KeySecureMaxCands  int           `envconfig:"KEYSECURE_MAX_CANDIDATES" default:"3" desc:"cards (same last four, physical) whose private info one search may fetch"`
}

// problems checks KeySecure's URL, credentials and bounds.
func (k *KeySecure) problems(allowInsecure bool) []error {
	var out []error
	add := func(v, reason string) { out = append(out, problem(v, reason)) }
	if k.KeySecureURL != "" {
		if err := hostURLProblem("KEYSECURE_URL", k.KeySecureURL, allowInsecure); err != nil {
			out = append(out, err)
		}
		if k.KeySecureAPIKey == "" {
			add("KEYSECURE_API_KEY", "required when KEYSECURE_URL is set")
		}
		switch {
		case k.KeySecureKeyLabel != "" && k.KeySecureAPISecret != "":
			add("KEYSECURE_KEY_LABEL", "KEYSECURE_API_SECRET is set too: the apiSecret is in the token or in software, never both")
		case k.KeySecureKeyLabel != "":
			if len(k.KeySecureKeyKCV) != 6 || !isHex(k.KeySecureKeyKCV) {
				add("KEYSECURE_KEY_KCV", "required with KEYSECURE_KEY_LABEL: the key's 6 hex digit check value from its ceremony")
			}
		default:
			if _, err := keysecure.SecretKey(k.KeySecureAPISecret); err != nil {
				add("KEYSECURE_API_SECRET", "must be 16, 24 or 32 bytes (or KEYSECURE_KEY_LABEL, the apiSecret in the token)")
			}
		}
	}
	if k.KeySecureSkew <= 0 || k.KeySecureSkew > 30*time.Second {
		add("KEYSECURE_CLOCK_SKEW", "must be more than 0s and at most 30s")
	}
	if k.KeySecureMaxList < 1 || k.KeySecureMaxList > 1000 {
		add("KEYSECURE_MAX_LIST_REQUESTS", "must be 1 to 1000")
	}
	if k.KeySecureMaxCands < 1 || k.KeySecureMaxCands > 20 {
		add("KEYSECURE_MAX_CANDIDATES", "must be 1 to 20")
	}
	return append(out, positive([]namedDuration{{"KEYSECURE_TIMEOUT", k.KeySecureTimeout}, {"KEYSECURE_LOOKBACK", k.KeySecureLookback}})...)
}

// ClientConfig is the KeySecure client's configuration (KeySecureURL must
// be set); tokenKey is the apiSecret found in the token (nil: the
// software KEYSECURE_API_SECRET).
func (k *KeySecure) ClientConfig(tokenKey keysecure.Secret, allowInsecure bool) (keysecure.Config, error) {
	var secretKey keysecure.Secret = tokenKey
	switch {
	case tokenKey == nil && k.KeySecureKeyLabel != "":
		return keysecure.Config{}, problem("KEYSECURE_KEY_LABEL", "the key in the token is not open")
	case tokenKey == nil:
		sk, err := keysecure.SecretKey(k.KeySecureAPISecret)
		if err != nil {
			return keysecure.Config{}, problem("KEYSECURE_API_SECRET", "must be 16, 24 or 32 bytes")
		}
		secretKey = sk
	}
	return keysecure.Config{BaseURL: k.KeySecureURL, APIKey: k.KeySecureAPIKey, APISecret: secretKey,
		Timeout: k.KeySecureTimeout, Language: k.KeySecureLanguage, Timezone: k.KeySecureTimezone, Lookback: k.KeySecureLookback,
		ClockSkew: k.KeySecureSkew, MaxListRequests: k.KeySecureMaxList, MaxCandidates: k.KeySecureMaxCands,
		AllowInsecure: allowInsecure}, nil
}
