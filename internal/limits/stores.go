package limits

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ---- embedded store (bbolt) ----

// BoltStore keeps counters in a bbolt file: one process at a time (bbolt
// locks the file), and every change is committed (fsync) before it counts.
type BoltStore struct {
	db *bolt.DB
}

var bucket = []byte("attempts")

type boltEntry struct {
	Hits         []int64 `json:"h"` // Unix ms of attempts inside the window
	BlockedUntil int64   `json:"b"` // Unix ms
}

// OpenBolt opens (or creates) the file at path.
func OpenBolt(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("cannot create a file in %s (create it, owned by the service's user): %v", filepath.Dir(path), errors.Unwrap(err))
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("open attempt store %s: another process holds it (a serve already running?)", path)
	case err != nil:
		return nil, fmt.Errorf("open attempt store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	// Every write goes through Batch: writes that arrive together (a burst
	// of calls reaching their host step) share one transaction and one
	// fsync instead of queueing for one each. A lone write waits at most
	// MaxBatchDelay for company.
	db.MaxBatchDelay = 2 * time.Millisecond
	return &BoltStore{db: db}, nil
}

func load(b *bolt.Bucket, key string) boltEntry {
	var e boltEntry
	if v := b.Get([]byte(key)); v != nil {
		_ = json.Unmarshal(v, &e)
	}
	return e
}

// Blocked implements Store.
func (s *BoltStore) Blocked(_ context.Context, key string, now time.Time) (bool, error) {
	var blocked bool
	err := s.db.View(func(tx *bolt.Tx) error {
		blocked = load(tx.Bucket(bucket), key).BlockedUntil > now.UnixMilli()
		// A key guarded by reservations (the line guard) keeps its lock
		// there.
		if !blocked {
			blocked = blockedByReservations(tx, key, now)
		}
		return nil
	})
	return blocked, err
}

// Hit implements Store.
func (s *BoltStore) Hit(_ context.Context, key string, r Rule, now time.Time) (bool, error) {
	var ok bool
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		e := load(b, key)
		ms := now.UnixMilli()
		if e.BlockedUntil > ms {
			ok = false
			return nil
		}
		from := ms - r.Window.Milliseconds()
		kept := e.Hits[:0]
		for _, h := range e.Hits {
			if h > from {
				kept = append(kept, h)
			}
		}
		e.Hits = kept
		if len(e.Hits) >= r.Max {
			e.BlockedUntil = ms + r.Lockout.Milliseconds()
			ok = false
		} else {
			e.Hits = append(e.Hits, ms)
			ok = true
		}
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), v)
	})
	return ok, err
}

var marks = []byte("marks")

// Mark implements Store.
func (s *BoltStore) Mark(_ context.Context, key string) (bool, error) {
	var fresh bool
	err := s.db.Batch(func(tx *bolt.Tx) error {
		fresh = false // Batch may run this again
		b, err := tx.CreateBucketIfNotExists(marks)
		if err != nil {
			return err
		}
		if b.Get([]byte(key)) != nil {
			return nil
		}
		fresh = true
		return b.Put([]byte(key), []byte{1})
	})
	return fresh, err
}

// Marked implements Store.
func (s *BoltStore) Marked(_ context.Context, key string) (bool, error) {
	var set bool
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(marks); b != nil {
			set = b.Get([]byte(key)) != nil
		}
		return nil
	})
	return set, err
}

// Unmark implements Store.
func (s *BoltStore) Unmark(_ context.Context, key string) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		if b := tx.Bucket(marks); b != nil {
			return b.Delete([]byte(key))
		}
		return nil
	})
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }

// ForgetStoredKey deletes the HMAC key that earlier versions kept in the
// store beside the hashes it keyed (anyone with the file could then test
// card numbers against them), and rewrites the file without it: bbolt
// frees the old page but leaves its bytes on disk, so the store is
// compacted into a new file that replaces the old one. It reports whether
// there was a key: the counts made under it no longer match and expire
// with their windows.
func (s *BoltStore) ForgetStoredKey() (bool, error) {
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("meta"))
		if b == nil || b.Get([]byte("hmac-key")) == nil {
			return nil
		}
		found = true
		return tx.DeleteBucket([]byte("meta"))
	})
	if err != nil || !found {
		return found, err
	}
	path := s.db.Path()
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return found, err
	}
	if err := bolt.Compact(dst, s.db, 1<<20); err != nil {
		dst.Close()
		_ = os.Remove(tmp)
		return found, err
	}
	if err := dst.Close(); err != nil {
		return found, err
	}
	if err := s.db.Close(); err != nil {
		return found, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return found, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return found, fmt.Errorf("open attempt store %s: %w", path, err)
	}
	s.db = db
	return found, nil
}

// ---- shared store (Redis) ----

// RedisStore keeps counters in Redis sorted sets, one Lua script per hit so
// concurrent instances never pass the limit together.
type RedisStore struct {
	c           *redis.Client
	minReplicas int
	waitMS      int64
}

