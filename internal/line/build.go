package line

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/internal/buildinfo"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/limits"
	"github.com/ivr-pin/ivr-pin/internal/metrics"
	"github.com/ivr-pin/ivr-pin/ivr"
	"github.com/ivr-pin/ivr-pin/pinsvc"
	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/prompts"
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
	// WaitForAsterisk: inbound, an Asterisk not reachable at start-up is
	// waited for (serve); otherwise start-up fails fast (console, tests).
	WaitForAsterisk bool
	// RefuseLabParts: serve's line refuses a software token outside
	// IVRPIN_LAB (the lab tools take it).
	RefuseLabParts bool
}

// Line is the PIN line, built and ready to serve.
type Line struct {
	Server  *ivr.Server
	Flow    *flows.Flow
	Router  *pinsvc.Router
	Limiter *limits.Limiter
	// LineGuard refuses new calls while too many card checks have failed
	// across the line.
	LineGuard *limits.LineGuard
	Metrics   *metrics.Metrics
	// Token holds the zone PIN key when IVRPIN_NI_ZPK_LABEL is set (nil:
	// a software key, or the demo's simulator key).
	Token *hsm.Token
	// PINBlocks describes how PIN blocks are made (format, key, KCV):
	// safe to log.
	PINBlocks string

	cfg       *config.Config
	log       *logrus.Entry
	closing   *flows.Target
	audit     audit.Writer
	started   bool // the audit's start record is written: Close writes the stop
	metrics   *metrics.Metrics
	onCallEnd func(audit.Record)
	transport ivr.Transport

	closeOnce sync.Once
	closers   []func()

	// instance names this process in audit records and the fleet's
	// registry; registry is nil without Redis.
	instance string
	registry *registry

	// hosts reaches the PIN hosts on a period for /readyz and the log.
	hosts hostWatch

	langMu     sync.Mutex
	langWarned map[string]bool
	auditErr   atomic.Pointer[error] // the last audit write's error, nil once one succeeds

	// memoryLocked says whether serve's memory is locked (nil) or why not;
	// nil itself when nobody tried (the console, tests).
	memoryLocked func() error
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
	l.hosts.log = opts.Log
	// The words the console shows and the logs name (the audio is
	// Asterisk's): the shipped ones, or a bank's (IVRPIN_PROMPT_WORDS).
	words, err := cfg.Prompts()
	if err != nil {
		return nil, fmt.Errorf("IVRPIN_PROMPT_WORDS: %w", err)
	}
	prompts.Use(words)
	ok := false
	defer func() {
		if !ok {
			l.Close()
		}
	}()
	l.metrics = metrics.New(nil)
	l.Metrics = l.metrics
	steps := ServeSteps
	if opts.CardHost != nil && cfg.KeySecureKeyLabel == "" && cfg.AuditKeyLabel == "" {
		// The demo's simulator brings its own key (KeySecure's secret or
		// the audit key in a token is still the token's to open).
		steps &^= KeyStep
	}
	p, err := Provision(ctx, cfg, steps, opts.Log)
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, p.Close)
	if opts.RefuseLabParts {
		if err := p.LabTokenProblem(cfg); err != nil {
			return nil, err
		}
	}
	l.metrics.LabMode(cfg.Lab)
	l.Token = p.Token
	l.Limiter = p.Limiter
	router, err := l.router(opts, p.ZPK, p.NextZPK, p.KeySecureKey)
	if err != nil {
		return nil, err
	}
	l.Router = router
	l.LineGuard = &limits.LineGuard{Store: p.Limiter.Store, Max: cfg.LimitLineFailedMax, Window: cfg.LimitLineWindow,
		OnWait: l.metrics.LineGuardWait}
	host, _ := os.Hostname()
	l.instance = instanceID(cfg.InstanceID, host, os.Getpid())
	if rs, ok := p.Limiter.Store.(*limits.RedisStore); ok {
		window := max(cfg.NITimeout, cfg.KeySecureTimeout) + cfg.CallTimeout
		l.registry = &registry{c: rs.Client(), instance: l.instance, window: window, ttl: max(24*time.Hour, 2*window)}
	}
	if p.AuditFile != nil {
		l.audit = p.AuditFile
		// Changes a dead process sent, before this one takes calls.
		if err := l.closeOpenAttempts(ctx, cfg.AuditFile); err != nil {
			return nil, &config.Problem{Var: "AUDIT_FILE", Reason: "closing the attempts an earlier process left open: " + err.Error()}
		}
	} else {
		key, err := p.auditKey(cfg)
		if err != nil {
			return nil, err
		}
		l.audit = audit.NewStream(opts.AuditOut, key)
	}
	if l.Token != nil {
		l.metrics.RegisterPINKey("token", l.Token.Ready)
	} else {
		l.metrics.RegisterPINKey("software", func() error { return nil })
	}
	fc := cfg.FlowConfig()
	fc.Limiter, fc.Marks, fc.LineGuard = p.Limiter, p.Limiter, l.LineGuard
	l.Flow = flows.New(fc, journaled{Service: l.metrics.Instrument(router), l: l})
	if l.transport, err = Transport(cfg, opts); err != nil {
		return nil, err
	}
	srv, err := ivr.New(ivr.Config{Transport: l.transport, CallTimeout: cfg.CallTimeout, DrainTimeout: cfg.DrainTimeout,
		Log: opts.Log})
	if err != nil {
		return nil, err
	}
	l.Server = srv
	l.metrics.RegisterServer(srv)
	l.metrics.RegisterListener(srv)
	l.metrics.RegisterLineGuard(l.LineGuard.On)
	// The trail says when this instance began, with what: its version,
	// the check value of its key (never the key) and whether it is a lab.
	kcvs := map[string]string{}
	if k, ok := p.ZPK.(interface{ KCV() string }); ok && k.KCV() != "" {
		kcvs["zone_pin_key"] = k.KCV()
	}
	if p.KeySecureKey != nil {
		kcvs["keysecure_secret"] = p.KeySecureKey.KCV()
	}
	if p.AuditKey != nil {
		kcvs["audit_key"] = p.AuditKey.KCV()
	}
	if k, ok := p.NextZPK.(interface{ KCV() string }); ok && k.KCV() != "" {
		kcvs["next_zone_pin_key"] = k.KCV()
	} else if k, _ := cfg.NextZPK(); k != nil {
		kcvs["next_zone_pin_key"] = k.KCV()
	}
	// A start record that cannot be written (a full disk) is an audit
	// failure like any other: the line runs, not ready, until a record is
	// written again.
	if err := l.audit.WriteEvent(audit.Event{Kind: audit.KindStart, Time: time.Now().UTC(), Instance: l.instance,
		Version: buildinfo.Read().String(), Lab: cfg.Lab, KeyKCVs: kcvs}); err != nil {
		l.auditFailed(err, "")
	}
	l.started = true
	ok = true
	return l, nil
}

