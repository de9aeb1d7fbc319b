package limits

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/internal/testkit/redistest"
	"github.com/ivr-pin/ivr-pin/internal/testkit/testpki"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

var rule = Rule{Max: 3, Window: time.Hour, Lockout: 2 * time.Hour}

func startRedis(t *testing.T) (string, func()) { return redistest.Start(t) }

// stores opens each kind of store for a subtest: the subtest's own t, so a
// missing redis-server skips that subtest alone.
func stores() map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"bolt": func(t *testing.T) Store {
			s, err := OpenBolt(filepath.Join(t.TempDir(), "attempts.db"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"redis": func(t *testing.T) Store {
			url, _ := startRedis(t)
			s, err := OpenRedis(context.Background(), RedisOptions{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

func TestSlidingWindowAndLockout(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			ctx := context.Background()
			t0 := time.Now()
			for i := 0; i < rule.Max; i++ {
				if ok, err := s.Hit(ctx, "k", rule, t0.Add(time.Duration(i)*time.Second)); !ok || err != nil {
					t.Fatalf("hit %d refused: %v", i, err)
				}
			}
			if ok, _ := s.Hit(ctx, "k", rule, t0.Add(10*time.Second)); ok {
				t.Fatal("hit past the limit allowed")
			}
			if b, _ := s.Blocked(ctx, "k", t0.Add(11*time.Second)); !b {
				t.Fatal("not locked out after passing the limit")
			}
			if b, _ := s.Blocked(ctx, "other", t0); b {
				t.Fatal("an unrelated key is blocked")
			}
		})
	}
}

func TestBoltWindowSlides(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t0 := time.Now()
	for i := 0; i < rule.Max; i++ {
		_, _ = s.Hit(ctx, "k", rule, t0)
	}
	// An hour later the old attempts have left the window.
	if ok, _ := s.Hit(ctx, "k", rule, t0.Add(rule.Window+time.Second)); !ok {
		t.Fatal("attempts outside the window still count")
	}
}

func TestBoltCountersSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "attempts.db")
	s, _ := OpenBolt(path)
	now := time.Now()
	for i := 0; i < rule.Max; i++ {
		_, _ = s.Hit(context.Background(), "card:x", rule, now)
	}
	s.Close()
	s2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if ok, _ := s2.Hit(context.Background(), "card:x", rule, now); ok {
		t.Fatal("the counters were lost on restart")
	}
}

// Two instances sharing Redis never let more than Max attempts through
// together, however the attempts interleave.
func TestRedisIsAtomicAcrossInstances(t *testing.T) {
	url, _ := startRedis(t)
	a, err := OpenRedis(context.Background(), RedisOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := OpenRedis(context.Background(), RedisOptions{URL: url})
	defer b.Close()
	r := Rule{Max: 5, Window: time.Hour, Lockout: time.Hour}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(s Store) {
			defer wg.Done()
			if ok, err := s.Hit(context.Background(), "card:shared", r, time.Now()); err == nil && ok {
				allowed.Add(1)
			}
		}([]Store{a, b}[i%2])
	}
	wg.Wait()
	if allowed.Load() != int32(r.Max) {
		t.Fatalf("%d attempts allowed across two instances, want %d", allowed.Load(), r.Max)
	}
}

func TestLimiterKeysNeverHoldThePAN(t *testing.T) {
	l := New(nil, []byte("k"), rule, rule)
	if k := l.CardKey("4111111111111111"); len(k) < 20 || k == "card:4111111111111111" || containsDigits(k, "4111111111") {
		t.Fatalf("card key %q", k)
	}
	if l.CardKey("4111111111111111") == New(nil, []byte("other"), rule, rule).CardKey("4111111111111111") {
		t.Fatal("card key does not depend on the HMAC key")
	}
}

func containsDigits(s, d string) bool {
	for i := 0; i+len(d) <= len(s); i++ {
		if s[i:i+len(d)] == d {
			return true
		}
	}
	return false
}

func TestLimiterCardAndCaller(t *testing.T) {
	s, _ := OpenBolt(filepath.Join(t.TempDir(), "a.db"))
	defer s.Close()
	l := New(s, []byte("key"), Rule{Max: 2, Window: time.Hour, Lockout: time.Hour}, Rule{Max: 3, Window: time.Hour, Lockout: time.Hour})
	ctx := context.Background()
	pan := secret.PAN("4111111111111111")
	if err := l.Record(ctx, "15551230001", flows.Card{PAN: pan}); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, "15551230002", flows.Card{PAN: pan}); err != nil {
		t.Fatal(err)
	}
	// A third attempt on the card from yet another phone is refused...
	if err := l.Record(ctx, "15551230003", flows.Card{PAN: pan}); !errors.Is(err, ErrLimited) {
		t.Fatalf("card limit: %v", err)
	}
	// ...and the card stays refused for everyone.
	if err := l.Check(ctx, "15551239999", flows.Card{PAN: pan}); !errors.Is(err, ErrLimited) {
		t.Fatalf("card not locked out: %v", err)
	}
	// The caller limit counts attempts without a card too: three pass, the
	// fourth passes the limit.
	for i := 0; i < 3; i++ {
		if err := l.Record(ctx, "15550000000", flows.Card{}); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := l.Record(ctx, "15550000000", flows.Card{}); !errors.Is(err, ErrLimited) {
		t.Fatalf("fourth attempt: %v", err)
	}
	if err := l.Check(ctx, "15550000000", flows.Card{}); !errors.Is(err, ErrLimited) {
		t.Fatalf("caller not locked out: %v", err)
	}
}

func TestRedisDownFailsClosed(t *testing.T) {
	url, stop := startRedis(t)
	s, err := OpenRedis(context.Background(), RedisOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := New(s, []byte("k"), rule, rule)
	stop()
	err = l.Record(context.Background(), "15551230001", flows.Card{PAN: "4111111111111111"})
	if err == nil || errors.Is(err, ErrLimited) {
		t.Fatalf("with Redis down: %v (want a store error, so the flow fails closed)", err)
	}
	if err := l.Check(context.Background(), "15551230001", flows.Card{}); err == nil {
		t.Fatal("Check passed with Redis down")
	}
}

func TestFirstSetupMarks(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			l := New(s, []byte("0123456789abcdef"), rule, rule)
			ctx := context.Background()
			if done, err := l.SetupDone(ctx, "C202605220001"); done || err != nil {
				t.Fatalf("a fresh card is marked: %v", err)
			}
			if ok, err := l.ClaimSetup(ctx, "C202605220001"); !ok || err != nil {
				t.Fatalf("first claim refused: %v", err)
			}
			if ok, _ := l.ClaimSetup(ctx, "C202605220001"); ok {
				t.Fatal("second claim allowed")
			}
			if done, _ := l.SetupDone(ctx, "C202605220001"); !done {
				t.Fatal("claimed card not marked")
			}
			if done, _ := l.SetupDone(ctx, "C202605220002"); done {
				t.Fatal("another card is marked")
			}
			if err := l.ReleaseSetup(ctx, "C202605220001"); err != nil {
				t.Fatal(err)
			}
			if done, _ := l.SetupDone(ctx, "C202605220001"); done {
				t.Fatal("released card still marked")
			}
			// 100 calls racing for one card: exactly one wins.
			var won atomic.Int32
			var wg sync.WaitGroup
			for i := 0; i < 100; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if ok, err := l.ClaimSetup(ctx, "C202605229999"); ok && err == nil {
						won.Add(1)
					}
				}()
			}
			wg.Wait()
			if won.Load() != 1 {
				t.Fatalf("%d of 100 concurrent claims won", won.Load())
			}
		})
	}
}

