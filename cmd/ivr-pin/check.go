package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/line"
	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
)

const checkSummary = `Says what serve would do with this configuration, all at once. Problems stop serve: the
settings and their combinations, secrets and their files, the zone PIN key (opened in its
PKCS#11 token), the attempt store (its directory, or Redis), the audit file, the metrics and
listener addresses and TLS pair, and credentials Asterisk refuses. Warnings are what serve
runs with, perhaps not ready or waiting: unknown IVRPIN_* variables (with the closest name),
an Asterisk that does not answer, a host that cannot be reached (a TCP and TLS handshake,
nothing sent), secrets in the environment, lab settings, a clock nothing keeps synchronised. Exits 0 exactly when serve would
start.`

// checkCmd runs `ivr-pin check`: serve's provisioning (line.Provision),
// opened and closed, and what serve meets around it.
func checkCmd(args []string, std cli.IO) int {
	stdout, stderr := std.Stdout, std.Stderr
	fs := flag.NewFlagSet("ivr-pin check", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 5*time.Second, "bound on each network check")
	if code, done := parseFlags(fs, args, checkSummary, stdout, stderr); done {
		return code
	}
	warnings := config.Unknown(os.Environ())
	cfg, problems := config.LoadAll()
	problems = append(problems, cfg.ServeProblems()...)
	warnings = append(warnings, cfg.Warnings()...)
	p, w, keys := provisionForCheck(cfg, problems, *timeout)
	problems, warnings = append(problems, p...), append(warnings, w...)
	if len(problems) == 0 {
		// A host is reached with the client serve would build; a
		// configuration with problems may not build one.
		warnings = append(warnings, reachHosts(cfg, *timeout)...)
	}
	if w := clockWarning(); w != nil {
		warnings = append(warnings, w)
	}
	for _, k := range keys {
		fmt.Fprintln(stdout, "key:", k)
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, "problem:", p)
	}
	for _, w := range warnings {
		fmt.Fprintln(stdout, "warning:", w)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "ivr-pin check: %s, %s: serve would not start as configured\n", plural(len(problems), "problem"), plural(len(warnings), "warning"))
		return 1
	}
	fmt.Fprintf(stdout, "ivr-pin check: serve would start with this configuration (%s)\n", plural(len(warnings), "warning"))
	return 0
}

// provisionForCheck runs serve's provisioning and closes it. A step whose
// settings already have a problem is left out (one cause, one message);
// the attempt store is opened even without a usable LIMIT_KEY, under a key
// of this run's, since where it lives is a problem of its own.
func provisionForCheck(cfg *config.Config, known []error, timeout time.Duration) (problems, warnings []error, keys []string) {
	bad := map[string]bool{}
	for _, e := range known {
		var p *config.Problem
		if errors.As(e, &p) {
			bad[p.Var] = true
		}
	}
	has := func(prefixes ...string) bool {
		for v := range bad {
			for _, p := range prefixes {
				if strings.HasPrefix(v, p) {
					return true
				}
			}
		}
		return false
	}
	steps := line.CheckSteps
	for _, s := range []struct {
		step     line.Step
		prefixes []string
	}{
		{line.KeyStep, []string{"NI_ZPK", "PKCS11_", "NI_PINBLOCK_FORMAT", "KEYSECURE_KEY_"}},
		{line.StoreStep, []string{"LIMIT_STORE", "REDIS_"}},
		{line.ListenStep, []string{"ARI_LISTEN", "METRICS_ADDR"}},
		{line.AsteriskStep, []string{"ARI_URL", "ARI_WS_URL", "ARI_TLS_CA", "ARI_PASSWORD", "ARI_USERNAME"}},
		{line.AuditStep, []string{"AUDIT_"}},
	} {
		if has(s.prefixes...) {
			steps &^= s.step
		}
	}
	probe := *cfg
	if bad["LIMIT_KEY"] || probe.LimitKey == "" {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		probe.LimitKey = hex.EncodeToString(k)
	}
	probe.ARITimeout = min(probe.ARITimeout, timeout)
	ctx, cancel := context.WithTimeout(context.Background(), 4*timeout)
	defer cancel()
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	p, err := line.Provision(ctx, &probe, steps, logrus.NewEntry(quiet))
	if err != nil {
		problems = unjoin(err)
	}
	defer p.Close()
	if err := p.LabTokenProblem(cfg); err != nil {
		problems = append(problems, err)
	}
	if p.Waiting != "" {
		warnings = append(warnings, &config.Problem{Var: "ARI_URL", Reason: "Asterisk's ARI is not reachable (serve waits for it, not ready meanwhile; check http.conf and the address): " + p.Waiting})
	}
	// The keys the PIN blocks are made under, as the token computed their
	// check values: the current one and, in a rotation, the next.
	if len(problems) == 0 && cfg.NIURL != "" {
		if ch, err := cfg.CardHostClient(p.ZPK, p.NextZPK); err == nil {
			keys = append(keys, fmt.Sprintf("PIN blocks: %s, key id %q", ch.Encrypter.Describe(), ch.EncryptionKeyID))
			if n := ch.Next; n != nil {
				when := "in the future"
				if !time.Now().Before(n.From) {
					when = "in force: promote it (docs/operations.md)"
				}
				keys = append(keys, fmt.Sprintf("next, for calls from %s (%s): %s, key id %q", n.From.UTC().Format(time.RFC3339), when, n.Encrypter.Describe(), n.KeyID))
			}
		}
	}
	return problems, warnings, keys
}

// reachHosts reaches each configured host with the client serve builds
// (its TLS roots and client certificate), sending nothing: serve starts
// without them, but is not ready while it cannot reach them.
func reachHosts(cfg *config.Config, timeout time.Duration) []error {
	var out []error
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if cfg.NIURL != "" {
		ch, err := cfg.CardHost.ClientConfig(nil, cfg.AllowInsecureHosts)
		if err == nil {
			err = cardhost.Reach(ctx, ch)
		}
		if err != nil {
			out = append(out, &config.Problem{Var: "NI_URL", Reason: "the card host cannot be reached (serve runs, not ready): " + err.Error()})
		}
	}
	if cfg.KeySecureURL != "" {
		// A reach sends nothing under the apiSecret: when it is in the
		// token (opened and closed by the provisioning above), a
		// throwaway key stands in for it here.
		var standIn keysecure.Secret
		if cfg.KeySecureKeyLabel != "" {
			standIn, _ = keysecure.SecretKey(rand.Text()[:16])
		}
		ks, err := cfg.KeySecure.ClientConfig(standIn, cfg.AllowInsecureHosts)
		if err == nil {
			var c *keysecure.Client
			if c, err = keysecure.New(ks); err == nil {
				err = c.Reach(ctx)
				c.Close()
			}
		}
		if err != nil {
			out = append(out, &config.Problem{Var: "KEYSECURE_URL", Reason: "KeySecure cannot be reached (serve runs, not ready; first setup is not offered meanwhile): " + err.Error()})
		}
	}
	return out
}

// unjoin splits errors.Join's error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// plural is "1 problem", "2 problems".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
