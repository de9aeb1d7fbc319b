package ivr_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/ivr"
	"github.com/ivr-pin/ivr-pin/ivr/keypad"
)

// The call server on its own, with nothing of PINs: a handler that answers,
// asks for four digits and says them back, served over inbound ARI (here
// the ARI test server stands in for Asterisk; a real one is reached the
// same way). A call's context ends at hang-up, so every wait returns.
func Example() {
	asterisk, err := aritest.Start(aritest.Options{PlaybackScale: 0.002})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer asterisk.Close()
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	log := logrus.NewEntry(quiet)
	srv, err := ivr.New(ivr.Config{Log: log, Transport: ivr.Inbound(ivr.InboundConfig{Log: log,
		URL: asterisk.URL, WSURL: asterisk.WSURL, Username: "ivr-pin", Password: "aritest-password-0001", Application: "ivr-pin"})})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() {
		served <- srv.Serve(ctx, func(c *ivr.Call) {
			ctx := c.Context()
			if c.Answer(ctx) != nil {
				return
			}
			_ = c.Play(ctx, "sound:enter-four-digits")
			e, err := c.Collect(ctx, keypad.Spec{Max: 4, FirstDigitTimeout: 10 * time.Second, InterDigitTimeout: 5 * time.Second})
			if err != nil {
				return
			}
			_ = c.Say(ctx, "digits:"+string(e.Digits))
			_ = c.Hangup(ctx)
		})
	}()

	// A caller: waits for the question, types, hears the answer.
	if err := asterisk.WaitConnected("ivr-pin", 10*time.Second); err != nil {
		fmt.Println(err)
		return
	}
	ch, err := asterisk.PlaceCall(aritest.CallOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = ch.WaitPlayed(10*time.Second, "sound:enter-four-digits", 1)
	_ = ch.Press("4711", time.Millisecond)
	snap, _ := ch.WaitEnded(10 * time.Second)
	fmt.Println(snap.Played, snap.EndReason)
	stop()
	fmt.Println(<-served)
	// Output:
	// [sound:enter-four-digits digits:4711] app-hangup
	// <nil>
}
