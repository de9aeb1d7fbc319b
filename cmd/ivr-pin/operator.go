package main

// The verbs an operator runs beside a deployed line: config (what it is
// configured with), ready (whether a running serve is ready) and audit
// check (whether every attempt was closed).

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/line"
	"github.com/ivr-pin/ivr-pin/internal/secretfile"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

func printConfig(args []string, std cli.IO) int {
	stdout, stderr := std.Stdout, std.Stderr
	fs := flag.NewFlagSet("ivr-pin config", flag.ContinueOnError)
	table := fs.Bool("table", false, "print every setting's variable, default and meaning as a Markdown table (the README's)")
	if code, done := parseFlags(fs, args, "Prints the effective configuration from IVRPIN_* variables, one NAME=value a line;\nsecrets only as <set>/<unset> or their key check value.", stdout, stderr); done {
		return code
	}
	if *table {
		config.Describe(stdout)
		return 0
	}
	// Problems and unknown variables as check reports them.
	cfg, problems := config.LoadAll()
	for _, p := range problems {
		fmt.Fprintf(stderr, "ivr-pin config: %v\n", p)
	}
	if len(problems) > 0 {
		return 1
	}
	for _, w := range config.Unknown(os.Environ()) {
		fmt.Fprintf(stderr, "ivr-pin config: warning: %v\n", w)
	}
	cfg.Print(stdout)
	if cfg.TokenKey() {
		// The key's KCV comes from the token itself, opened as serve does.
		quiet := logrus.New()
		quiet.SetOutput(io.Discard)
		p, err := line.Provision(context.Background(), cfg, line.KeyStep, logrus.NewEntry(quiet))
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin config: %v\n", err)
			return 1
		}
		defer p.Close()
		fmt.Fprintf(stdout, "# zone PIN key: %s\n", p.ZPK.(interface{ Describe() string }).Describe())
	}
	return 0
}

// ready asks a running serve's /readyz (IVRPIN_METRICS_ADDR) and exits 0 when
// it is ready: a health check for images without a shell or curl
// (distroless), as the Dockerfile's HEALTHCHECK and compose use it.
func ready(args []string, std cli.IO) int {
	stdout, stderr := std.Stdout, std.Stderr
	fs := flag.NewFlagSet("ivr-pin ready", flag.ContinueOnError)
	addr := fs.String("addr", "", "serve's metrics address (default: IVRPIN_METRICS_ADDR, else 127.0.0.1:9464)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if code, done := parseFlags(fs, args, "Asks a running serve's /readyz; exits 0 when it is ready, 1 when not (printing why).", stdout, stderr); done {
		return code
	}
	a := *addr
	if a == "" {
		a = os.Getenv("IVRPIN_METRICS_ADDR")
	}
	if a == "" {
		a = "127.0.0.1:9464"
	}
	if host, port, err := net.SplitHostPort(a); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		a = net.JoinHostPort("127.0.0.1", port)
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get("http://" + a + "/readyz")
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin ready: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "ivr-pin ready: not ready (HTTP %d): %s", resp.StatusCode, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s", body)
	return 0
}

// auditProgram is `ivr-pin audit`'s verbs.
func auditProgram() cli.Program {
	return cli.Program{Name: "ivr-pin audit", Verbs: []cli.Verb{
		{Name: "check", Synopsis: "[--key-file F] FILE...", Summary: `verifies audit files, plain or gzipped, given in rotation order (oldest first, then
the current one): the chain of MACs across them under the audit key (--key-file, else
IVRPIN_AUDIT_KEY_FILE, IVRPIN_AUDIT_KEY, or the token's key that IVRPIN_AUDIT_KEY_LABEL
names), naming by file and line a record removed, inserted, changed or out of order, a line
that is not a record or was cut short, and a file with no record; and pairs every attempt
with its call record (an attempt without one is a change that may have reached the host
while no record of its answer was written). Prints how many records it read, from which
instances, first and last time. Exits 0 only when everything verifies. docs/operations.md
says how to reconcile.`, Run: func(a []string, s cli.IO) int { return auditCheck(a, s.Stdout, s.Stderr) }},
	}}
}

