package ivr_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/ivr"
)

func TestWrongPasswordFailsFast(t *testing.T) {
	srv, err := aritest.Start(aritest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	app, err := ivr.New(ivr.Config{ARI: ivr.ARIConfig{URL: srv.URL, WSURL: srv.WSURL, Username: "ivr-pin",
		Password: "wrong", Application: "ivr-pin", Timeout: time.Second}}, flows.New(flows.Config{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	// ari/v5's Connect would block here for ever, retrying and logging nothing.
	if err := app.Serve(context.Background()); !errors.Is(err, ivr.ErrUnauthorized) {
		t.Fatalf("Serve = %v, want ErrUnauthorized", err)
	}
}

func TestAsteriskDownFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	app, err := ivr.New(ivr.Config{ARI: ivr.ARIConfig{URL: "http://" + addr + "/ari", WSURL: "ws://" + addr + "/ari/events",
		Username: "ivr-pin", Password: "x", Application: "ivr-pin", Timeout: time.Second}}, flows.New(flows.Config{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Serve(context.Background()); err == nil {
		t.Fatal("Serve returned no error with Asterisk down")
	}
}

// A hung Asterisk (accepts, never answers) must not hang a call: the REST
// timeout set on the native client ends the request.
func TestHungAsteriskDoesNotHangACall(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	c, err := ivr.NewClient(ivr.ARIConfig{URL: hung.URL + "/ari", Username: "u", Password: "p", Application: "ivr-pin", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Channel().Get(ari.NewKey(ari.ChannelKey, "1.1")).Answer() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("answer on a hung server succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("REST call still hanging: no timeout")
	}
}
