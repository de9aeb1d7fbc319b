package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/ivr"
	"github.com/ivr-pin/ivr-pin/pinsvc"
	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
)

// serve connects to Asterisk and takes calls until SIGTERM or SIGINT, then
// drains and exits 0.
func serve(args []string) int {
	cfg, ok := loadConfig(os.Stderr)
	if !ok {
		return 1
	}
	logger := newLogger(cfg, os.Stderr)
	log := logrus.NewEntry(logger).WithField("app", cfg.ARIApplication)
	ivr.RouteLibraryLogs(log)
	if cfg.NIURL == "" {
		log.Error("IVRPIN_NI_URL is not set: serve needs the card host (try `ivr-pin console` for a demo)")
		return 1
	}
	router, closeHosts, err := buildRouter(cfg, log)
	if err != nil {
		log.WithError(err).Error("cannot build the host clients")
		return 1
	}
	defer closeHosts()
	flow := flows.New(flows.Config{
		Languages: cfg.Languages, FirstDigitTimeout: cfg.FirstDigitTimeout, InterDigitTimeout: cfg.InterDigitTimeout,
		MaxTries: cfg.MaxTries, Agent: flows.ParseTarget(cfg.AgentTransfer), HostWaitAnnounce: cfg.HostWaitAnnounce,
	}, router)
	audit := logger.WithField("log", "audit")
	app, err := ivr.New(ivr.Config{
		ARI: ivr.ARIConfig{URL: cfg.ARIURL, WSURL: cfg.WebsocketURL(), Username: cfg.ARIUsername, Password: cfg.ARIPassword,
			Application: cfg.ARIApplication, Timeout: cfg.ARITimeout},
		CallTimeout: cfg.CallTimeout, Log: log,
		OnCallEnd: func(r ivr.CallRecord) { audit.WithField("record", r).Info("call") },
	}, flow)
	if err != nil {
		log.WithError(err).Error("cannot create the ARI app")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	health := startHealth(cfg, app, log)
	defer health()
	log.WithFields(logrus.Fields{"ari": cfg.ARIURL, "card_host_encryption": describeEncrypter(cfg)}).Info("starting")
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

// startHealth serves /healthz (process alive) and /readyz (ARI connected) on
// IVRPIN_METRICS_ADDR.
func startHealth(cfg *config.Config, app *ivr.App, log *logrus.Entry) func() {
	if cfg.MetricsAddr == "" {
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready := app.Stream().Connected()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ari_connected": ready, "active_calls": app.Active()})
	})
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		log.WithError(err).Warn("health endpoint not started")
		return func() {}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }
}
