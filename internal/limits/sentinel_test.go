package limits

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/internal/testkit/redistest"
	"github.com/ivr-pin/ivr-pin/internal/testkit/testpki"
)

// A count written before the master dies still counts after Sentinel
// promotes the replica: each limit write waits for the replica (WAIT).
// Writes in the gap fail (the line fails closed); the gap is measured.
func TestACountSurvivesARedisFailover(t *testing.T) {
	sen := redistest.StartSentinel(t, time.Second)
	ctx := context.Background()
	store, err := OpenRedis(ctx, RedisOptions{Sentinels: []string{sen.Addr}, Master: sen.Master, MinReplicas: 1, WaitTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rule := Rule{Max: 3, Window: time.Hour, Lockout: time.Hour}
	// The replica must be in sync before WAIT can be satisfied.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := store.Hit(ctx, "warm-up", rule, time.Now()); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the replica never acknowledged: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < 2; i++ {
		if ok, err := store.Hit(ctx, "card", rule, time.Now()); err != nil || !ok {
			t.Fatalf("hit %d: %v %v", i, ok, err)
		}
	}
	killed := time.Now()
	sen.Kill("master")
	failed := 0
	var ok bool
	for {
		ok, err = store.Hit(ctx, "card", rule, time.Now())
		if err == nil {
			break
		}
		failed++ // fail closed: no call goes on without its limit write
		if time.Since(killed) > 60*time.Second {
			t.Fatalf("no promotion within 60 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	gap := time.Since(killed)
	if !ok {
		t.Fatal("the third attempt was refused: the count grew in the gap")
	}
	// The first two counted: the fourth is past the limit of 3.
	if ok, err := store.Hit(ctx, "card", rule, time.Now()); err != nil || ok {
		t.Fatalf("the fourth attempt after the failover: ok=%v err=%v (the count before the failover was lost)", ok, err)
	}
	t.Logf("master killed: writes failed closed for %s (%d tries) until Sentinel promoted the replica (down-after 1 s)", gap.Round(100*time.Millisecond), failed)
	// The old master comes back as a replica; nothing else restarts.
	sen.RestartOldMaster()
	if ok, err := store.Blocked(ctx, "card", time.Now()); err != nil || !ok {
		t.Fatalf("blocked after the old master rejoined: %v %v", ok, err)
	}
}

// With REDIS_TLS the sentinels and the master they name are reached over
// TLS, their certificates checked against the CA given.
func TestSentinelOverTLS(t *testing.T) {
	pki := testpki.New(t)
	sen := redistest.StartSentinelWith(t, time.Second, &redistest.TLS{CertFile: pki.ServerCert, KeyFile: pki.ServerKey,
		CAFile: pki.CAFile, Config: &tls.Config{RootCAs: pki.CAPool}})
	ctx := context.Background()
	store, err := OpenRedis(ctx, RedisOptions{Sentinels: []string{sen.Addr}, Master: sen.Master, TLS: true, CAs: pki.CAPool})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if ok, err := store.Hit(ctx, "card", Rule{Max: 3, Window: time.Hour, Lockout: time.Hour}, time.Now()); err != nil || !ok {
		t.Fatalf("a hit through Sentinel over TLS: %v %v", ok, err)
	}
	if _, err := OpenRedis(ctx, RedisOptions{Sentinels: []string{sen.Addr}, Master: sen.Master}); err == nil {
		t.Fatal("reached a TLS Sentinel in clear")
	}
}
