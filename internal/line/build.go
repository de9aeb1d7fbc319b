package line

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
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
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
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
	metrics   *metrics.Metrics
	onCallEnd func(audit.Record)
	transport ivr.Transport

	closeOnce sync.Once
	closers   []func()

	// instance names this process in audit records and the fleet's
	// registry; registry is nil without Redis.
	instance string
	registry *registry

	langMu     sync.Mutex
	langWarned map[string]bool
	auditErr   atomic.Pointer[error] // the last audit write's error, nil once one succeeds
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
	var tokenKey pinblock.Cipher
	if cfg.TokenKey() && opts.CardHost == nil {
		k, err := l.openToken()
		if err != nil {
			return nil, err
		}
		tokenKey = k
	}
	router, err := l.router(opts, tokenKey)
	if err != nil {
		return nil, err
	}
	l.Router = router
	ls := cfg.LimitSettings()
	ls.OnStoredKey = func() {
		opts.Log.Warn("the attempt store held an HMAC key of an earlier version beside its hashes; it is deleted and the store rewritten without it (counts made under it no longer match and expire with their windows)")
	}
	limiter, err := limits.Open(ctx, ls)
	if err != nil {
		// Name the setting to fix: the store file's or Redis's.
		v := "LIMIT_STORE"
		if cfg.RedisURL != "" {
			v = "REDIS_URL"
		} else if len(cfg.RedisSentinels) > 0 {
			v = "REDIS_SENTINELS"
		}
		return nil, &config.Problem{Var: v, Reason: err.Error()}
	}
	l.Limiter = limiter
	l.LineGuard = &limits.LineGuard{Store: limiter.Store, Max: cfg.LimitLineFailedMax, Window: cfg.LimitLineWindow}
	l.closers = append(l.closers, func() { _ = limiter.Store.Close() })
	host, _ := os.Hostname()
	l.instance = instanceID(cfg.InstanceID, host, os.Getpid())
	if rs, ok := limiter.Store.(*limits.RedisStore); ok {
		window := max(cfg.NITimeout, cfg.KeySecureTimeout) + cfg.CallTimeout
		l.registry = &registry{c: rs.Client(), instance: l.instance, window: window, ttl: max(24*time.Hour, 2*window)}
	}
	if cfg.AuditFile != "" {
		f, err := audit.OpenFile(cfg.AuditFile)
		if err != nil {
			return nil, err
		}
		l.audit = f
		l.closers = append(l.closers, func() { _ = f.Close() })
		// Changes a dead process sent, before this one takes calls.
		if err := l.closeOpenAttempts(ctx, cfg.AuditFile); err != nil {
			return nil, &config.Problem{Var: "AUDIT_FILE", Reason: "closing the attempts an earlier process left open: " + err.Error()}
		}
	} else {
		l.audit = audit.NewStream(opts.AuditOut)
	}
	if l.Token != nil {
		l.metrics.RegisterPINKey("token", l.Token.Ready)
	} else {
		l.metrics.RegisterPINKey("software", func() error { return nil })
	}
	l.Flow = flows.New(flows.Config{
		Languages: cfg.Languages, FirstDigitTimeout: cfg.FirstDigitTimeout, InterDigitTimeout: cfg.InterDigitTimeout,
		MaxTries: cfg.MaxTries, Agent: flows.ParseTarget(cfg.AgentTransfer), HostWaitAnnounce: cfg.HostWaitAnnounce,
		AgentOnFailure: flows.AgentOnFailure(cfg.AgentOnFailure), ExpiryOrder: policy.ExpiryOrder(cfg.ExpiryOrder),
		Limiter: limiter, Marks: limiter, LineGuard: l.LineGuard,
	}, journaled{Service: l.metrics.Instrument(router), l: l})
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
	ok = true
	return l, nil
}