func TestSetupKeysHoldNoCardID(t *testing.T) {
	l := New(nil, []byte("0123456789abcdef"), rule, rule)
	k := l.SetupKey("C202605220001")
	if k == l.SetupKey("C202605220002") || k == l.CardKey("C202605220001") || len(k) != len("setup:")+32 {
		t.Fatalf("key %s", k)
	}
	if strings.Contains(k, "202605220001") {
		t.Fatal("the key holds the card id")
	}
}

func TestNormaliseCallerID(t *testing.T) {
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"+15551230001", "15551230001", true},
		{"15551230001", "15551230001", true},
		{"0015551230001", "15551230001", true},
		{"+1 (555) 123-0001", "15551230001", true},
		{"+1.555.123.0001", "15551230001", true},
		{"", "", false},
		{"anonymous", "", false},
		{"Anonymous", "", false},
		{"withheld", "", false},
		{"restricted", "", false},
		{"0", "", false},
		{"555+123", "", false},
		{"sip:alice@example.com", "", false},
	}
	for _, c := range cases {
		got, ok := NormaliseCallerID(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("NormaliseCallerID(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestOneCallerInManyFormsIsOneCaller(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "attempts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := New(s, []byte("0123456789abcdef"), Rule{}, Rule{Max: 3, Window: time.Hour, Lockout: time.Hour})
	ctx := context.Background()
	for _, id := range []string{"+15551230001", "15551230001", "0015551230001"} {
		if err := l.Record(ctx, id, flows.Card{}); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if err := l.Record(ctx, "+1 555 123 0001", flows.Card{}); !l.IsLimited(err) {
		t.Fatalf("the fourth attempt from the same number in another form: %v", err)
	}
	if err := l.Check(ctx, "15551230001", flows.Card{}); !l.IsLimited(err) {
		t.Fatalf("not locked out: %v", err)
	}
	if err := l.Check(ctx, "+15551230002", flows.Card{}); err != nil {
		t.Fatalf("another number is locked out: %v", err)
	}
}

func TestWithheldCallersShareOneStricterBucket(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "attempts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := New(s, []byte("0123456789abcdef"), Rule{}, Rule{Max: 10, Window: time.Hour, Lockout: time.Hour})
	l.Withheld = Rule{Max: 2, Window: time.Hour, Lockout: time.Hour}
	ctx := context.Background()
	for _, id := range []string{"", "anonymous"} {
		if err := l.Record(ctx, id, flows.Card{}); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
	}
	if err := l.Record(ctx, "Restricted", flows.Card{}); !l.IsLimited(err) {
		t.Fatalf("a third withheld call: %v", err)
	}
	if err := l.Check(ctx, "", flows.Card{}); !l.IsLimited(err) {
		t.Fatalf("the withheld bucket is not locked: %v", err)
	}
	if err := l.Record(ctx, "+15551230001", flows.Card{}); err != nil {
		t.Fatalf("a caller with a number shares the withheld bucket: %v", err)
	}
}

// An HMAC key that an older version kept in the store file beside the
// hashes is deleted when the store opens, and the limiter runs on the key it
// is given.
func TestStoredKeyIsForgotten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "attempts.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("hmac-key"), []byte("an old stored key, 32 bytes long"))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(context.Background(), Config{StorePath: path, Card: rule, Caller: rule}); err == nil {
		t.Fatal("a limiter without a key")
	}
	told := false
	l, err := Open(context.Background(), Config{StorePath: path, Card: rule, Caller: rule,
		Key: []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, OnStoredKey: func() { told = true }})
	if err != nil {
		t.Fatal(err)
	}
	l.Store.Close()
	if !told {
		t.Fatal("the stored key was not reported")
	}
	if raw, _ := os.ReadFile(path); strings.Contains(string(raw), "an old stored key") {
		t.Fatal("the old key's bytes are still in the store file")
	}
}

// A rediss:// store is reached over TLS, its certificate checked against
// the CA given (a certificate from another CA is refused).
func TestRedisOverTLS(t *testing.T) {
	pki := testpki.New(t)
	url := redistest.StartTLS(t, pki.ServerCert, pki.ServerKey)
	s, err := OpenRedis(context.Background(), RedisOptions{URL: url, CAs: pki.CAPool})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.Hit(context.Background(), "k", rule, time.Now()); !ok || err != nil {
		t.Fatalf("a hit over TLS: %v %v", ok, err)
	}
	if _, err := OpenRedis(context.Background(), RedisOptions{URL: url, CAs: testpki.New(t).CAPool}); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
}
