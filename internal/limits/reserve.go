package limits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
)

// reservations is the bbolt bucket of a key's failures and held places.
var reservations = []byte("reservations")

// reserveEntry is one key's failures (Unix ns, inside the window) and held
// places (id -> Unix ns when the hold ends).
type reserveEntry struct {
	Failed       []int64          `json:"f"`
	Held         map[string]int64 `json:"h"`
	BlockedUntil int64            `json:"b"` // Unix ms, as boltEntry's
}

// newID names a reservation.
func newID(now time.Time) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	return strconv.FormatInt(now.UnixNano(), 36) + "-" + hex.EncodeToString(rnd[:])
}

// Reserve implements Store.
func (s *BoltStore) Reserve(_ context.Context, key string, r Rule, hold time.Duration, now time.Time) (string, Reservation, error) {
	var id string
	var state Reservation
	err := s.db.Batch(func(tx *bolt.Tx) error {
		id, state = "", Wait // Batch may run this again
		b, err := tx.CreateBucketIfNotExists(reservations)
		if err != nil {
			return err
		}
		e := loadReservations(b, key, r, now)
		switch {
		case e.BlockedUntil > now.UnixMilli() || len(e.Failed) >= r.Max:
			state = Full
		case len(e.Failed)+len(e.Held) >= r.Max:
			state = Wait
		default:
			id, state = newID(now), Reserved
			e.Held[id] = now.Add(hold).UnixNano()
		}
		return putJSON(b, key, e)
	})
	return id, state, err
}

// Settle implements Store.
func (s *BoltStore) Settle(_ context.Context, key, id string, failed bool, r Rule, now time.Time) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(reservations)
		if err != nil {
			return err
		}
		e := loadReservations(b, key, r, now)
		delete(e.Held, id)
		if failed {
			e.Failed = append(e.Failed, now.UnixNano())
			if len(e.Failed) >= r.Max {
				e.BlockedUntil = now.UnixMilli() + r.Lockout.Milliseconds()
			}
		}
		return putJSON(b, key, e)
	})
}

// loadReservations reads key's entry without failures past the window and
// holds past their end.
func loadReservations(b *bolt.Bucket, key string, r Rule, now time.Time) reserveEntry {
	var e reserveEntry
	if v := b.Get([]byte(key)); v != nil {
		_ = json.Unmarshal(v, &e)
	}
	from := now.Add(-r.Window).UnixNano()
	kept := e.Failed[:0]
	for _, f := range e.Failed {
		if f > from {
			kept = append(kept, f)
		}
	}
	e.Failed = kept
	if e.Held == nil {
		e.Held = map[string]int64{}
	}
	for id, until := range e.Held {
		if until <= now.UnixNano() {
			delete(e.Held, id)
		}
	}
	return e
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// KEYS[1] failures (sorted set by time), KEYS[2] held places (sorted set by
// end of hold), KEYS[3] block flag; ARGV now ms, window ms, max, lockout
// ms, hold ms, id. Returns 0 reserved, 1 wait, 2 full.
var reserveSource = `
if redis.call('EXISTS', KEYS[3]) == 1 then return 2 end
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local failed = redis.call('ZCARD', KEYS[1])
if failed >= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
  return 2
end
if failed + redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 1 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 0
`

// KEYS as reserveSource's; ARGV now ms, window ms, max, lockout ms, id,
// failed (1 or 0).
var settleSource = `
redis.call('ZREM', KEYS[2], ARGV[5])
if ARGV[6] == '1' then
  local now = tonumber(ARGV[1])
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
  end
end
return 0
`

func reserveKeys(key string) []string {
	return []string{"ivrpin:failed:" + key, "ivrpin:held:" + key, "ivrpin:block:" + key}
}

// Reserve implements Store.
func (s *RedisStore) Reserve(ctx context.Context, key string, r Rule, hold time.Duration, now time.Time) (string, Reservation, error) {
	id := newID(now)
	var res *redis.Cmd
	err := s.replicated(ctx, func(p redis.Pipeliner) {
		res = p.Eval(ctx, reserveSource, reserveKeys(key), now.UnixMilli(), r.Window.Milliseconds(), r.Max,
			r.Lockout.Milliseconds(), hold.Milliseconds(), id)
	})
	if err != nil {
		return "", Wait, err
	}
	n, err := res.Int()
	if err != nil {
		return "", Wait, err
	}
	switch n {
	case 0:
		return id, Reserved, nil
	case 2:
		return "", Full, nil
	}
	return "", Wait, nil
}

// Settle implements Store.
func (s *RedisStore) Settle(ctx context.Context, key, id string, failed bool, r Rule, now time.Time) error {
	f := "0"
	if failed {
		f = "1"
	}
	return s.replicated(ctx, func(p redis.Pipeliner) {
		p.Eval(ctx, settleSource, reserveKeys(key), now.UnixMilli(), r.Window.Milliseconds(), r.Max, r.Lockout.Milliseconds(), id, f)
	})
}