// Transport is the ARI transport the configuration names.
func Transport(cfg *config.Config, opts Options) (ivr.Transport, error) {
	if cfg.ARIListen != "" {
		return ivr.Outbound(ivr.OutboundConfig{Listen: cfg.ARIListen, Username: cfg.ARIListenUsername,
			Password: cfg.ARIListenPassword, TLSCert: cfg.ARIListenTLSCert, TLSKey: cfg.ARIListenTLSKey,
			Application: cfg.ARIApplication, Timeout: cfg.ARITimeout, Log: opts.Log,
			MaxConnections: cfg.ARIListenMaxConnections, MaxCallsPerSocket: cfg.ARIListenMaxCallsPerSocket,
			MaxFailures: cfg.ARIListenMaxFailures, TrustedProxies: cfg.ARIListenTrustedProxies}), nil
	}
	var tlsCfg *tls.Config
	if cfg.ARITLSCA != "" {
		pem, err := os.ReadFile(cfg.ARITLSCA)
		if err != nil {
			return nil, &config.Problem{Var: "ARI_TLS_CA", Reason: "cannot read " + cfg.ARITLSCA}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &config.Problem{Var: "ARI_TLS_CA", Reason: cfg.ARITLSCA + " holds no PEM certificate"}
		}
		tlsCfg = &tls.Config{RootCAs: pool}
	}
	return ivr.Inbound(ivr.InboundConfig{URL: cfg.ARIURL, WSURL: cfg.WebsocketURL(), Username: cfg.ARIUsername,
		Password: cfg.ARIPassword, Application: cfg.ARIApplication, Timeout: cfg.ARITimeout, TLS: tlsCfg,
		MinBackoff: opts.MinBackoff, MaxBackoff: opts.MaxBackoff, WaitForAsterisk: opts.WaitForAsterisk, Log: opts.Log}), nil
}

// openToken opens the PKCS#11 token and finds the zone PIN key in it by
// its label, refusing a key the token would hand out and one whose KCV is
// not IVRPIN_NI_ZPK_KCV.
func (l *Line) openToken() (*hsm.Key, error) {
	tok, err := hsm.Open(l.cfg.PKCS11())
	if err != nil {
		return nil, &config.Problem{Var: "PKCS11_TOKEN_LABEL", Reason: err.Error()}
	}
	l.Token = tok
	l.closers = append(l.closers, tok.Close)
	k, err := tok.Key(l.cfg.NIZPKLabel, l.cfg.ZPKAlgorithm(), l.cfg.NIZPKKCV)
	if err != nil {
		return nil, &config.Problem{Var: "NI_ZPK_LABEL", Reason: err.Error()}
	}
	l.log.WithFields(logrus.Fields{"token": tok.Describe(), "key": k.Describe(), "kcv": k.KCV()}).Info("zone PIN key found in the PKCS#11 token")
	return k, nil
}

// router makes the host clients. Without KeySecure, first setup is not
// offered.
func (l *Line) router(opts Options, tokenKey pinblock.Cipher) (*pinsvc.Router, error) {
	var chCfg cardhost.Config
	if opts.CardHost != nil {
		chCfg = *opts.CardHost
	} else {
		var err error
		if chCfg, err = l.cfg.CardHost(tokenKey); err != nil {
			return nil, err
		}
	}
	if chCfg.Encrypter != nil {
		l.PINBlocks = chCfg.Encrypter.Describe()
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
	withMetrics := *ksCfg
	withMetrics.OnRequest = l.metrics.KeySecureRequest
	ks, err := keysecure.New(withMetrics)
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
	return l.Server.Serve(ctx, l.handle)
}

// TokenProbeInterval is how often the token is checked (its key still
// gives its KCV) or, after a failure, reopened.
var TokenProbeInterval = 2 * time.Second

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
	h := &metrics.Health{Metrics: l.metrics, Server: l.Server, HostURLs: []string{l.cfg.NIURL, l.cfg.KeySecureURL}, Audit: l.AuditReady}
	if l.Token != nil {
		h.PINKey = l.Token.Ready
	}
	return h
}