func auditCmd(args []string, std cli.IO) int { return auditProgram().Run(args, std) }

func auditCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin audit check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	keyFile := fs.String("key-file", os.Getenv("IVRPIN_AUDIT_KEY_FILE"), "the audit key (hex), as serve reads it")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, auditProgram().Usage())
			return 0
		}
		fmt.Fprintf(stderr, "ivr-pin audit check: %v\n\n%s", err, auditProgram().Usage())
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "ivr-pin audit check: missing FILE\n\n%s", auditProgram().Usage())
		return 2
	}
	key, done, err := auditKey(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin audit check: %v\n", err)
		return 1
	}
	defer done()
	r, err := audit.Check(fs.Args(), key)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin audit check: %v\n", err)
		return 1
	}
	for _, p := range r.Problems {
		fmt.Fprintln(stdout, "problem:", p)
	}
	for _, a := range r.Trail.Open {
		fmt.Fprintf(stdout, "open attempt: msg_id %s host %s pan %s channel %s instance %s at %s (no call record)\n",
			a.MsgID, a.Host, a.MaskedPAN, a.ChannelID, a.Instance, a.Time.Format(time.RFC3339))
	}
	for _, c := range r.Trail.Orphans {
		fmt.Fprintf(stdout, "call record without its attempt: msg_id %s host %s pan %s channel %s outcome %s end %s\n",
			c.MsgID, c.Host, c.MaskedPAN, c.ChannelID, c.Outcome, c.End)
	}
	for _, c := range r.Trail.Interrupted() {
		fmt.Fprintf(stdout, "interrupted change: msg_id %s host %s pan %s sent by %s at %s, closed by %s: the result is unknown, reconcile with the host by msg_id\n",
			c.MsgID, c.Host, c.MaskedPAN, c.AttemptInstance, c.Start.Format(time.RFC3339), c.Instance)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(stdout, "note:", n)
	}
	span := "no times"
	if !r.First.IsZero() {
		span = r.First.Format(time.RFC3339) + " to " + r.Last.Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "read %s in %s, from instances %s, %s\n", plural(r.Records, "record"), plural(fs.NArg(), "file"), strings.Join(r.Instances, ", "), span)
	if !r.OK() {
		fmt.Fprintf(stderr, "ivr-pin audit check: %s, %s, %s without their attempt\n",
			plural(len(r.Problems), "problem"), plural(len(r.Trail.Open), "open attempt"), plural(len(r.Trail.Orphans), "call record"))
		return 1
	}
	fmt.Fprintln(stdout, "ivr-pin audit check: the chain verifies and every attempt has its call record")
	return 0
}

// auditKey is the audit key from a file (as serve reads its secret files),
// IVRPIN_AUDIT_KEY, or the token IVRPIN_AUDIT_KEY_LABEL names (with the
// PKCS11 settings); nil when none is given. done releases the token.
func auditKey(file string) (key audit.MACKey, done func(), err error) {
	done = func() {}
	if file == "" && os.Getenv("IVRPIN_AUDIT_KEY_LABEL") != "" {
		cfg, err := config.Load()
		if err != nil {
			return nil, done, err
		}
		tok, err := line.OpenToken(cfg)
		if err != nil {
			return nil, done, err
		}
		ak, err := tok.AuditKey(cfg.AuditKeyLabel, cfg.AuditKeyKCV)
		if err != nil {
			tok.Close()
			return nil, done, fmt.Errorf("IVRPIN_AUDIT_KEY_LABEL: %w", err)
		}
		return ak, tok.Close, nil
	}
	var a config.Audit
	if file != "" {
		b, err := secretfile.Read(file)
		if err != nil {
			return nil, done, fmt.Errorf("--key-file: %w", err)
		}
		a.AuditKey = strings.TrimSpace(string(b))
		secret.Zero(b)
	} else {
		a.AuditKey = os.Getenv("IVRPIN_AUDIT_KEY")
	}
	raw, err := a.AuditKeyBytes()
	if err != nil {
		return nil, done, err
	}
	return audit.KeyOf(raw), done, nil
}
