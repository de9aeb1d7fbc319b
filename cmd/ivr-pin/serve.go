package main

import (
	"context"
	"flag"
	"io"
	"os/signal"
	"syscall"

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

// serve connects to Asterisk and takes calls until SIGTERM or SIGINT, then
// drains and exits 0.
func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	if code, done := parseFlags(fs, args, "Connects to Asterisk ARI and takes calls until SIGTERM or SIGINT, then drains and exits 0.\nLogs go to stderr, audit records to stdout (or IVRPIN_AUDIT_FILE).", stdout, stderr); done {
		return code
	}
	cfg, ok := loadConfig(stderr)
	if !ok {
		return 1
	}
	logger := newLogger(cfg, stderr)
	log := logrus.NewEntry(logger).WithField("app", cfg.ARIApplication)
	ivr.RouteLibraryLogs(log)
	if cfg.NIURL == "" {
		log.Error("IVRPIN_NI_URL is not set: serve needs the card host (try `ivr-pin console` for a demo)")
		return 1
	}
	if cfg.AllowInsecureHosts {
		log.Warn("IVRPIN_ALLOW_INSECURE_HOSTS=true: PIN blocks, tokens and card details may travel in plain http to other machines; never in production")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	router, closeHosts, err := buildRouter(cfg, log)
	if err != nil {
		log.WithError(err).Error("cannot build the host clients")
		return 1
	}
	defer closeHosts()
	limiter, err := limits.Open(ctx, cfg.LimitSettings())
	if err != nil {
		// Fail closed: without its attempt store the line must not take calls.
		log.WithError(err).Error("attempt store unavailable")
		return 1
	}
	defer limiter.Store.Close()
	var auditW audit.Writer = audit.NewStream(stdout)
	if cfg.AuditFile != "" {
		f, err := audit.OpenFile(cfg.AuditFile)
		if err != nil {
			log.WithError(err).Error("cannot open the audit file")
			return 1
		}
		defer f.Close()
		auditW = f
	}

	var m *metrics.Metrics
	var app *ivr.App
	flowSvc := pinsvc.Service(router)
	m = metrics.New(nil)
	flowSvc = m.Instrument(router)
	flow := flows.New(flows.Config{
		Languages: cfg.Languages, FirstDigitTimeout: cfg.FirstDigitTimeout, InterDigitTimeout: cfg.InterDigitTimeout,
		MaxTries: cfg.MaxTries, Agent: flows.ParseTarget(cfg.AgentTransfer), HostWaitAnnounce: cfg.HostWaitAnnounce,
		Limiter: limiter, Marks: limiter,
	}, flowSvc)
	app, err = ivr.New(ivr.Config{
		ARI: ivr.ARIConfig{URL: cfg.ARIURL, WSURL: cfg.WebsocketURL(), Username: cfg.ARIUsername, Password: cfg.ARIPassword,
			Application: cfg.ARIApplication, Timeout: cfg.ARITimeout},
		CallTimeout: cfg.CallTimeout, Log: log, Closing: flows.ParseTarget(cfg.DrainFallback), DrainTimeout: cfg.DrainTimeout,
		OnCallEnd: func(r ivr.CallRecord) {
			m.ObserveCall(r)
			if err := auditW.Write(r); err != nil {
				log.WithError(err).Error("audit record not written")
			}
		},
	}, flow)
	if err != nil {
		log.WithError(err).Error("cannot create the ARI app")
		return 1
	}
	m.RegisterApp(app)
	if cfg.MetricsAddr != "" {
		h := &metrics.Health{Metrics: m, App: app, HostURLs: []string{cfg.NIURL, cfg.KeySecureURL}}
		go func() {
			if err := h.Serve(ctx, cfg.MetricsAddr); err != nil {
				log.WithError(err).Warn("metrics and health endpoint not started")
			}
		}()
	}
	log.WithFields(logrus.Fields{"ari": config.RedactURL(cfg.ARIURL), "card_host_encryption": describeEncrypter(cfg)}).Info("starting")
	if err := app.Serve(ctx); err != nil {
		log.WithError(err).Error("ARI")
		return 1
	}
	log.Info("drained; exiting")
	return 0
}

func describeEncrypter(cfg *config.Config) string {
	enc, err := cfg.Encrypter()
	if err != nil {
		return "invalid"
	}
	return enc.Describe()
}

// buildRouter makes the host clients from the configuration.
func buildRouter(cfg *config.Config, log *logrus.Entry) (*pinsvc.Router, func(), error) {
	chCfg, err := cfg.CardHost()
	if err != nil {
		return nil, nil, err
	}
	ch, err := cardhost.New(chCfg)
	if err != nil {
		return nil, nil, err
	}
	closers := []func(){ch.Close}
	router := &pinsvc.Router{CardHost: ch, Policy: policy.PINPolicy{MinLength: cfg.PINMinLength, MaxLength: cfg.PINMaxLength}}
	if cfg.KeySecureURL != "" {
		ksCfg, err := cfg.KeySecure()
		if err != nil {
			return nil, nil, err
		}
		ks, err := keysecure.New(ksCfg)
		if err != nil {
			return nil, nil, err
		}
		router.KeySecure = ks
		closers = append(closers, ks.Close)
	} else {
		log.Warn("IVRPIN_KEYSECURE_URL is not set: first PIN setup of new cards is not offered")
	}
	return router, func() {
		for _, c := range closers {
			c()
		}
	}, nil
}