// Transport is the ARI transport the configuration names.
func Transport(cfg *config.Config, opts Options) (ivr.Transport, error) {
	if cfg.Outbound() {
		oc := cfg.OutboundConfig()
		oc.Log = opts.Log
		return ivr.Outbound(oc), nil
	}
	ic, err := cfg.InboundConfig()
	if err != nil {
		return nil, err
	}
	ic.MinBackoff, ic.MaxBackoff, ic.WaitForAsterisk, ic.Log = opts.MinBackoff, opts.MaxBackoff, opts.WaitForAsterisk, opts.Log
	return ivr.Inbound(ic), nil
}

// router makes the host clients, the card host's PIN blocks made under zpk
// (Provision's). Without KeySecure, first setup is not offered.
func (l *Line) router(opts Options, zpk, nextZPK pinblock.Cipher, ksKey *hsm.Key) (*pinsvc.Router, error) {
	var chCfg cardhost.Config
	if opts.CardHost != nil {
		chCfg = *opts.CardHost
	} else {
		var err error
		if chCfg, err = l.cfg.CardHostClient(zpk, nextZPK); err != nil {
			return nil, err
		}
	}
	if chCfg.Encrypter != nil {
		l.PINBlocks = chCfg.Encrypter.Describe()
		if n := chCfg.Next; n != nil {
			l.PINBlocks += fmt.Sprintf(" (key id %s); from %s, new calls: %s (key id %s)", chCfg.EncryptionKeyID,
				n.From.UTC().Format(time.RFC3339), n.Encrypter.Describe(), n.KeyID)
		}
	}
	ch, err := cardhost.New(chCfg)
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, ch.Close)
	l.hosts.add("IVRPIN_NI_URL", "the card host", chCfg.URL, ch.Reach)
	router := &pinsvc.Router{CardHost: ch, Policy: l.cfg.PINPolicy()}
	var ksCfg *keysecure.Config
	if opts.KeySecure != nil {
		ksCfg = opts.KeySecure
	} else if l.cfg.KeySecureURL != "" {
		var tokenSecret keysecure.Secret // a nil *hsm.Key must stay a nil interface
		if ksKey != nil {
			tokenSecret = ksKey
		}
		c, err := l.cfg.KeySecure.ClientConfig(tokenSecret, l.cfg.AllowInsecureHosts)
		if err != nil {
			return nil, err
		}
		ksCfg = &c
	}
	if ksCfg == nil {
		l.log.Warn("IVRPIN_KEYSECURE_URL is not set: first PIN setup of new cards is not offered")
		return router, nil
	}
	withMetrics := *ksCfg
	withMetrics.OnRequest = l.metrics.KeySecureRequest
	budget := &limits.Budget{Store: l.Limiter.Store, Name: "keysecure", Max: l.cfg.LimitKeySecureMax, Window: l.cfg.LimitKeySecureWindow}
	l.metrics.KeySecureBudget(budget.Max)
	withMetrics.Budget = func(ctx context.Context) (bool, error) {
		ok, err := budget.Take(ctx)
		if err == nil && !ok {
			l.metrics.KeySecureRefused()
		}
		return ok, err
	}
	ks, err := keysecure.New(withMetrics)
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, ks.Close)
	l.hosts.add("IVRPIN_KEYSECURE_URL", "KeySecure", ksCfg.BaseURL, ks.Reach)
	router.KeySecure = ks
	return router, nil
}

