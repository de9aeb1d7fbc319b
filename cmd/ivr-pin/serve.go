package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/internal/buildinfo"
	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/harden"
	"github.com/ivr-pin/ivr-pin/internal/line"
	"github.com/ivr-pin/ivr-pin/internal/procs"
)

// serve connects to Asterisk and takes calls until SIGTERM or SIGINT, then
// drains and exits 0.
func serve(args []string, std cli.IO) int {
	stdout, stderr := std.Stdout, std.Stderr
	fs := flag.NewFlagSet("ivr-pin serve", flag.ContinueOnError)
	if code, done := parseFlags(fs, args, "Connects to Asterisk ARI and takes calls until SIGTERM or SIGINT, then drains and exits 0.\nLogs go to stderr, audit records to stdout (or IVRPIN_AUDIT_FILE).", stdout, stderr); done {
		return code
	}
	// Before anything holds a key or a PIN: no core dump, no reading of
	// this process's memory by others of its user.
	hardened, hardenErr := harden.Process()
	// And none of it written to swap, where the limit allows it.
	lockErr := harden.LockMemory()
	// The same checks as `ivr-pin check` (less the network's): every
	// problem at once, not one per restart.
	unknown := config.Unknown(os.Environ())
	cfg, problems := config.LoadAll()
	problems = append(problems, cfg.ServeProblems()...)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "ivr-pin: configuration: %v\n", p)
		}
		fmt.Fprintf(stderr, "ivr-pin: %d configuration problems (`ivr-pin check` lists them with what serve needs around it)\n", len(problems))
		return 1
	}
	logger := newLogger(cfg, stderr)
	log := logrus.NewEntry(logger).WithField("app", cfg.ARIApplication)
	if hardenErr != nil {
		log.WithError(hardenErr).Warn("process hardening incomplete: a crash may write memory (keys, PINs in flight) to a core file")
	}
	if lockErr != nil {
		log.WithError(lockErr).Warn("memory not locked: the kernel may write pages of this process (PINs in flight) to swap; ivrpin_memory_locked is 0")
	}
	// What serve runs with but warns of: `ivr-pin check` lists the same.
	warnings := append(unknown, cfg.Warnings()...)
	if w := clockWarning(); w != nil {
		warnings = append(warnings, w)
	}
	for _, w := range warnings {
		log.Warn(w.Error())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// One scheduler processor while the load is light, more in a burst
	// (internal/procs: idle processors cost serve a fifth of its CPU).
	go procs.Run(ctx, procs.Config{Log: log.WithField("component", "procs")}, os.Getenv)

	// A service may start before Asterisk (systemd, compose): it waits for
	// ARI, /readyz saying why, rather than exiting.
	l, err := line.Build(ctx, cfg, line.Options{Log: log, AuditOut: stdout, WaitForAsterisk: true, RefuseLabParts: true})
	if err != nil {
		// Fail closed: without its hosts, attempt store or audit file the
		// line must not take calls.
		log.WithError(err).Error("cannot build the line")
		return 1
	}
	l.MemoryLocked(lockErr)
	if cfg.MetricsAddr != "" {
		// Fatal when it cannot listen: a balancer's /readyz check would
		// never pass, and nothing else would say why.
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			l.Close()
			log.WithError(err).Error("IVRPIN_METRICS_ADDR: cannot listen for /metrics, /healthz and /readyz")
			return 1
		}
		h := l.Health()
		go func() {
			if err := h.ServeListener(ctx, ln); err != nil {
				log.WithError(err).Error("metrics and health endpoint stopped")
			}
		}()
	}
	fields := logrus.Fields{"transport": l.Server.Mode(), "card_host_encryption": l.PINBlocks,
		"core_dumps_off": hardened.CoreLimitZero, "not_dumpable": hardened.NotDumpable, "version": buildinfo.Read().String()}
	if cfg.ARIListen != "" {
		fields["listen"] = cfg.ARIListen
		if cfg.ARIListenTLSCert == "" {
			fields["tls"] = false
		}
	} else {
		fields["ari"] = config.RedactURL(cfg.ARIURL)
	}
	// SIGHUP reopens the audit file (logrotate's postrotate sends it).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := l.ReopenAudit(); err != nil {
					log.WithError(err).Error("SIGHUP: could not reopen IVRPIN_AUDIT_FILE; records still go to the old file")
				} else {
					log.Info("SIGHUP: audit file reopened")
				}
			}
		}
	}()
	log.WithFields(fields).Info("starting")
	if err := l.Serve(ctx); err != nil {
		log.WithError(err).Error("the ARI transport stopped: no calls can be taken")
		return 1
	}
	log.Info("drained; exiting")
	return 0
}
