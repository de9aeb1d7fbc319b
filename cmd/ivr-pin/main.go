// Command ivr-pin is the card PIN line: an Asterisk ARI (Stasis) application
// on which cardholders change their card PIN with the keypad. It holds what a
// bank runs and what a newcomer's first command needs; the bench and the SIP
// phone are ivr-pin-lab, so this binary, which holds the bank's keys, links
// no SIP or RTP stack.
//
//	ivr-pin serve      connect to Asterisk ARI and take calls
//	ivr-pin check      every start-up check of serve, and what it needs around it
//	ivr-pin config     print the effective configuration, secrets masked
//	ivr-pin ready      ask a running serve's /readyz (a container's health check)
//	ivr-pin key        the zone PIN key's ceremony in the PKCS#11 token
//	ivr-pin audit      check audit files
//	ivr-pin prompts    list the prompts' words, or check a sounds directory
//	ivr-pin call       place one test call into a running serve, as Asterisk does
//	ivr-pin console    a complete call with the terminal as the phone
//	ivr-pin simulate   run the card-host and KeySecure simulators on loopback
//	ivr-pin --version  the module version and VCS revision it was built from
//
// Settings come from IVRPIN_* environment variables (see README.md). The list
// above is the verb table's (verbs); a test holds them equal.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/ivr-pin/ivr-pin/internal/buildinfo"
	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/config"
)

// verbs is the command line: usage, -h and the package doc come from it.
func verbs() []cli.Verb {
	return []cli.Verb{
		{Name: "serve", Summary: "connect to Asterisk ARI and take calls", Run: serve},
		{Name: "check", Summary: "what serve would do with this configuration: every problem that stops it and every\nwarning it runs with, all at once; exits 0 exactly when serve would start", Run: checkCmd},
		{Name: "config", Summary: "print the effective configuration, secrets shown only as set/unset or key check value", Run: printConfig},
		{Name: "ready", Summary: "ask a running serve's /readyz: exit 0 when ready (a container's health check)", Run: ready},
		{Name: "key", Summary: "the zone PIN key's ceremony: import from custodians' components into the\nPKCS#11 token, or check a key there", Run: key},
		{Name: "audit", Summary: "check audit files: every attempt closed by its call record", Run: auditCmd},
		{Name: "prompts", Summary: "list the prompts' words, or check a sounds directory (a bank's recordings)", Run: promptsCmd},
		{Name: "call", Summary: "place one test call into a running serve's outbound listener, as Asterisk 22 does\n(a deployment proved end to end without a phone)", Run: call},
		{Name: "console", Summary: "a complete call with the terminal as the phone (no Asterisk, no bank host needed)", Run: console},
		{Name: "simulate", Summary: "run the card-host and KeySecure simulators on loopback and print their test cards", Run: simulate},
	}
}

// program is ivr-pin's command line.
func program() cli.Program {
	return cli.Program{Name: "ivr-pin", Verbs: verbs(), Version: func() string { return buildinfo.Read().String() },
		Outro: `Run 'ivr-pin <command> -h' for a command's flags. Settings come from IVRPIN_* environment
variables (README.md). The bench (load) and the SIP phone (dial) are ivr-pin-lab's.
Exit codes: 0 done, 1 failed (configuration, start-up, runtime), 2 bad usage,
3 console call ended without an outcome.`}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the command line; main only exits with its code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return program().Run(args, cli.IO{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// parseFlags is cli.ParseFlags for this command's verbs.
func parseFlags(fs *flag.FlagSet, args []string, summary string, stdout, stderr io.Writer) (code int, done bool) {
	return cli.ParseFlags(fs, args, summary, cli.IO{Stdout: stdout, Stderr: stderr})
}

// parseFlagsAndArgs is cli.ParseFlagsAndArgs for this command's verbs.
func parseFlagsAndArgs(fs *flag.FlagSet, args []string, argsUsage string, nargs int, summary string, stdout, stderr io.Writer) (code int, done bool) {
	return cli.ParseFlagsAndArgs(fs, args, argsUsage, nargs, summary, cli.IO{Stdout: stdout, Stderr: stderr})
}

// loadConfig reads the environment; a bad value stops start-up with the
// variable's name and never its value.
func loadConfig(stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin: configuration: %v\n", err)
		return nil, false
	}
	return cfg, true
}

// newLogger builds the logrus logger: JSON by default, text on a terminal.
func newLogger(cfg *config.Config, out io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(out)
	level, err := logrus.ParseLevel(cfg.LogLevel)
	if err != nil {
		level = logrus.InfoLevel
	}
	log.SetLevel(level)
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return log
}
