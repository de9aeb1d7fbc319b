package limits

import (
	"context"
	"crypto/x509"
	"errors"
	"time"
)

// Config is the limiter's configuration (internal/config fills it and has
// checked it).
type Config struct {
	Card, Caller Rule
	Withheld     Rule   // the shared bucket of calls without a caller id
	StorePath    string // bbolt file, used when RedisURL is empty
	RedisURL     string
	// Key is the HMAC key of card numbers and caller ids (at least 16
	// bytes), the same on every instance sharing a store.
	Key []byte
	// RedisPassword, when set, replaces the password of RedisURL.
	RedisPassword string
	// RedisSentinels and RedisMaster reach Redis through Sentinel instead
	// of RedisURL: the client follows a failover to the promoted replica.
	RedisSentinels        []string
	RedisMaster           string
	RedisSentinelPassword string
	// RedisMinReplicas is how many replicas must hold each limit write
	// (Redis WAIT) within RedisWaitTimeout before the call goes on; fewer
	// fail the write, and the line fails closed. 0 does not wait.
	RedisMinReplicas int
	RedisWaitTimeout time.Duration
	// RedisTLS reaches Sentinel and the master it names over TLS (a
	// rediss:// URL always is); RedisCAs, when set, are the roots its
	// certificates must chain to (else the system's).
	RedisTLS bool
	RedisCAs *x509.CertPool
	// OnStoredKey hears that the embedded store held an HMAC key of an
	// older version, now deleted.
	OnStoredKey func()
}

// Open builds the limiter and its store.
func Open(ctx context.Context, s Config) (*Limiter, error) {
	// The key is never kept beside the hashes it makes: a store file (or a
	// Redis dump) alone must not let anyone test card numbers against it.
	key := s.Key
	if len(key) < 16 {
		return nil, errors.New("the attempt limits need an HMAC key of at least 16 bytes")
	}
	if s.RedisURL != "" || len(s.RedisSentinels) > 0 {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		store, err := OpenRedis(ctx, RedisOptions{URL: s.RedisURL, Password: s.RedisPassword, Sentinels: s.RedisSentinels,
			Master: s.RedisMaster, SentinelPassword: s.RedisSentinelPassword, MinReplicas: s.RedisMinReplicas, WaitTimeout: s.RedisWaitTimeout,
			TLS: s.RedisTLS, CAs: s.RedisCAs})
		if err != nil {
			return nil, err
		}
		l := New(store, key, s.Card, s.Caller)
		l.Withheld = s.Withheld
		return l, nil
	}
	store, err := OpenBolt(s.StorePath)
	if err != nil {
		return nil, err
	}
	if found, err := store.ForgetStoredKey(); err != nil {
		store.Close()
		return nil, err
	} else if found && s.OnStoredKey != nil {
		s.OnStoredKey()
	}
	l := New(store, key, s.Card, s.Caller)
	l.Withheld = s.Withheld
	return l, nil
}
