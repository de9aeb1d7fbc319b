package main

import (
	"context"
	"flag"
	"io"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/line"
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
	if cfg.NIURL == "" {
		log.Error("IVRPIN_NI_URL is not set: serve needs the card host (try `ivr-pin console` for a demo)")
		return 1
	}
	if cfg.AllowInsecureHosts {
		log.Warn("IVRPIN_ALLOW_INSECURE_HOSTS=true: PIN blocks, tokens and card details may travel in plain http to other machines; never in production")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	l, err := line.Build(ctx, cfg, line.Options{Log: log, AuditOut: stdout})
	if err != nil {
		// Fail closed: without its hosts, attempt store or audit file the
		// line must not take calls.
		log.WithError(err).Error("cannot build the line")
		return 1
	}
	if cfg.MetricsAddr != "" {
		h := l.Health()
		go func() {
			if err := h.Serve(ctx, cfg.MetricsAddr); err != nil {
				log.WithError(err).Warn("metrics and health endpoint not started")
			}
		}()
	}
	fields := logrus.Fields{"transport": l.Server.Mode(), "card_host_encryption": describeEncrypter(cfg)}
	if cfg.ARIListen != "" {
		fields["listen"] = cfg.ARIListen
		if cfg.ARIListenTLSCert == "" {
			fields["tls"] = false
		}
	} else {
		fields["ari"] = config.RedactURL(cfg.ARIURL)
	}
	log.WithFields(fields).Info("starting")
	if err := l.Serve(ctx); err != nil {
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