// RedisOptions say how to reach Redis: a redis:// URL, or Sentinel
// (go-redis's failover client, which follows the master Sentinel names).
type RedisOptions struct {
	URL, Password            string
	Sentinels                []string
	Master, SentinelPassword string
	MinReplicas              int
	WaitTimeout              time.Duration
	// TLS reaches Sentinel and its master over TLS (a rediss:// URL always
	// is); CAs, when set, replace the system's roots for either.
	TLS bool
	CAs *x509.CertPool
}

// ErrNotReplicated is a limit write that fewer replicas than required
// acknowledged in time: it might not survive a failover, so it fails.
var ErrNotReplicated = errors.New("the limit write did not reach enough Redis replicas in time")

// OpenRedis connects as o says and checks Redis answers.
func OpenRedis(ctx context.Context, o RedisOptions) (*RedisStore, error) {
	// Failures come back as errors and fail the line closed; the library's
	// own stderr logger would only repeat them unstructured.
	redis.SetLogger(quiet{})
	var c *redis.Client
	where := ""
	if len(o.Sentinels) > 0 {
		fo := &redis.FailoverOptions{MasterName: o.Master, SentinelAddrs: o.Sentinels,
			SentinelPassword: o.SentinelPassword, Password: o.Password, DialTimeout: 2 * time.Second,
			ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRetries: 1}
		if o.TLS {
			// The same roots verify the sentinels and the master they
			// name; each is checked against the address dialled.
			fo.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.CAs}
		}
		c = redis.NewFailoverClient(fo)
		where = "master " + o.Master + " through Sentinel"
	} else {
		opt, err := redis.ParseURL(o.URL)
		if err != nil {
			return nil, errors.New("not a redis:// or rediss:// URL")
		}
		if o.Password != "" {
			opt.Password = o.Password
		}
		if opt.TLSConfig != nil {
			opt.TLSConfig.MinVersion = tls.VersionTLS12
			opt.TLSConfig.RootCAs = o.CAs
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
		opt.MaxRetries = 1
		c = redis.NewClient(opt)
		where = opt.Addr
	}
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis at %s: %w", where, err)
	}
	wait := o.WaitTimeout
	if wait <= 0 {
		wait = 200 * time.Millisecond
	}
	return &RedisStore{c: c, minReplicas: o.MinReplicas, waitMS: wait.Milliseconds()}, nil
}

// replicated runs write and, when replicas are required, Redis's WAIT on the
// same connection (a pipeline): WAIT counts the replicas that hold this
// connection's writes.
func (s *RedisStore) replicated(ctx context.Context, write func(p redis.Pipeliner)) error {
	if s.minReplicas <= 0 {
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error { write(p); return nil })
		return err
	}
	var wait *redis.Cmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		write(p)
		wait = p.Do(ctx, "WAIT", s.minReplicas, s.waitMS)
		return nil
	})
	if err != nil {
		return err
	}
	n, err := wait.Int()
	if err != nil {
		return err
	}
	if n < s.minReplicas {
		return ErrNotReplicated
	}
	return nil
}

// KEYS[1] hits (sorted set), KEYS[2] block flag; ARGV now ms, window ms,
// max, lockout ms, a unique member.
var hitSource = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`

// Blocked implements Store.
func (s *RedisStore) Blocked(ctx context.Context, key string, _ time.Time) (bool, error) {
	n, err := s.c.Exists(ctx, "ivrpin:block:"+key).Result()
	return n == 1, err
}

// Hit implements Store.
func (s *RedisStore) Hit(ctx context.Context, key string, r Rule, now time.Time) (bool, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	member := strconv.FormatInt(now.UnixNano(), 36) + "-" + hex.EncodeToString(rnd[:])
	var hit *redis.Cmd
	err := s.replicated(ctx, func(p redis.Pipeliner) {
		hit = p.Eval(ctx, hitSource, []string{"ivrpin:hits:" + key, "ivrpin:block:" + key},
			now.UnixMilli(), r.Window.Milliseconds(), r.Max, r.Lockout.Milliseconds(), member)
	})
	if err != nil {
		return false, err
	}
	res, err := hit.Int()
	if err != nil {
		return false, err
	}
	return res == 1, nil
}

// Mark implements Store (SET NX: one instance wins).
func (s *RedisStore) Mark(ctx context.Context, key string) (bool, error) {
	var set *redis.BoolCmd
	err := s.replicated(ctx, func(p redis.Pipeliner) { set = p.SetNX(ctx, "ivrpin:mark:"+key, "1", 0) })
	if err != nil {
		return false, err
	}
	return set.Result()
}

// Marked implements Store.
func (s *RedisStore) Marked(ctx context.Context, key string) (bool, error) {
	n, err := s.c.Exists(ctx, "ivrpin:mark:"+key).Result()
	return n == 1, err
}

// Unmark implements Store.
func (s *RedisStore) Unmark(ctx context.Context, key string) error {
	return s.c.Del(ctx, "ivrpin:mark:"+key).Err()
}

// Close implements Store.
func (s *RedisStore) Close() error { return s.c.Close() }

// Client is the store's Redis client (the line's attempt registry shares it).
func (s *RedisStore) Client() *redis.Client { return s.c }

type quiet struct{}

func (quiet) Printf(context.Context, string, ...interface{}) {}
