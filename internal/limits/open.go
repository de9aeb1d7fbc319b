package limits

import (
	"context"
	"encoding/hex"
	"time"
)

// Settings are the limiter's configuration (internal/config fills them).
type Settings struct {
	Card, Caller Rule
	Withheld     Rule   // the shared bucket of calls without a caller id
	StorePath    string // bbolt file, used when RedisURL is empty
	RedisURL     string
	KeyHex       string // HMAC key; required with Redis
}

// Open builds the limiter and its store.
func Open(ctx context.Context, s Settings) (*Limiter, error) {
	var key []byte
	if s.KeyHex != "" {
		k, err := hex.DecodeString(s.KeyHex)
		if err != nil {
			return nil, err
		}
		key = k
	}
	if s.RedisURL != "" {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		store, err := OpenRedis(ctx, s.RedisURL)
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
	if key == nil {
		if key, err = store.Key(); err != nil {
			store.Close()
			return nil, err
		}
	}
	l := New(store, key, s.Card, s.Caller)
	l.Withheld = s.Withheld
	return l, nil
}
