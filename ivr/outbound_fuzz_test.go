package ivr_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/ivr-pin/ivr-pin/ivr"
)

// FuzzOutboundMessages sends arbitrary messages (one per line) on an
// outbound websocket, as a broken or hostile Asterisk could: events,
// RESTResponses for requests that were or were not made, registrations.
// Nothing may panic, and once the socket closes no call may be left.
func FuzzOutboundMessages(f *testing.F) {
	for _, seed := range []string{
		`{"type":"ApplicationRegistered","application":"ivr-pin:PJSIP/a"}` + "\n" +
			`{"type":"StasisStart","application":"ivr-pin:PJSIP/a","channel":{"id":"a.1","name":"PJSIP/a"}}` + "\n" +
			`{"type":"RESTResponse","request_id":"1","status_code":204}` + "\n" +
			`{"type":"ChannelDtmfReceived","digit":"5","channel":{"id":"a.1"}}`,
		`{"type":"StasisStart","application":"ivr-pin","channel":{"id":"b.1"}}` + "\n" + `{"type":"RESTResponse","request_id":"1","status_code":404,"message_body":"{\"message\":\"Channel not found\"}"}`,
		`{"type":"RESTResponse","request_id":"99","status_code":200,"message_body":"not json"}`,
		`{"type":"StasisStart","application":"other","channel":{"id":"c.1"}}`,
		`{"type":"StasisEnd","channel":{"id":"a.1"}}` + "\n" + `{}` + "\n" + `[` + "\n" + `{"type":"RESTResponse"}`,
	} {
		f.Add([]byte(seed))
	}
	tr := ivr.Outbound(ivr.OutboundConfig{Listen: "127.0.0.1:0", Username: "asterisk", Password: "fuzz",
		Application: "ivr-pin", Timeout: 200 * time.Millisecond, Log: quietLog()})
	s, err := ivr.New(ivr.Config{Transport: tr, CallTimeout: 5 * time.Second, Log: quietLog()})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, echo) }()
	defer func() {
		cancel()
		<-done
	}()
	for !s.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	addr := tr.(interface{ Addr() string }).Addr()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _ := websocket.NewConfig("ws://"+addr+"/ari", "http://localhost")
		cfg.Protocol = []string{"ari"}
		cfg.Header = http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("asterisk:fuzz"))}}
		ws, err := websocket.DialConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, frame := range bytes.Split(data, []byte("\n")) {
			if websocket.Message.Send(ws, string(frame)) != nil {
				break
			}
		}
		ws.Close()
		deadline := time.Now().Add(10 * time.Second)
		for s.Active() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d calls left after the websocket closed", s.Active())
			}
			time.Sleep(time.Millisecond)
		}
	})
}
