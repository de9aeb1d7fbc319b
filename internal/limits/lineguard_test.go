package limits

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Ten requests in flight at once, every one failing, against a guard of
// five: the guard lets five be sent and refuses the rest, however they
// interleave, on either store (two instances sharing Redis included).
func TestLineGuardSendsNoMoreFailingRequestsThanMax(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			g := &LineGuard{Store: s, Max: 5, Window: time.Hour}
			var sent, refused atomic.Int32
			var wg sync.WaitGroup
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					settle, ok, err := g.Reserve(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						refused.Add(1)
						return
					}
					sent.Add(1)
					time.Sleep(5 * time.Millisecond) // the host answers
					if err := settle(ctx, true); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if sent.Load() != 5 || refused.Load() != 5 {
				t.Fatalf("sent %d, refused %d; want 5 and 5", sent.Load(), refused.Load())
			}
			if on, err := g.On(context.Background()); err != nil || !on {
				t.Fatalf("guard not on after five failures: %v %v", on, err)
			}
		})
	}
}

// Requests whose checks pass give their places back: many more than Max
// go through, and the guard stays off.
func TestLineGuardPassingChecksGiveTheirPlaceBack(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			g := &LineGuard{Store: s, Max: 2, Window: time.Hour}
			ctx := context.Background()
			var wg sync.WaitGroup
			var sent atomic.Int32
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(ctx, time.Minute)
					defer cancel()
					settle, ok, err := g.Reserve(ctx)
					if err != nil || !ok {
						t.Errorf("refused a passing request: %v %v", ok, err)
						return
					}
					sent.Add(1)
					_ = settle(ctx, false)
				}()
			}
			wg.Wait()
			if sent.Load() != 20 {
				t.Fatalf("%d of 20 passing requests sent", sent.Load())
			}
			if on, _ := g.On(ctx); on {
				t.Fatal("guard on after passing checks")
			}
		})
	}
}

// A place held by an instance that died before it settled is free again
// once its hold ends; until then a request waits rather than going out.
func TestLineGuardHeldPlaceEndsWithItsHold(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			now := time.Now()
			g := &LineGuard{Store: s, Max: 1, Window: time.Hour, Hold: time.Minute, Now: func() time.Time { return now }}
			if _, ok, err := g.Reserve(context.Background()); err != nil || !ok {
				t.Fatal(ok, err)
			}
			// The holder dies. The next request waits (its context ends).
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if _, ok, _ := g.Reserve(ctx); ok {
				t.Fatal("a second place taken while the first was held")
			}
			now = now.Add(2 * time.Minute)
			if _, ok, err := g.Reserve(context.Background()); err != nil || !ok {
				t.Fatalf("place not free after its hold: %v %v", ok, err)
			}
		})
	}
}

// A line guard written by the first layout (one JSON value of the key's
// failures and held places) is moved to the key's bucket on first use: its
// lock, failures and places still count.
func TestLineGuardFromTheFirstLayoutKeepsCounting(t *testing.T) {
	now := time.Now()
	s := firstLayout(t, reserveEntry{Failed: []int64{now.Add(-time.Minute).UnixNano(), now.Add(-2 * time.Hour).UnixNano()},
		Held: map[string]int64{"held-1": now.Add(time.Minute).UnixNano(), "gone-1": now.Add(-time.Minute).UnixNano()}})
	r := Rule{Max: 3, Window: time.Hour, Lockout: time.Hour}
	ctx := context.Background()
	// In the window: one failure and one place (the other failure is past
	// the window, the other hold past its end): one place is left.
	id, state, err := s.Reserve(ctx, lineGuardKey, r, time.Minute, now)
	if err != nil || state != Reserved {
		t.Fatalf("first reservation: %v %v", state, err)
	}
	if _, state, _ := s.Reserve(ctx, lineGuardKey, r, time.Minute, now); state != Wait {
		t.Fatalf("second reservation: %v, want wait (three counted of three)", state)
	}
	for _, held := range []string{"held-1", id} {
		if err := s.Settle(ctx, lineGuardKey, held, true, r, now); err != nil {
			t.Fatal(err)
		}
	}
	if on, err := s.Blocked(ctx, lineGuardKey, now); err != nil || !on {
		t.Fatalf("three failures of three did not lock the line: %v %v", on, err)
	}
	if _, state, _ := s.Reserve(ctx, lineGuardKey, r, time.Minute, now); state != Full {
		t.Fatalf("reservation while locked: %v", state)
	}
}

// A locked key written by the first layout reads as locked before anything
// moved it.
func TestALockFromTheFirstLayoutIsRead(t *testing.T) {
	now := time.Now()
	s := firstLayout(t, reserveEntry{BlockedUntil: now.Add(time.Hour).UnixMilli()})
	if on, err := s.Blocked(context.Background(), lineGuardKey, now); err != nil || !on {
		t.Fatalf("%v %v", on, err)
	}
}

// BenchmarkReserveWithPlacesHeld: a reservation and its settle while
// `held` other places are held. The first layout decoded and encoded every
// held place each time (linear in held); the key's bucket touches a few
// entries (logarithmic).
//
//	go test -run '^$' -bench ReserveWithPlacesHeld ./internal/limits/
func BenchmarkReserveWithPlacesHeld(b *testing.B) {
	for _, held := range []int{10, 2000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			s, err := OpenBolt(filepath.Join(b.TempDir(), "limits.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			// The bucket's work, not the disk's nor the batch's wait.
			s.db.NoSync, s.db.MaxBatchSize = true, 1
			ctx, now := context.Background(), time.Now()
			r := Rule{Max: held + 10, Window: time.Hour, Lockout: time.Hour}
			for range held {
				if _, _, err := s.Reserve(ctx, lineGuardKey, r, time.Hour, now); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				id, state, err := s.Reserve(ctx, lineGuardKey, r, time.Hour, now)
				if err != nil || state != Reserved {
					b.Fatal(state, err)
				}
				if err := s.Settle(ctx, lineGuardKey, id, false, r, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// firstLayout is a store whose line guard was written by the first layout:
// e as the key's one JSON value.
func firstLayout(t *testing.T, e reserveEntry) *BoltStore {
	t.Helper()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "limits.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	data, _ := json.Marshal(e)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(reservations)
		if err != nil {
			return err
		}
		return b.Put([]byte(lineGuardKey), data)
	}); err != nil {
		t.Fatal(err)
	}
	return s
}
