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
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/line"
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
		{Name: "check", Synopsis: "FILE...", Summary: `reads audit files (the current one and its rotated ones, in any order) and lists
every attempt with no call record (a change that may have reached the host while
no record of its answer was written) and every call record naming a msg_id with
no attempt before it; exits 1 if there are any. docs/operations.md says how to
reconcile them with the host by msg_id.`, Run: func(a []string, s cli.IO) int { return auditCheck(a, s.Stdout, s.Stderr) }},
	}}
}

func auditCmd(args []string, std cli.IO) int { return auditProgram().Run(args, std) }

func auditCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin audit check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
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
	var t audit.Trail
	for _, path := range fs.Args() {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin audit check: %v\n", err)
			return 1
		}
		err = t.Read(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin audit check: %s: %v\n", path, err)
			return 1
		}
	}
	t.Done()
	for _, a := range t.Open {
		fmt.Fprintf(stdout, "open attempt: msg_id %s host %s pan %s channel %s instance %s at %s (no call record)\n",
			a.MsgID, a.Host, a.MaskedPAN, a.ChannelID, a.Instance, a.Time.Format("2006-01-02T15:04:05Z07:00"))
	}
	for _, r := range t.Orphans {
		fmt.Fprintf(stdout, "call record without its attempt: msg_id %s host %s pan %s channel %s outcome %s end %s\n",
			r.MsgID, r.Host, r.MaskedPAN, r.ChannelID, r.Outcome, r.End)
	}
	if len(t.Open)+len(t.Orphans) > 0 {
		fmt.Fprintf(stderr, "ivr-pin audit check: %d open attempts, %d call records without their attempt\n", len(t.Open), len(t.Orphans))
		return 1
	}
	fmt.Fprintln(stdout, "ivr-pin audit check: every attempt has its call record")
	return 0
}
