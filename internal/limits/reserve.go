package limits

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"

	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
)

// reservations is the bbolt bucket of the keys guarded by reservations:
// under it each key has a bucket of its own (reserveBucket), so a
// reservation or a settle reads and writes a few entries whatever the
// count. (The first layout kept a key as one JSON value of every place
// held: a line guard sized for 2,000 calls in flight decoded and encoded
// all of them on every request, and a burst spent most of serve's CPU there.)
var reservations = []byte("reservations")

// A key's bucket: held places by id (the value: when the hold ends), the
// same places by end (for dropping the holds a dead process left), the
// failures by time, the two counts, and when the lock ends.
var (
	heldByID   = []byte("held")
	heldByEnd  = []byte("ends")
	failedAt   = []byte("failed")
	heldCount  = []byte("nh")
	failCount  = []byte("nf")
	blockedKey = []byte("b") // Unix ms, as boltEntry's BlockedUntil
)

// reserveEntry is the first layout's value of a key (Unix ns failures,
// id -> Unix ns hold ends), still read once to move it to the key's bucket.
type reserveEntry struct {
	Failed       []int64          `json:"f"`
	Held         map[string]int64 `json:"h"`
	BlockedUntil int64            `json:"b"`
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
		k, err := reserveBucket(tx, key, r, now)
		if err != nil {
			return err
		}
		failed, held := count(k.Bucket, failCount), count(k.Bucket, heldCount)
		switch {
		case count(k.Bucket, blockedKey) > now.UnixMilli() || failed >= int64(r.Max):
			state = Full
		case failed+held >= int64(r.Max):
			state = Wait
		default:
			id, state = newID(now), Reserved
			return k.hold(id, now.Add(hold).UnixNano())
		}
		return nil
	})
	return id, state, err
}

// Settle implements Store.
func (s *BoltStore) Settle(_ context.Context, key, id string, failed bool, r Rule, now time.Time) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		k, err := reserveBucket(tx, key, r, now)
		if err != nil {
			return err
		}
		if err := k.release(id); err != nil {
			return err
		}
		if !failed {
			return nil
		}
		if err := k.fail(now.UnixNano()); err != nil {
			return err
		}
		if count(k.Bucket, failCount) >= int64(r.Max) {
			return setCount(k.Bucket, blockedKey, now.UnixMilli()+r.Lockout.Milliseconds())
		}
		return nil
	})
}

// blockedByReservations reports whether key's reservations hold it locked
// (a read: nothing is moved or dropped).
func blockedByReservations(tx *bolt.Tx, key string, now time.Time) bool {
	r := tx.Bucket(reservations)
	if r == nil {
		return false
	}
	if k := r.Bucket([]byte(key)); k != nil {
		return count(k, blockedKey) > now.UnixMilli()
	}
	var e reserveEntry
	if v := r.Get([]byte(key)); v != nil && json.Unmarshal(v, &e) == nil {
		return e.BlockedUntil > now.UnixMilli()
	}
	return false
}

// keyBucket is one key's bucket.
type keyBucket struct{ *bolt.Bucket }

// reserveBucket is key's bucket, without failures past the window and
// holds past their end; a key still in the first layout is moved first.
func reserveBucket(tx *bolt.Tx, key string, r Rule, now time.Time) (keyBucket, error) {
	root, err := tx.CreateBucketIfNotExists(reservations)
	if err != nil {
		return keyBucket{}, err
	}
	var old *reserveEntry
	if v := root.Get([]byte(key)); v != nil && root.Bucket([]byte(key)) == nil {
		old = &reserveEntry{}
		_ = json.Unmarshal(v, old)
		if err := root.Delete([]byte(key)); err != nil {
			return keyBucket{}, err
		}
	}
	b, err := root.CreateBucketIfNotExists([]byte(key))
	if err != nil {
		return keyBucket{}, err
	}
	k := keyBucket{b}
	for _, name := range [][]byte{heldByID, heldByEnd, failedAt} {
		if _, err := b.CreateBucketIfNotExists(name); err != nil {
			return keyBucket{}, err
		}
	}
	if old != nil {
		for id, until := range old.Held {
			if err := k.hold(id, until); err != nil {
				return keyBucket{}, err
			}
		}
		for _, f := range old.Failed {
			if err := k.fail(f); err != nil {
				return keyBucket{}, err
			}
		}
		if err := setCount(b, blockedKey, old.BlockedUntil); err != nil {
			return keyBucket{}, err
		}
	}
	// Failures past the window, oldest first, then holds past their end.
	if err := k.dropBefore(failedAt, now.Add(-r.Window).UnixNano()+1, func([]byte) error { return k.add(failCount, -1) }); err != nil {
		return keyBucket{}, err
	}
	err = k.dropBefore(heldByEnd, now.UnixNano()+1, func(endKey []byte) error {
		if err := b.Bucket(heldByID).Delete(endKey[8:]); err != nil {
			return err
		}
		return k.add(heldCount, -1)
	})
	return k, err
}

// hold records a place held until (Unix ns).
func (k keyBucket) hold(id string, until int64) error {
	if err := k.Bucket.Bucket(heldByID).Put([]byte(id), be64(until)); err != nil {
		return err
	}
	if err := k.Bucket.Bucket(heldByEnd).Put(append(be64(until), id...), nil); err != nil {
		return err
	}
	return k.add(heldCount, 1)
}

// release gives a held place back (a place whose hold already ended, or an
// unknown id, is nothing to give back).
func (k keyBucket) release(id string) error {
	byID := k.Bucket.Bucket(heldByID)
	until := byID.Get([]byte(id))
	if until == nil {
		return nil
	}
	if err := k.Bucket.Bucket(heldByEnd).Delete(append(slices.Clone(until), id...)); err != nil {
		return err
	}
	if err := byID.Delete([]byte(id)); err != nil {
		return err
	}
	return k.add(heldCount, -1)
}

// fail records a failure at t (Unix ns); the bucket's sequence keeps two
// failures in the same nanosecond apart.
func (k keyBucket) fail(t int64) error {
	f := k.Bucket.Bucket(failedAt)
	seq, err := f.NextSequence()
	if err != nil {
		return err
	}
	if err := f.Put(append(be64(t), be64(int64(seq))...), nil); err != nil {
		return err
	}
	return k.add(failCount, 1)
}

// dropBefore deletes name's entries whose 8-byte time prefix is before
// limit, calling gone for each.
func (k keyBucket) dropBefore(name []byte, limit int64, gone func(key []byte) error) error {
	b := k.Bucket.Bucket(name)
	var old [][]byte
	c := b.Cursor()
	for key, _ := c.First(); key != nil && len(key) >= 8 && int64(binary.BigEndian.Uint64(key)) < limit; key, _ = c.Next() {
		old = append(old, slices.Clone(key))
	}
	for _, key := range old {
		if err := b.Delete(key); err != nil {
			return err
		}
		if err := gone(key); err != nil {
			return err
		}
	}
	return nil
}

func (k keyBucket) add(name []byte, d int64) error {
	return setCount(k.Bucket, name, max(0, count(k.Bucket, name)+d))
}

// count reads an 8-byte number (0 when absent).
func count(b *bolt.Bucket, name []byte) int64 {
	if v := b.Get(name); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func setCount(b *bolt.Bucket, name []byte, v int64) error { return b.Put(name, be64(v)) }

// be64 is v big-endian: keys of times sort in time order.
func be64(v int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(v))
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
