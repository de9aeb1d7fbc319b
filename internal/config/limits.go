package config

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/ivr-pin/ivr-pin/internal/limits"
	"github.com/ivr-pin/ivr-pin/pinsvc/hosturl"
)

// Limits bound attempts per card, per caller and across the line, in an
// embedded store or in Redis shared by the fleet.
type Limits struct {
	LimitCardMax         int           `envconfig:"LIMIT_CARD_MAX" default:"5" desc:"PIN attempts (and refused expiry dates) per card in the card window; 0 turns the card limit off"`
	LimitCardWindow      time.Duration `envconfig:"LIMIT_CARD_WINDOW" default:"24h" desc:"sliding window of the card limit"`
	LimitCardLockout     time.Duration `envconfig:"LIMIT_CARD_LOCKOUT" default:"24h" desc:"how long a card is refused once past its limit"`
	LimitCallerMax       int           `envconfig:"LIMIT_CALLER_MAX" default:"10" desc:"attempts (PIN submissions, refused card numbers) per caller id in the caller window; 0 turns it off"`
	LimitCallerWindow    time.Duration `envconfig:"LIMIT_CALLER_WINDOW" default:"1h" desc:"sliding window of the caller limit"`
	LimitCallerLockout   time.Duration `envconfig:"LIMIT_CALLER_LOCKOUT" default:"1h" desc:"how long a caller id is refused once past its limit"`
	LimitWithheldMax     int           `envconfig:"LIMIT_WITHHELD_MAX" default:"5" desc:"attempts in the caller window shared by all calls without a caller id (withheld, anonymous, empty); at most LIMIT_CALLER_MAX"`
	LimitLineFailedMax   int           `envconfig:"LIMIT_LINE_FAILED_MAX" default:"100" desc:"failed card-detail checks (unknown card, or an expiry, current PIN or security code that does not match) across the whole line that turn the line guard on: new calls hear 'not available' until the window passes; size it well above the line's busiest window (docs/operations.md); 0 turns it off"`
	LimitLineWindow      time.Duration `envconfig:"LIMIT_LINE_WINDOW" default:"10m" desc:"window of the line guard, and how long it stays on"`
	LimitKeySecureMax    int           `envconfig:"LIMIT_KEYSECURE_MAX" default:"3000" desc:"requests the whole line may send KeySecure in LIMIT_KEYSECURE_WINDOW (a first-setup check costs about 10): past it, first setups hear 'not available' and nothing more is sent until the window slides; 0 turns it off"`
	LimitKeySecureWindow time.Duration `envconfig:"LIMIT_KEYSECURE_WINDOW" default:"10m" desc:"sliding window of the KeySecure request budget"`
	LimitStore           string        `envconfig:"LIMIT_STORE" default:"/var/lib/ivr-pin/attempts.db" desc:"embedded attempt store file (used when REDIS_URL is unset); its directory must exist and be writable"`
	LimitKey             string        `envconfig:"LIMIT_KEY" secret:"true" desc:"hex HMAC key (at least 16 bytes) that hashes card numbers and caller ids for the limits; serve requires it (the same on every instance), and it is never stored beside the hashes"`

	RedisURL              string        `envconfig:"REDIS_URL" secret:"url" desc:"Redis for attempt limits shared by several instances"`
	RedisPassword         string        `envconfig:"REDIS_PASSWORD" secret:"true" desc:"Redis password (AUTH), replacing any in REDIS_URL; give it as REDIS_PASSWORD_FILE"`
	RedisSentinels        []string      `envconfig:"REDIS_SENTINELS" desc:"Redis Sentinel addresses (host:port, comma separated) instead of REDIS_URL: the client follows a failover to the promoted replica"`
	RedisMaster           string        `envconfig:"REDIS_MASTER" desc:"the master's name in Sentinel (sentinel monitor NAME ...), with REDIS_SENTINELS"`
	RedisSentinelPassword string        `envconfig:"REDIS_SENTINEL_PASSWORD" secret:"true" desc:"Sentinel's own password (requirepass of the sentinels), when set; give it as REDIS_SENTINEL_PASSWORD_FILE"`
	RedisMinReplicas      int           `envconfig:"REDIS_MIN_REPLICAS" default:"-1" desc:"replicas that must hold each limit write (Redis WAIT) before the call goes on, else it fails closed; -1: 1 with REDIS_SENTINELS, 0 with REDIS_URL"`
	RedisWaitTimeout      time.Duration `envconfig:"REDIS_WAIT_TIMEOUT" default:"200ms" desc:"how long a limit write waits for REDIS_MIN_REPLICAS"`
	RedisTLS              bool          `envconfig:"REDIS_TLS" default:"false" desc:"reach REDIS_SENTINELS and the master they name over TLS (Redis's tls-port); a rediss:// REDIS_URL always uses TLS"`
	RedisTLSCA            string        `envconfig:"REDIS_TLS_CA" desc:"PEM file of the CA that signed Redis's and Sentinel's certificates (default: the system's roots)"`
}