// Serve takes calls until ctx ends, drains, and releases everything.
func (l *Line) Serve(ctx context.Context) error {
	defer l.Close()
	if l.Token != nil {
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		go l.Token.Watch(wctx, TokenProbeInterval, func(err error) {
			if err != nil {
				l.log.WithError(err).Error("the PIN key token stopped encrypting: calls hear \"not available\" and /readyz is 503 until it is back")
			} else {
				l.log.Warn("the PIN key token encrypts again with the same key")
			}
		})
	}
	if l.registry != nil {
		fctx, stop := context.WithCancel(ctx)
		defer stop()
		go l.watchFleet(fctx)
	}
	hctx, stopHosts := context.WithCancel(ctx)
	defer stopHosts()
	go l.hosts.run(hctx)
	return l.Server.Serve(ctx, l.handle)
}

// TokenProbeInterval is how often the token is checked (its key still
// gives its KCV) or, after a failure, reopened.
var TokenProbeInterval = 2 * time.Second

// Close releases the host clients, the attempt store and the audit file
// (Serve does it on return; call it when Serve never ran).
func (l *Line) Close() {
	l.closeOnce.Do(func() {
		if l.started {
			if err := l.audit.WriteEvent(audit.Event{Kind: audit.KindStop, Time: time.Now().UTC(), Instance: l.instance}); err != nil {
				l.log.WithError(err).Error("the audit's stop record could not be written")
			}
		}
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

// MemoryLocked records whether serve locked its memory against swap (nil)
// or why not, for ivrpin_memory_locked and /readyz: a line that could not
// lock still takes calls.
func (l *Line) MemoryLocked(err error) {
	l.metrics.MemoryLocked(err == nil)
	l.memoryLocked = func() error { return err }
}

// Health serves /metrics, /healthz and /readyz for this line.
func (l *Line) Health() *metrics.Health {
	h := &metrics.Health{Metrics: l.metrics, Server: l.Server, Hosts: l.hosts.Reachable, Audit: l.AuditReady}
	if l.memoryLocked != nil {
		h.MemoryLocked = l.memoryLocked
	}
	if l.Token != nil {
		h.PINKey = l.Token.Ready
	}
	return h
}
