package line

import (
	"context"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/limits"
	"github.com/ivr-pin/ivr-pin/internal/metrics"
	"github.com/ivr-pin/ivr-pin/ivr"
	"github.com/ivr-pin/ivr-pin/pinsvc"
	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
)

// Options are what the configuration does not say.
type Options struct {
	Log *logrus.Entry
	// AuditOut takes the audit records when IVRPIN_AUDIT_FILE is unset
	// (default standard output).
	AuditOut io.Writer
	// OnCallEnd also receives every audit record (the console, tests).
	OnCallEnd func(audit.Record)
	// CardHost and KeySecure, when set, replace the host settings of the
	// configuration: the demo's simulators, whose keys live in memory only.
	CardHost  *cardhost.Config
	KeySecure *keysecure.Config
	// MinBackoff and MaxBackoff bound inbound reconnects (default 200 ms,
	// 10 s).
	MinBackoff, MaxBackoff time.Duration
}

// Line is the PIN line, built and ready to serve.
type Line struct {
	Server  *ivr.Server
	Flow    *flows.Flow
	Router  *pinsvc.Router
	Limiter *limits.Limiter
	Metrics *metrics.Metrics

	cfg       *config.Config
	log       *logrus.Entry
	closing   *flows.Target
	audit     audit.Writer
	metrics   *metrics.Metrics
	onCallEnd func(audit.Record)
	transport ivr.Transport

	closeOnce sync.Once
	closers   []func()
}

// Build wires the line from the configuration: the host clients and their
// router, the attempt limiter and first-setup marks (bbolt or Redis; the
// line fails closed without them), metrics, the audit writer, the flow, and
// the call server on the transport the configuration names (outbound when
// IVRPIN_ARI_LISTEN is set, else inbound to IVRPIN_ARI_URL).
func Build(ctx context.Context, cfg *config.Config, opts Options) (*Line, error) {
	if opts.Log == nil {
		opts.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	if opts.AuditOut == nil {
		opts.AuditOut = os.Stdout
	}
	l := &Line{cfg: cfg, log: opts.Log, closing: flows.ParseTarget(cfg.DrainFallback), onCallEnd: opts.OnCallEnd}
	ok := false
	defer func() {
		if !ok {
			l.Close()
		}
	}()
	router, err := l.router(opts)
	if err != nil {
		return nil, err
	}
	l.Router = router
	limiter, err := limits.Open(ctx, cfg.LimitSettings())
	if err != nil {
		return nil, err
	}
	l.Limiter = limiter
	l.closers = append(l.closers, func() { _ = limiter.Store.Close() })
	if cfg.AuditFile != "" {
		f, err := audit.OpenFile(cfg.AuditFile)
		if err != nil {
			return nil, err
		}
		l.audit = f
		l.closers = append(l.closers, func() { _ = f.Close() })
	} else {
		l.audit = audit.NewStream(opts.AuditOut)
	}
	l.metrics = metrics.New(nil)
	l.Metrics = l.metrics
	l.Flow = flows.New(flows.Config{
		Languages: cfg.Languages, FirstDigitTimeout: cfg.FirstDigitTimeout, InterDigitTimeout: cfg.InterDigitTimeout,
		MaxTries: cfg.MaxTries, Agent: flows.ParseTarget(cfg.AgentTransfer), HostWaitAnnounce: cfg.HostWaitAnnounce,
		Limiter: limiter, Marks: limiter,
	}, l.metrics.Instrument(router))
	l.transport = Transport(cfg, opts)
	srv, err := ivr.New(ivr.Config{Transport: l.transport, CallTimeout: cfg.CallTimeout, DrainTimeout: cfg.DrainTimeout,
		Log: opts.Log})
	if err != nil {
		return nil, err
	}
	l.Server = srv
	l.metrics.RegisterServer(srv)
	ok = true
	return l, nil
}

// Transport is the ARI transport the configuration names.
func Transport(cfg *config.Config, opts Options) ivr.Transport {
	if cfg.ARIListen != "" {
		return ivr.Outbound(ivr.OutboundConfig{Listen: cfg.ARIListen, Username: cfg.ARIListenUsername,
			Password: cfg.ARIListenPassword, TLSCert: cfg.ARIListenTLSCert, TLSKey: cfg.ARIListenTLSKey,
			Application: cfg.ARIApplication, Timeout: cfg.ARITimeout, Log: opts.Log})
	}
	return ivr.Inbound(ivr.InboundConfig{URL: cfg.ARIURL, WSURL: cfg.WebsocketURL(), Username: cfg.ARIUsername,
		Password: cfg.ARIPassword, Application: cfg.ARIApplication, Timeout: cfg.ARITimeout,
		MinBackoff: opts.MinBackoff, MaxBackoff: opts.MaxBackoff, Log: opts.Log})
}

// router makes the host clients. Without KeySecure, first setup is not
// offered.
func (l *Line) router(opts Options) (*pinsvc.Router, error) {
	var chCfg cardhost.Config
	if opts.CardHost != nil {
		chCfg = *opts.CardHost
	} else {
		var err error
		if chCfg, err = l.cfg.CardHost(); err != nil {
			return nil, err
		}
	}
	ch, err := cardhost.New(chCfg)
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, ch.Close)
	router := &pinsvc.Router{CardHost: ch, Policy: policy.PINPolicy{MinLength: l.cfg.PINMinLength, MaxLength: l.cfg.PINMaxLength}}
	var ksCfg *keysecure.Config
	if opts.KeySecure != nil {
		ksCfg = opts.KeySecure
	} else if l.cfg.KeySecureURL != "" {
		c, err := l.cfg.KeySecure()
		if err != nil {
			return nil, err
		}
		ksCfg = &c
	}
	if ksCfg == nil {
		l.log.Warn("IVRPIN_KEYSECURE_URL is not set: first PIN setup of new cards is not offered")
		return router, nil
	}
	ks, err := keysecure.New(*ksCfg)
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, ks.Close)
	router.KeySecure = ks
	return router, nil
}

// Serve takes calls until ctx ends, drains, and releases everything.
func (l *Line) Serve(ctx context.Context) error {
	defer l.Close()
	return l.Server.Serve(ctx, l.handle)
}

// Close releases the host clients, the attempt store and the audit file
// (Serve does it on return; call it when Serve never ran).
func (l *Line) Close() {
	l.closeOnce.Do(func() {
		for i := len(l.closers) - 1; i >= 0; i-- {
			l.closers[i]()
		}
	})
}

// ListenAddr is the outbound transport's address once listening ("" for
// inbound, or before Serve has started it).
func (l *Line) ListenAddr() string {
	if a, ok := l.transport.(interface{ Addr() string }); ok {
		return a.Addr()
	}
	return ""
}

// Health serves /metrics, /healthz and /readyz for this line.
func (l *Line) Health() *metrics.Health {
	return &metrics.Health{Metrics: l.metrics, Server: l.Server, HostURLs: []string{l.cfg.NIURL, l.cfg.KeySecureURL}}
}
