package redistest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ivr-pin/ivr-pin/internal/testkit/redistest"
)

// The drills rely on it: a held promotion leaves the master down past
// Sentinel's down-after and several failover attempts, and a release ends
// the gap.
func TestHoldPromotionKeepsTheGapOpen(t *testing.T) {
	sen := redistest.StartSentinel(t, time.Second)
	sen.HoldPromotion(t)
	sen.Kill("master")
	sc := redis.NewSentinelClient(&redis.Options{Addr: sen.Addr})
	defer sc.Close()
	// Down after 1 s, a failover attempted and aborted, a second one
	// 4 s later (twice failover-timeout): all inside these 7 s.
	for i := 0; i < 70; i++ {
		addr, err := sc.GetMasterAddrByName(context.Background(), sen.Master).Result()
		if err == nil && net.JoinHostPort(addr[0], addr[1]) != sen.MasterAddr {
			t.Fatalf("promoted %v while held", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sen.ReleasePromotion(t)
	sen.WaitPromoted(t, 60*time.Second)
}
