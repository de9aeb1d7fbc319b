// Package demo runs a whole line on one machine: the ARI test server
// standing in for Asterisk, the host simulators standing in for the bank
// (unless real host URLs are configured), and the line itself built by
// line.Build, the wiring serve runs, talking to them over ARI's real wire
// protocol: inbound (the line dials the events websocket, REST over HTTP)
// or outbound (the test server dials the line per call, REST over the
// websocket). The console and the end-to-end tests run on it.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/line"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

// Transports the demo can run.
const (
	Inbound    = "inbound"
	Outbound   = "outbound"   // one websocket per call
	Persistent = "persistent" // outbound, one websocket for all calls
)

// Options shape the demo line.
type Options struct {
	Config *config.Config // settings; nil means defaults
	Log    *logrus.Entry
	// Transport is Inbound (default), Outbound or Persistent.
	Transport string
	// PlaybackScale speeds prompts up (1 = real time).
	PlaybackScale float64
	OnPlay        func(ch *aritest.Channel, mediaURI string)
	// HostTimeout overrides the simulated hosts' client timeout.
	HostTimeout time.Duration
	// DrainTimeout for the line (default 5 s).
	DrainTimeout time.Duration
	// AuditOut takes the audit lines (default: discarded; Records has them).
	AuditOut io.Writer
}

// Demo is a running line.
type Demo struct {
	ARI  *aritest.Server
	Sims *simrun.Running // nil when both hosts are real
	Line *line.Line

	mu      sync.Mutex
	records []audit.Record
	cancel  context.CancelFunc
	done    chan error
	closers []func()
}

// Start brings the line up and waits until it takes calls.
func Start(opts Options) (*Demo, error) {
	cfg := opts.Config
	if cfg == nil {
		var err error
		if cfg, err = config.Load(); err != nil {
			return nil, err
		}
	}
	c := *cfg
	cfg = &c
	if opts.Log == nil {
		opts.Log = logrus.NewEntry(logrus.New())
	}
	if opts.PlaybackScale <= 0 {
		opts.PlaybackScale = 1
	}
	if opts.AuditOut == nil {
		opts.AuditOut = io.Discard
	}
	d := &Demo{}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()

	if cfg.TokenKey() && cfg.NIURL == "" {
		// The key is used whenever a label is set, never quietly swapped for
		// the built-in simulator's: that one cannot decode blocks made
		// under a token's key, which it does not hold.
		return nil, &config.Problem{Var: "NI_URL", Reason: "IVRPIN_NI_ZPK_LABEL is set, so PIN blocks are made under that key in its token, which the built-in card host cannot decode: " +
			"run `ivr-pin simulate` with the key the token holds (docs/lab.md) and set IVRPIN_NI_URL to it, or unset IVRPIN_NI_ZPK_LABEL"}
	}
	ari, err := aritest.Start(aritest.Options{PlaybackScale: opts.PlaybackScale, OnPlay: opts.OnPlay})
	if err != nil {
		return nil, err
	}
	d.ARI = ari
	d.closers = append(d.closers, ari.Close)

	lopts := line.Options{Log: opts.Log, AuditOut: opts.AuditOut, OnCallEnd: d.record,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}
	if cfg.NIURL == "" || cfg.KeySecureURL == "" {
		sims, err := simrun.Start(simrun.Options{})
		if err != nil {
			return nil, err
		}
		d.Sims = sims
		d.closers = append(d.closers, sims.Close)
		if cfg.NIURL == "" {
			ch := sims.CardHostConfig()
			if opts.HostTimeout > 0 {
				ch.Timeout = opts.HostTimeout
			}
			lopts.CardHost = &ch
		}
		if cfg.KeySecureURL == "" {
			ks := sims.KeySecureConfig()
			if opts.HostTimeout > 0 {
				ks.Timeout = opts.HostTimeout
			}
			lopts.KeySecure = &ks
		}
	}
	// The attempt store lives as long as the demo.
	dir, err := os.MkdirTemp("", "ivr-pin-demo")
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { _ = os.RemoveAll(dir) })
	if !cfg.SharedStore() {
		cfg.LimitStore = filepath.Join(dir, "attempts.db")
	}
	if cfg.LimitKey == "" {
		// A key of this run's own, kept in memory only: the store is
		// temporary too.
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		cfg.LimitKey = hex.EncodeToString(k)
	}
	cfg.DrainTimeout = opts.DrainTimeout
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	cfg.ARIURL, cfg.ARIWSURL, cfg.ARIUsername, cfg.ARIPassword = ari.URL, ari.WSURL, "ivr-pin", "aritest-password-0001"
	switch opts.Transport {
	case "", Inbound:
		cfg.ARIListen = ""
	case Outbound, Persistent:
		cfg.ARIListen, cfg.ARIListenUsername, cfg.ARIListenPassword = "127.0.0.1:0", "asterisk", "demo-outbound-password-0001"
	default:
		return nil, errors.New("demo: unknown transport " + opts.Transport)
	}

	l, err := line.Build(context.Background(), cfg, lopts)
	if err != nil {
		return nil, err
	}
	d.Line = l
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.done = make(chan error, 1)
	go func() { d.done <- l.Serve(ctx) }()
	if err := d.waitReady(10 * time.Second); err != nil {
		return nil, err
	}
	if cfg.ARIListen == "" {
		// The line is ready once its websocket's handshake is answered; the
		// test server registers the app just after, and a call placed in
		// between would find no app (seen on a busy machine).
		if err := ari.WaitConnected(cfg.ARIApplication, 10*time.Second); err != nil {
			return nil, err
		}
	}
	if cfg.ARIListen != "" {
		ari.SetOutbound(&aritest.Outbound{URL: "ws://" + l.ListenAddr() + "/ari", Username: cfg.ARIListenUsername,
			Password: cfg.ARIListenPassword, Persistent: opts.Transport == Persistent})
	}
	ok = true
	return d, nil
}

// waitReady waits (bounded) until the line takes calls, or Serve failed.
func (d *Demo) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.done:
			d.done <- err
			if err == nil {
				err = errors.New("the line stopped before it was ready")
			}
			return err
		default:
		}
		if d.Line.Server.Ready() {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return errors.New("the line was not ready in time")
}

func (d *Demo) record(r audit.Record) {
	d.mu.Lock()
	d.records = append(d.records, r)
	d.mu.Unlock()
}

// Records returns the audit records of ended calls.
func (d *Demo) Records() []audit.Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]audit.Record(nil), d.records...)
}

// RecordFor waits (bounded) for the audit record of a channel.
func (d *Demo) RecordFor(channelID string, timeout time.Duration) (audit.Record, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, r := range d.Records() {
			if r.ChannelID == channelID {
				return r, nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return audit.Record{}, errors.New("no audit record for the call")
}

// Shutdown drains the line (as SIGTERM does) and returns Serve's result.
func (d *Demo) Shutdown() error {
	if d.cancel == nil {
		return nil
	}
	d.cancel()
	err := <-d.done
	d.cancel = nil
	return err
}

// Close drains the line and stops everything.
func (d *Demo) Close() {
	_ = d.Shutdown()
	if d.Line != nil {
		d.Line.Close()
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}
