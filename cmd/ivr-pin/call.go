package main

import (
	"cmp"
	"crypto/tls"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/secretfile"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/prompts"
)

const callSummary = `Places one test call into a running serve's outbound listener, as Asterisk 22 does (one
websocket per call, basic auth, subprotocol ari, REST over the websocket), types the scripted
keys as the line asks for them, and prints what the line said: a deployment proved end to end
without a phone or an Asterisk. The listener's login is IVRPIN_ARI_LISTEN_USERNAME and
IVRPIN_ARI_LISTEN_PASSWORD(_FILE), as serve reads them, unless --username or --password-file
is given. Exits 0 when the line said its result and ended the call, 1 otherwise.`

// call is `ivr-pin call [flags] ws(s)://HOST:PORT/ari`.
func call(args []string, std cli.IO) int {
	stdout, stderr := std.Stdout, std.Stderr
	fs := flag.NewFlagSet("ivr-pin call", flag.ContinueOnError)
	keys := fs.String("keys", "1 4111111111111111# 1228 7392# 4829# 4829#", "the caller's keys, a group per question")
	username := fs.String("username", "", "the listener's username (default IVRPIN_ARI_LISTEN_USERNAME)")
	passwordFile := fs.String("password-file", "", "a 0600 file holding the listener's password (default IVRPIN_ARI_LISTEN_PASSWORD(_FILE))")
	caFile := fs.String("ca", "", "PEM CA bundle that signed the listener's certificate (wss); default: the system's roots")
	speed := fs.Float64("speed", 0.05, "prompt playing speed: 1 is real time")
	timeout := fs.Duration("timeout", 2*time.Minute, "longest the call may take")
	if code, done := parseFlagsAndArgs(fs, args, " ws(s)://HOST:PORT/ari", 1, callSummary, stdout, stderr); done {
		return code
	}
	target, err := url.Parse(fs.Arg(0))
	if err != nil || (target.Scheme != "ws" && target.Scheme != "wss") || target.Host == "" {
		fmt.Fprintf(stderr, "ivr-pin call: %q is not a ws:// or wss:// URL\n", fs.Arg(0))
		return 2
	}
	cfg, ok := loadConfig(stderr)
	if !ok {
		return 1
	}
	user, password := cfg.ARIListenUsername, cfg.ARIListenPassword
	if *username != "" {
		user = *username
	}
	if *passwordFile != "" {
		b, err := secretfile.Read(*passwordFile)
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin call: --password-file: %v\n", err)
			return 1
		}
		password = string(b)
		secret.Zero(b)
	}
	if password == "" {
		fmt.Fprintln(stderr, "ivr-pin call: no password for the listener: set IVRPIN_ARI_LISTEN_PASSWORD_FILE (as serve has it) or give --password-file")
		return 1
	}
	var tc *tls.Config
	if target.Scheme == "wss" {
		if tc, err = config.TLSTrusting("--ca", *caFile); err != nil {
			fmt.Fprintf(stderr, "ivr-pin call: %v\n", err)
			return 1
		}
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tc.ServerName = target.Hostname()
	}

	out := &lineWriter{w: stdout}
	var heard []prompts.ID
	asterisk, err := aritest.Start(aritest.Options{PlaybackScale: *speed, OnPlay: func(ch *aritest.Channel, media string) {
		if item, ok := prompts.FromMediaURI(media); ok {
			out.say(item, ch.Snapshot().Language)
			heard = append(heard, item.Prompt)
		}
	}})
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin call: %v\n", err)
		return 1
	}
	defer asterisk.Close()
	asterisk.SetOutbound(&aritest.Outbound{URL: target.String(), Username: user, Password: password, TLS: tc})
	ch, err := asterisk.PlaceCall(aritest.CallOptions{App: cfg.ARIApplication})
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin call: the listener did not take the call: %v\n", err)
		return 1
	}
	go typeScript(ch, strings.Fields(*keys), *speed)
	snap, err := ch.WaitEnded(*timeout)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin call: %v\n", err)
		return 1
	}
	result := ""
	for _, id := range heard {
		if strings.HasPrefix(string(id), "result-") {
			result = string(id)
		}
	}
	out.printf("\nResult: %s; call ended by %s\n", cmp.Or(result, "none heard"), snap.EndReason)
	if result == "" || (snap.EndReason != "app-hangup" && snap.EndReason != "continue") {
		return 1
	}
	return 0
}
