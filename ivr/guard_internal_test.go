package ivr

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

func testGuard(extra func(*OutboundConfig)) *guard {
	cfg := OutboundConfig{Listen: "127.0.0.1:0", Application: "ivr-pin"}
	if extra != nil {
		extra(&cfg)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg.Log = logrus.NewEntry(log)
	return Outbound(cfg).(*outbound).guard
}

// Failures across all sources past the budget of a second slow every source
// that has not logged in lately for the rest of that second; a source that
// has (Asterisk) goes on, and the next second starts afresh.
func TestGlobalFailureBudgetSlowsUnknownSources(t *testing.T) {
	g := testGuard(func(c *OutboundConfig) { c.MaxFailuresPerSecond = 10 })
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	g.loggedIn("127.0.0.1", nil, t0)
	for i := range 10 {
		src := fmt.Sprintf("198.51.100.%d", i)
		if g.refuseLogin(src, t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("failure %d refused before the budget was spent", i)
		}
		g.failed(src, t0.Add(time.Duration(i)*time.Millisecond))
	}
	at := t0.Add(500 * time.Millisecond)
	cases := []struct {
		name, src string
		at        time.Time
		refused   bool
	}{
		{"a new source in the spent second", "203.0.113.9", at, true},
		{"Asterisk, logged in lately", "127.0.0.1", at, false},
		{"a new source in the next second", "203.0.113.9", t0.Add(1100 * time.Millisecond), false},
	}
	for _, c := range cases {
		if got := g.refuseLogin(c.src, c.at); got != c.refused {
			t.Errorf("%s: refused %v, want %v", c.name, got, c.refused)
		}
	}
	if st := g.stats(); st.LoginsSlowed != 1 || st.LoginsThrottled != 0 {
		t.Fatalf("%+v", st)
	}
}

// The failure table never holds more than its bound: the oldest source
// goes first, counted; the newest is still throttled.
func TestFailureTableIsBounded(t *testing.T) {
	g := testGuard(func(c *OutboundConfig) { c.MaxSources, c.MaxFailures = 1000, 3 })
	now := time.Now()
	for i := range 1500 {
		g.failed(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
	}
	if n := g.failures.Len(); n != 1000 {
		t.Fatalf("%d sources kept, bound 1000", n)
	}
	if st := g.stats(); st.SourcesEvicted != 500 {
		t.Fatalf("%d evicted, want 500", st.SourcesEvicted)
	}
	last := "10.0.5.219" // the 1500th
	for range 2 {
		g.failed(last, now)
	}
	if !g.refuseLogin(last, now) {
		t.Fatal("the newest source is not throttled after its third failure")
	}
}

func TestSourceKeys(t *testing.T) {
	g := testGuard(nil)
	cases := []struct{ remote, want string }{
		{"192.0.2.7:5060", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:5060", "192.0.2.7"},
		{"[2001:db8:0:7::1]:40000", "2001:db8:0:7::/64"},
		{"[2001:db8:0:7:ffff::9]:40000", "2001:db8:0:7::/64"},
		{"[2001:db8:0:8::1]:40000", "2001:db8:0:8::/64"},
		{"[fe80::1%eth0]:1", "fe80::/64"},
	}
	for _, c := range cases {
		if got := g.sourceKey(c.remote); got != c.want {
			t.Errorf("%s: %s, want %s", c.remote, got, c.want)
		}
	}
	g48 := testGuard(func(c *OutboundConfig) { c.IPv6Prefix = 48 })
	if got := g48.sourceKey("[2001:db8:0:7::1]:1"); got != "2001:db8::/48" {
		t.Errorf("with a /48: %s", got)
	}
}

// BenchmarkFailedLogin is the cost of one refused login (counted and
// checked) with the failure table empty, and full at 100,000 sources where
// every new source evicts the oldest: it stays flat (O(1) eviction), where
// a sweep of the table once cost 1.84 ms a login at that size.
func BenchmarkFailedLogin(b *testing.B) {
	for _, filled := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("sources=%d", filled), func(b *testing.B) {
			g := testGuard(nil)
			now := time.Now()
			for i := range filled {
				g.failed(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), now)
			}
			// More sources than the table holds: at 100,000 every one
			// evicts the oldest.
			srcs := make([]string, 1<<17)
			for i := range srcs {
				srcs[i] = fmt.Sprintf("172.16.%d.%d", i>>8, i&255)
			}
			b.ResetTimer()
			for i := range b.N {
				src := srcs[i%len(srcs)]
				g.refuseLogin(src, now)
				g.failed(src, now)
			}
		})
	}
}
