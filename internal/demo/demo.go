// Package demo wires a whole line on one machine: the ARI test server
// standing in for Asterisk, the host simulators standing in for the bank
// (unless real host URLs are configured), and the real ivr app connected to
// them over ARI's HTTP and WebSocket protocol. The console and the
// end-to-end tests both run on it.
package demo

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/ivr"
	"github.com/ivr-pin/ivr-pin/pinsvc"
	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

// Options shape the demo line.
type Options struct {
	Config *config.Config // settings; nil means defaults
	Log    *logrus.Entry
	// PlaybackScale speeds prompts up (1 = real time).
	PlaybackScale float64
	OnPlay        func(ch *aritest.Channel, mediaURI string)
	// HostTimeout overrides the simulated hosts' client timeout.
	HostTimeout time.Duration
	// DrainTimeout for the app (default 5 s).
	DrainTimeout time.Duration
	// Limiter bounds attempts (nil: none, as the console runs).
	Limiter flows.Limiter
	// Marks keep first setups to one per card (nil: none).
	Marks flows.SetupMarks
}

// Demo is a running line.
type Demo struct {
	ARI    *aritest.Server
	Sims   *simrun.Running // nil when both hosts are real
	App    *ivr.App
	Router *pinsvc.Router

	mu      sync.Mutex
	records []ivr.CallRecord
	ended   chan ivr.CallRecord
	cancel  context.CancelFunc
	done    chan error
	closers []func()
}

// Start brings the line up and waits until the app is connected.
func Start(opts Options) (*Demo, error) {
	cfg := opts.Config
	if cfg == nil {
		var err error
		if cfg, err = config.Load(); err != nil {
			return nil, err
		}
	}
	if opts.Log == nil {
		l := logrus.New()
		opts.Log = logrus.NewEntry(l)
	}
	if opts.PlaybackScale <= 0 {
		opts.PlaybackScale = 1
	}
	d := &Demo{ended: make(chan ivr.CallRecord, 4096)}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()

	ari, err := aritest.Start(aritest.Options{PlaybackScale: opts.PlaybackScale, OnPlay: opts.OnPlay})
	if err != nil {
		return nil, err
	}
	d.ARI = ari
	d.closers = append(d.closers, ari.Close)

	router, err := d.hosts(cfg, opts)
	if err != nil {
		return nil, err
	}
	d.Router = router

	flow := flows.New(flows.Config{
		Languages: cfg.Languages, FirstDigitTimeout: cfg.FirstDigitTimeout, InterDigitTimeout: cfg.InterDigitTimeout,
		MaxTries: cfg.MaxTries, Agent: flows.ParseTarget(cfg.AgentTransfer), HostWaitAnnounce: cfg.HostWaitAnnounce,
		Limiter: opts.Limiter, Marks: opts.Marks,
	}, router)
	drain := opts.DrainTimeout
	if drain <= 0 {
		drain = 5 * time.Second
	}
	app, err := ivr.New(ivr.Config{
		ARI: ivr.ARIConfig{URL: ari.URL, WSURL: ari.WSURL, Username: "ivr-pin", Password: "test-password",
			Application: cfg.ARIApplication, Timeout: cfg.ARITimeout},
		CallTimeout: cfg.CallTimeout, DrainTimeout: drain, Log: opts.Log,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		OnCallEnd: d.record,
	}, flow)
	if err != nil {
		return nil, err
	}
	d.App = app
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.done = make(chan error, 1)
	go func() { d.done <- app.Serve(ctx) }()
	if err := ari.WaitConnected(cfg.ARIApplication, 10*time.Second); err != nil {
		select {
		case serr := <-d.done:
			d.done <- serr
			if serr != nil {
				return nil, serr
			}
		default:
		}
		return nil, err
	}
	ok = true
	return d, nil
}

func (d *Demo) hosts(cfg *config.Config, opts Options) (*pinsvc.Router, error) {
	if cfg.NIURL == "" || cfg.KeySecureURL == "" {
		sims, err := simrun.Start(simrun.Options{})
		if err != nil {
			return nil, err
		}
		d.Sims = sims
		d.closers = append(d.closers, sims.Close)
	}
	var chCfg cardhost.Config
	if cfg.NIURL != "" {
		var err error
		if chCfg, err = cfg.CardHost(); err != nil {
			return nil, err
		}
	} else {
		chCfg = d.Sims.CardHostConfig()
		if opts.HostTimeout > 0 {
			chCfg.Timeout = opts.HostTimeout
		}
	}
	ch, err := cardhost.New(chCfg)
	if err != nil {
		return nil, err
	}
	var ksCfg keysecure.Config
	if cfg.KeySecureURL != "" {
		if ksCfg, err = cfg.KeySecure(); err != nil {
			return nil, err
		}
	} else {
		ksCfg = d.Sims.KeySecureConfig()
		if opts.HostTimeout > 0 {
			ksCfg.Timeout = opts.HostTimeout
		}
	}
	ks, err := keysecure.New(ksCfg)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, ch.Close, ks.Close)
	return &pinsvc.Router{CardHost: ch, KeySecure: ks,
		Policy: policy.PINPolicy{MinLength: cfg.PINMinLength, MaxLength: cfg.PINMaxLength}}, nil
}

func (d *Demo) record(r ivr.CallRecord) {
	d.mu.Lock()
	d.records = append(d.records, r)
	d.mu.Unlock()
	select {
	case d.ended <- r:
	default:
	}
}

// Records returns the audit records of ended calls.
func (d *Demo) Records() []ivr.CallRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]ivr.CallRecord(nil), d.records...)
}

// RecordFor waits (bounded) for the audit record of a channel.
func (d *Demo) RecordFor(channelID string, timeout time.Duration) (ivr.CallRecord, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, r := range d.Records() {
			if r.ChannelID == channelID {
				return r, nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ivr.CallRecord{}, errors.New("no audit record for the call")
}

// Shutdown drains the app (as SIGTERM does) and returns Serve's result.
func (d *Demo) Shutdown() error {
	if d.cancel == nil {
		return nil
	}
	d.cancel()
	err := <-d.done
	d.cancel = nil
	return err
}

// Close drains the app and stops everything.
func (d *Demo) Close() {
	_ = d.Shutdown()
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}
