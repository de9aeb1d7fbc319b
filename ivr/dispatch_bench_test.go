package ivr

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/CyCoreSystems/ari/v5/stdbus"
	"github.com/sirupsen/logrus"
)

func dtmf(id string) *ari.ChannelDtmfReceived {
	return &ari.ChannelDtmfReceived{EventData: ari.EventData{Type: "ChannelDtmfReceived"}, Digit: "5", Channel: ari.ChannelData{ID: id}}
}

// BenchmarkDispatch compares delivering one event to its call with n calls
// active: ivr.App's map lookup against ari/v5's bus with one subscription
// per call (the library's canonical pattern, whose Send scans every
// subscription). go test -run '^$' -bench Dispatch ./ivr/
func BenchmarkDispatch(b *testing.B) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	for _, n := range []int{10, 1000, 5000} {
		events := make([]ari.Event, n)
		for i := range events {
			events[i] = dtmf(strconv.Itoa(i))
		}
		b.Run(fmt.Sprintf("ivr-pin/calls=%d", n), func(b *testing.B) {
			client, err := NewClient(ARIConfig{URL: "http://127.0.0.1:1/ari", Username: "u", Password: "p", Application: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			a := &App{calls: map[string]*Session{}, cfg: Config{Log: logrus.NewEntry(log)}}
			for i := 0; i < n; i++ {
				id := strconv.Itoa(i)
				_, cancel := context.WithCancel(context.Background())
				defer cancel()
				a.calls[id] = newSession(client, ari.NewKey(ari.ChannelKey, id), cancel, a.cfg.Log)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				a.handle(events[i%n])
				i++
				if i%4096 == 0 {
					for _, s := range a.calls {
						s.kp.Flush()
					}
				}
			}
		})
		b.Run(fmt.Sprintf("ari-v5-bus/calls=%d", n), func(b *testing.B) {
			bus := stdbus.New()
			var wg sync.WaitGroup
			subs := make([]ari.Subscription, 0, n)
			for i := 0; i < n; i++ {
				sub := bus.Subscribe(ari.NewKey(ari.ChannelKey, strconv.Itoa(i)), ari.Events.All)
				subs = append(subs, sub)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range sub.Events() {
					}
				}()
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bus.Send(events[i%n])
				i++
			}
			b.StopTimer()
			// Not bus.Close: it ranges over the subscriptions while each Cancel
			// removes itself from that slice, so some are never closed.
			for _, sub := range subs {
				sub.Cancel()
			}
			wg.Wait()
		})
	}
}
