package line_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/demo"
	"github.com/ivr-pin/ivr-pin/internal/testkit/redistest"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/faults"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/keysecuresim"
)

var changeKeys = []string{change, card, exp, oldPIN, newPIN, newPIN}

// Card host faults: each is spoken honestly, recorded, and never resent.
func TestDrillCardHostFaults(t *testing.T) {
	cases := []struct {
		name    string
		fault   faults.Fault
		outcome string
		prompt  string
		applied int
	}{
		{"slow beyond the timeout", faults.Fault{Kind: faults.Delay, Delay: time.Second}, "ambiguous", "result-ambiguous", 1},
		{"500", faults.Fault{Kind: faults.Status, Status: 500}, "ambiguous", "result-ambiguous", 0},
		{"503", faults.Fault{Kind: faults.Status, Status: 503}, "unavailable", "result-unavailable", 0},
		{"reset after the request was read", faults.Fault{Kind: faults.Reset}, "ambiguous", "result-ambiguous", 1},
		{"malformed body", faults.Fault{Kind: faults.Malformed}, "ambiguous", "result-ambiguous", 1},
		{"answer for another message", faults.Fault{Kind: faults.WrongMsgID}, "ambiguous", "result-ambiguous", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := startLine(t, nil, demo.Options{HostTimeout: 400 * time.Millisecond})
			c.fault.Count = 1
			l.Sims.CardHost.Faults.Set(c.fault)
			ch, rec := l.call(t, aritest.CallOptions{}, changeKeys...)
			if rec.Outcome != c.outcome || rec.Host != "cardhost" || rec.MsgID == "" || !played(ch, c.prompt) {
				t.Fatalf("record %+v, played %v", rec, ch.Snapshot().Played)
			}
			deadline := time.Now().Add(3 * time.Second)
			for l.Sims.CardHost.Applied() < c.applied && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := l.Sims.CardHost.Applied(); got != c.applied || len(l.Sims.CardHost.Received()) != 1 {
				t.Fatalf("host applied %d (want %d) from %d requests (want 1)", got, c.applied, len(l.Sims.CardHost.Received()))
			}
		})
	}
}

func TestDrillKeySecureTokenExpiresMidRun(t *testing.T) {
	l := startLine(t, nil, demo.Options{})
	l.Sims.KeySecure.AddCard(keysecuresim.Card{CardNo: "C202611010001", CardholderNo: "U202611010001", Type: "Physical",
		Status: "Activated", Created: time.Now().Add(-72 * time.Hour), PAN: "4539148803436467", Expiry: "2911", CVV: "364"})
	_, first := l.call(t, aritest.CallOptions{}, "2", setupCard, "0130", "731", "482915#", "482915#")
	if first.Outcome != "changed" {
		t.Fatalf("first setup: %+v", first)
	}
	l.Sims.KeySecure.ExpireTokens()
	ch, second := l.call(t, aritest.CallOptions{}, "2", "4539148803436467#", "1129", "364", "730164#", "730164#")
	if second.Outcome != "changed" || second.Host != "keysecure" || !played(ch, "result-set") {
		t.Fatalf("after the token expired: %+v", second)
	}
	if l.Sims.KeySecure.PINSets() != 2 {
		t.Fatalf("%d PINs set, want 2", l.Sims.KeySecure.PINSets())
	}
}

