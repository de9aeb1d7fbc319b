package limits

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
