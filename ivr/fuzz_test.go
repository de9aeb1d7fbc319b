package ivr

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/flows"
)

// FuzzEventFrames feeds arbitrary frames (one per line) through the event
// decoder and into the call registry, as the event reader does: a
// StasisStart registers a call, later frames may press keys on it or hang
// it up. Nothing may panic or leave a call behind. The seed corpus holds
// Asterisk 22.10.1's own events and the malformed ones that once crashed
// the app (a StasisStart without a caller).
func FuzzEventFrames(f *testing.F) {
	// Asterisk answers every REST call with 404: each call ends at once.
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	flow := flows.New(flows.Config{}, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := New(Config{
			ARI:         ARIConfig{URL: srv.URL, WSURL: strings.Replace(srv.URL, "http", "ws", 1) + "/events", Application: "ivr-pin", Timeout: time.Second},
			CallTimeout: 5 * time.Second, Log: logrus.NewEntry(quiet),
		}, flow)
		if err != nil {
			t.Fatal(err)
		}
		for _, frame := range bytes.Split(data, []byte("\n")) {
			if ev, err := decode(frame); err == nil && ev != nil {
				a.handle(ev)
			}
		}
		a.wg.Wait()
		a.closeIdle()
		if n := a.Active(); n != 0 {
			t.Fatalf("%d calls left active", n)
		}
	})
}

// FuzzStasisArgs: transfer arguments and channel variables of any shape
// parse to a call without panicking, and never to a half-valid return
// target or sequence number.
func FuzzStasisArgs(f *testing.F) {
	f.Fuzz(func(t *testing.T, joined string, vars string) {
		args := strings.Split(joined, ",")
		get := func(name string) string {
			for _, kv := range strings.Split(vars, ";") {
				if k, v, ok := strings.Cut(kv, "="); ok && k == name {
					return v
				}
			}
			return ""
		}
		call := ParseTransfer(args, get)
		if r := call.Return; r != nil && (r.Context == "" || r.Extension == "" || r.Priority < 1) {
			t.Fatalf("half-valid return target %+v", r)
		}
		if s := call.SequenceNumber; s != "" && (len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9') {
			t.Fatalf("sequence number %q", s)
		}
		switch call.Mode {
		case "", flows.ModeChange, flows.ModeSetup:
		default:
			t.Fatalf("mode %q", call.Mode)
		}
	})
}

func TestParseTransfer(t *testing.T) {
	vars := map[string]string{"IVRPIN_PAN": "4111111111111111", "IVRPIN_EXPIRY": "2812", "IVRPIN_MODE": "setup", "IVRPIN_SEQ": "01"}
	cases := []struct {
		name string
		args []string
		want flows.Call
	}{
		{"nothing", nil, flows.Call{}},
		{"arguments", []string{"mode=change", "lang=ar", "return=agents/agent7/1", "seq=02"},
			flows.Call{Mode: flows.ModeChange, Language: "ar", SequenceNumber: "02", Return: &flows.Target{Context: "agents", Extension: "agent7", Priority: 1}}},
		{"variables only with transfer", []string{"mode=change"}, flows.Call{Mode: flows.ModeChange}},
		{"transfer reads variables; arguments win", []string{"transfer", "mode=change"},
			flows.Call{Mode: flows.ModeChange, PAN: "4111111111111111", Expiry: "2812", SequenceNumber: "01"}},
		{"unknown mode asks the menu", []string{"mode=agent"}, flows.Call{}},
		{"return without a priority", []string{"return=agents/agent7"}, flows.Call{}},
		{"return with priority 0", []string{"return=agents/agent7/0"}, flows.Call{}},
		{"return with an empty context", []string{"return=/agent7/1"}, flows.Call{}},
		{"three-digit sequence number", []string{"seq=001"}, flows.Call{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ParseTransfer(c.args, func(n string) string { return vars[n] })
			if got.Mode != c.want.Mode || got.Language != c.want.Language || got.PAN != c.want.PAN || got.Expiry != c.want.Expiry ||
				got.SequenceNumber != c.want.SequenceNumber || (got.Return == nil) != (c.want.Return == nil) ||
				(got.Return != nil && *got.Return != *c.want.Return) {
				t.Fatalf("got %+v (return %+v), want %+v", got, got.Return, c.want)
			}
		})
	}
}

func TestAStasisStartWithoutACallerIsServed(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	var rec CallRecord
	a, err := New(Config{ARI: ARIConfig{URL: srv.URL, WSURL: "ws://127.0.0.1:1/events", Application: "ivr-pin"},
		Log: logrus.NewEntry(quiet), OnCallEnd: func(r CallRecord) { rec = r }}, flows.New(flows.Config{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := decode([]byte(`{"type":"StasisStart","application":"ivr-pin","args":[],"channel":{"id":"1795350058.9","name":"PJSIP/x","state":"Ring"}}`))
	if err != nil || ev == nil {
		t.Fatal(err)
	}
	a.handle(ev) // panicked before: nil caller
	a.wg.Wait()
	a.closeIdle()
	if rec.ChannelID != "1795350058.9" || rec.CallerID != "" {
		t.Fatalf("%+v", rec)
	}
}