// Asterisk restarts mid-call: the call is gone (recorded as a hang-up, no
// host request), the app reconnects by itself, and the next call works.
func TestDrillARIServerRestarted(t *testing.T) {
	l := startLine(t, func(c *config.Config) { c.FirstDigitTimeout = 5 * time.Second }, demo.Options{})
	ch := l.callAtExpiry(t)
	// Restart once the prompt is over and the app waits for digits: a
	// restart while its REST play request is still in flight fails that
	// request, and the call is then (truthfully) audited as an error.
	if err := ch.WaitQuiet(50*time.Millisecond, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.ARI.Restart(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := l.ARI.WaitConnected("ivr-pin", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	rec, err := l.RecordFor(ch.ID, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rec.End != "hangup" || rec.Outcome != "none" || len(l.Sims.CardHost.Received()) != 0 {
		t.Fatalf("the lost call: %+v", rec)
	}
	_, next := l.call(t, aritest.CallOptions{}, changeKeys...)
	if next.Outcome != "changed" {
		t.Fatalf("a call after the restart: %+v", next)
	}
}

// withRedis points the line's limits at a fresh redis-server with a card
// limit of two attempts; stop kills that server.
func withRedis(t *testing.T) (mutate func(*config.Config), stop func()) {
	url, stop := redistest.Start(t)
	return func(c *config.Config) {
		c.RedisURL, c.LimitCardMax, c.LimitCallerMax = url, 2, 10
		c.LimitCardWindow, c.LimitCardLockout = time.Hour, time.Hour
		c.LimitKey = hex.EncodeToString([]byte("a shared limit key for tests"))
	}, stop
}

func TestDrillRedisDownFailsClosed(t *testing.T) {
	redis, stopRedis := withRedis(t)
	l := startLine(t, redis, demo.Options{})
	if _, rec := l.call(t, aritest.CallOptions{}, changeKeys...); rec.Outcome != "changed" {
		t.Fatalf("with Redis up: %+v", rec)
	}
	stopRedis()
	ch, rec := l.call(t, aritest.CallOptions{CallerNumber: "15559990000"}, changeKeys...)
	if rec.End != "limit_store_unavailable" || rec.Outcome != "none" || !played(ch, "result-unavailable") {
		t.Fatalf("with Redis down: %+v played %v", rec, ch.Snapshot().Played)
	}
	if n := len(l.Sims.CardHost.Received()); n != 1 {
		t.Fatalf("%d card host requests: the line did not fail closed", n)
	}
}

func TestDrillCardLimitRefusesFurtherAttempts(t *testing.T) {
	bothTransports(t, func(t *testing.T, tr string) {
		redis, _ := withRedis(t)
		l := startLine(t, redis, demo.Options{Transport: tr})
		// Two wrong current PINs from two phones use up the card's two attempts.
		for i, caller := range []string{"15551110001", "15551110002"} {
			if _, rec := l.call(t, aritest.CallOptions{CallerNumber: caller}, change, card, exp, "1357#", newPIN, newPIN); rec.Outcome != "wrong_pin" {
				t.Fatalf("attempt %d: %+v", i, rec)
			}
		}
		ch, rec := l.call(t, aritest.CallOptions{CallerNumber: "15551110003"}, changeKeys...)
		if rec.End != "limited" || !played(ch, "limit-reached") || rec.Outcome != "none" {
			t.Fatalf("third attempt on the card: %+v played %v", rec, ch.Snapshot().Played)
		}
		if n := len(l.Sims.CardHost.Received()); n != 2 {
			t.Fatalf("%d host requests, want 2", n)
		}
	})
}

// A call still running when the drain deadline passes is ended by the line,
// and its audit record says so (it was recorded as a hang-up before).
func TestDrillDrainDeadlineIsAudited(t *testing.T) {
	bothTransports(t, func(t *testing.T, tr string) {
		l := startLine(t, func(c *config.Config) { c.FirstDigitTimeout = 30 * time.Second }, demo.Options{Transport: tr, DrainTimeout: 200 * time.Millisecond})
		ch, err := l.ARI.PlaceCall(aritest.CallOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.WaitPlayed(5*time.Second, "menu-repeat", 1); err != nil {
			t.Fatal(err)
		}
		if err := l.Shutdown(); err != nil {
			t.Fatal(err)
		}
		rec, err := l.RecordFor(ch.ID, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if rec.End != "drain_deadline" || rec.Outcome != "none" {
			t.Fatalf("%+v", rec)
		}
		if _, err := ch.WaitEnded(5 * time.Second); err != nil {
			t.Fatalf("the line did not hang the call up: %v", err)
		}
	})
}