// problems checks the limits, their store and their key. given says
// whether a secret setting was given (a refused file counts).
func (l *Limits) problems(given func(name, value string) bool, allowInsecure bool) []error {
	var out []error
	add := func(v, reason string) { out = append(out, problem(v, reason)) }
	if l.LimitCardMax < 0 {
		add("LIMIT_CARD_MAX", "cannot be negative")
	}
	if l.LimitLineFailedMax < 0 {
		add("LIMIT_LINE_FAILED_MAX", "cannot be negative")
	}
	if l.LimitKeySecureMax < 0 {
		add("LIMIT_KEYSECURE_MAX", "cannot be negative")
	}
	if l.LimitCallerMax < 0 {
		add("LIMIT_CALLER_MAX", "cannot be negative")
	}
	if l.LimitWithheldMax < 1 || (l.LimitCallerMax > 0 && l.LimitWithheldMax > l.LimitCallerMax) {
		add("LIMIT_WITHHELD_MAX", "must be 1 to LIMIT_CALLER_MAX: calls without a caller id share one bucket")
	}
	if l.RedisURL != "" {
		if u, err := url.Parse(l.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			add("REDIS_URL", "must be a redis:// or rediss:// URL")
		}
		if !given("LIMIT_KEY", l.LimitKey) {
			add("LIMIT_KEY", "required with REDIS_URL: every instance must hash cards the same way")
		}
	}
	if len(l.RedisSentinels) > 0 {
		switch {
		case l.RedisURL != "":
			add("REDIS_SENTINELS", "give REDIS_URL or REDIS_SENTINELS, not both")
		case l.RedisMaster == "":
			add("REDIS_MASTER", "required with REDIS_SENTINELS: the name the sentinels monitor")
		case !given("LIMIT_KEY", l.LimitKey):
			add("LIMIT_KEY", "required with REDIS_SENTINELS: every instance must hash cards the same way")
		}
		for _, a := range l.RedisSentinels {
			if _, _, err := net.SplitHostPort(a); err != nil {
				add("REDIS_SENTINELS", "must be host:port addresses, comma separated")
				break
			}
		}
	}
	for _, pw := range []struct{ name, value string }{{"REDIS_PASSWORD", l.RedisPassword}, {"REDIS_SENTINEL_PASSWORD", l.RedisSentinelPassword}} {
		if pw.value == "" {
			continue
		}
		if w := weakPassword(pw.value); w != "" {
			add(pw.name, w)
		}
	}
	if err := l.clearRedisPassword(given); err != nil && !allowInsecure {
		out = append(out, err)
	}
	if l.RedisTLSCA != "" {
		if _, err := l.redisCAs(); err != nil {
			out = append(out, err)
		}
	}
	if l.RedisMinReplicas < -1 || l.RedisWaitTimeout <= 0 {
		add("REDIS_MIN_REPLICAS", "must be -1 (automatic), 0 or more, with a positive REDIS_WAIT_TIMEOUT")
	}
	if l.LimitKey != "" {
		if _, err := l.key(); err != nil {
			out = append(out, err)
		}
	}
	return append(out, positive([]namedDuration{
		{"LIMIT_CARD_WINDOW", l.LimitCardWindow}, {"LIMIT_CARD_LOCKOUT", l.LimitCardLockout},
		{"LIMIT_CALLER_WINDOW", l.LimitCallerWindow}, {"LIMIT_CALLER_LOCKOUT", l.LimitCallerLockout}, {"LIMIT_LINE_WINDOW", l.LimitLineWindow},
		{"LIMIT_KEYSECURE_WINDOW", l.LimitKeySecureWindow},
	})...)
}

// key decodes LIMIT_KEY and refuses one with too little entropy to hide
// card numbers: a 16-byte random key has about 15 distinct bytes.
func (l *Limits) key() ([]byte, error) { return hexKey("LIMIT_KEY", l.LimitKey, 16, 8) }

// hexKey decodes a hex key setting of at least minBytes bytes, refusing
// one with fewer than minDistinct different bytes (all zeros, a byte
// repeated, a short pattern): not a key anyone generated.
func hexKey(name, value string, minBytes, minDistinct int) ([]byte, error) {
	k, err := hex.DecodeString(value)
	if err != nil || len(k) < minBytes {
		return nil, problem(name, fmt.Sprintf("must be at least %d bytes of hex (openssl rand -hex 32)", minBytes))
	}
	if distinct(k) < minDistinct {
		return nil, problem(name, fmt.Sprintf("has fewer than %d different bytes (all zeros, one byte repeated): make one with `openssl rand -hex 32`", minDistinct))
	}
	return k, nil
}

