package ivr

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/CyCoreSystems/ari/v5/stdbus"
	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/ivr/keypad"
)

// notFoundLink is a server and a link whose Asterisk answers every REST
// request with 404: every call ends at its first request.
func notFoundLink(t testing.TB, h Handler) (*Server, *link, func()) {
	srv := httptest.NewServer(http.NotFoundHandler())
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	s, err := New(Config{Transport: Inbound(InboundConfig{}), CallTimeout: 5 * time.Second, Log: logrus.NewEntry(quiet)})
	if err != nil {
		t.Fatal(err)
	}
	s.handler, s.life = h, context.Background()
	r := newHTTPREST(srv.URL, "u", "p", time.Second, nil)
	l := s.newLink(r, "ivr-pin", func(app string) bool { return app == "ivr-pin" }, s.cfg.Log)
	return s, l, func() { r.close(); srv.Close() }
}

// a handler that uses every part of a Call.
func everything(c *Call) {
	ctx := c.Context()
	_ = c.Answer(ctx)
	_ = c.Play(ctx, "sound:hello")
	_, _ = c.Collect(ctx, keypad.Spec{Max: 4, FirstDigitTimeout: 50 * time.Millisecond, InterDigitTimeout: 50 * time.Millisecond})
	_, _ = c.Variable(ctx, "X")
	_ = c.Say(ctx, "sound:bye")
}

// FuzzEventFrames feeds arbitrary frames (one per line) through the event
// decoder and into the call registry, as the event reader does: a
// StasisStart registers a call, later frames may press keys on it or hang
// it up. Nothing may panic or leave a call behind. The seed corpus holds
// Asterisk 22.10.1's own events and the malformed ones that once crashed
// the app (a StasisStart without a caller).
func FuzzEventFrames(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, l, done := notFoundLink(t, everything)
		defer done()
		for _, frame := range bytes.Split(data, []byte("\n")) {
			if ev, err := decode(frame); err == nil && ev != nil {
				l.handle(ev)
			}
		}
		s.wg.Wait()
		if n := s.Active(); n != 0 {
			t.Fatalf("%d calls left active", n)
		}
	})
}

func TestAStasisStartWithoutACallerIsServed(t *testing.T) {
	var got *Call
	s, l, done := notFoundLink(t, func(c *Call) { got = c; everything(c) })
	defer done()
	ev, err := decode([]byte(`{"type":"StasisStart","application":"ivr-pin","args":[],"channel":{"id":"1795350058.9","name":"PJSIP/x","state":"Ring"}}`))
	if err != nil || ev == nil {
		t.Fatal(err)
	}
	l.handle(ev) // panicked before: nil caller
	s.wg.Wait()
	if got == nil || got.ID != "1795350058.9" || got.CallerID != "" || got.Name != "PJSIP/x" {
		t.Fatalf("%+v", got)
	}
}

func TestAStasisStartForAnotherAppIsLeftAlone(t *testing.T) {
	ran := false
	s, l, done := notFoundLink(t, func(*Call) { ran = true })
	defer done()
	ev, _ := decode([]byte(`{"type":"StasisStart","application":"other","args":[],"channel":{"id":"1.2","name":"PJSIP/x"}}`))
	l.handle(ev)
	s.wg.Wait()
	if ran || s.Handled() != 0 {
		t.Fatal("the handler ran for another application's call")
	}
}

func TestAPanickingHandlerIsRecoveredAndTheCallHungUp(t *testing.T) {
	var mu sync.Mutex
	var hangups int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			mu.Lock()
			hangups++
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	s, err := New(Config{Transport: Inbound(InboundConfig{}), Log: logrus.NewEntry(logrus.New())})
	if err != nil {
		t.Fatal(err)
	}
	s.handler, s.life = func(*Call) { panic("the card number 4111111111111111") }, context.Background()
	r := newHTTPREST(srv.URL, "u", "p", time.Second, nil)
	defer r.close()
	l := s.newLink(r, "ivr-pin", nil, s.cfg.Log)
	ev, _ := decode([]byte(`{"type":"StasisStart","application":"ivr-pin","channel":{"id":"1.3"}}`))
	l.handle(ev)
	s.wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if hangups != 1 || s.Active() != 0 {
		t.Fatalf("hangups %d, active %d", hangups, s.Active())
	}
}

func dtmf(id string) *ari.ChannelDtmfReceived {
	return &ari.ChannelDtmfReceived{EventData: ari.EventData{Type: "ChannelDtmfReceived"}, Digit: "5", Channel: ari.ChannelData{ID: id}}
}

// BenchmarkDispatch compares delivering one event to its call with n calls
// active: a link's map lookup against ari/v5's bus with one subscription
// per call (the library's canonical pattern, whose Send scans every
// subscription). go test -run '^$' -bench Dispatch ./ivr/
func BenchmarkDispatch(b *testing.B) {
	for _, n := range []int{10, 1000, 5000} {
		events := make([]ari.Event, n)
		for i := range events {
			events[i] = dtmf(strconv.Itoa(i))
		}
		b.Run(fmt.Sprintf("ivr-pin/calls=%d", n), func(b *testing.B) {
			s, l, done := notFoundLink(b, func(c *Call) { <-c.Context().Done() })
			defer done()
			for i := 0; i < n; i++ {
				s.register(l, strconv.Itoa(i))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.handle(events[i%n])
				i++
				if i%4096 == 0 {
					for _, c := range l.calls {
						c.kp.Flush()
					}
				}
			}
			b.StopTimer()
			for _, c := range l.calls {
				c.cancel()
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