// distinct counts the different bytes of b.
func distinct(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c], n = true, n+1
		}
	}
	return n
}

// clearRedisPassword is a problem when a Redis or Sentinel password would
// cross the network in clear: a redis:// URL, or sentinels without
// REDIS_TLS, to a host that is not loopback, with a password given.
func (l *Limits) clearRedisPassword(given func(name, value string) bool) error {
	if l.RedisURL != "" {
		u, err := url.Parse(l.RedisURL)
		if err != nil || u.Scheme != "redis" || hosturl.IsLoopback(u.Hostname()) {
			return nil
		}
		if _, inURL := u.User.Password(); inURL || given("REDIS_PASSWORD", l.RedisPassword) {
			return problem("REDIS_URL", "sends the Redis password in clear to a host that is not loopback: use rediss:// (Redis's tls-port; a lab may set IVRPIN_ALLOW_INSECURE_HOSTS=true)")
		}
		return nil
	}
	if len(l.RedisSentinels) == 0 || l.RedisTLS {
		return nil
	}
	if !given("REDIS_PASSWORD", l.RedisPassword) && !given("REDIS_SENTINEL_PASSWORD", l.RedisSentinelPassword) {
		return nil
	}
	for _, a := range l.RedisSentinels {
		if host, _, err := net.SplitHostPort(a); err == nil && !hosturl.IsLoopback(host) {
			return problem("REDIS_SENTINELS", "sends the Redis and Sentinel passwords in clear to hosts that are not loopback: set REDIS_TLS=true (Redis's tls-port; a lab may set IVRPIN_ALLOW_INSECURE_HOSTS=true)")
		}
	}
	return nil
}

// redisCAs reads REDIS_TLS_CA.
func (l *Limits) redisCAs() (*x509.CertPool, error) {
	if l.RedisTLSCA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(l.RedisTLSCA)
	if err != nil {
		return nil, problem("REDIS_TLS_CA", "cannot be read: "+errors.Unwrap(err).Error())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, problem("REDIS_TLS_CA", "holds no PEM certificate")
	}
	return pool, nil
}

// StoreConfig is the attempt limiter's configuration, its key decoded
// (the limiter trusts what this section checked).
func (l *Limits) StoreConfig() (limits.Config, error) {
	k, err := l.key()
	if err != nil {
		return limits.Config{}, err
	}
	cas, err := l.redisCAs()
	if err != nil {
		return limits.Config{}, err
	}
	return limits.Config{
		Card:      limits.Rule{Max: l.LimitCardMax, Window: l.LimitCardWindow, Lockout: l.LimitCardLockout},
		Caller:    limits.Rule{Max: l.LimitCallerMax, Window: l.LimitCallerWindow, Lockout: l.LimitCallerLockout},
		Withheld:  limits.Rule{Max: l.LimitWithheldMax, Window: l.LimitCallerWindow, Lockout: l.LimitCallerLockout},
		StorePath: l.LimitStore, RedisURL: l.RedisURL, Key: k, RedisPassword: l.RedisPassword,
		RedisSentinels: l.RedisSentinels, RedisMaster: l.RedisMaster, RedisSentinelPassword: l.RedisSentinelPassword,
		RedisMinReplicas: l.redisMinReplicas(), RedisWaitTimeout: l.RedisWaitTimeout,
		RedisTLS: l.RedisTLS, RedisCAs: cas,
	}, nil
}

// StoreSetting is the setting to fix when the store cannot be opened: the
// store file's, Redis's or Sentinel's.
func (l *Limits) StoreSetting() string {
	switch {
	case l.RedisURL != "":
		return "REDIS_URL"
	case len(l.RedisSentinels) > 0:
		return "REDIS_SENTINELS"
	}
	return "LIMIT_STORE"
}

// redisMinReplicas resolves REDIS_MIN_REPLICAS's automatic -1: a limit
// write must be on one replica with Sentinel (so a failover keeps it), and
// waits for none on a single Redis.
func (l *Limits) redisMinReplicas() int {
	if l.RedisMinReplicas >= 0 {
		return l.RedisMinReplicas
	}
	if len(l.RedisSentinels) > 0 {
		return 1
	}
	return 0
}

// SharedStore reports whether the attempt store is Redis (a URL or
// Sentinel), shared by every instance.
func (l *Limits) SharedStore() bool { return l.RedisURL != "" || len(l.RedisSentinels) > 0 }
