// Command ivr-pin is the card PIN line: an Asterisk ARI (Stasis) application
// on which cardholders change their card PIN with the keypad.
//
//	ivr-pin serve      take calls from Asterisk (production)
//	ivr-pin console    a complete call on this machine: no Asterisk, no bank
//	ivr-pin simulate   run the card-host and KeySecure simulators on loopback
//	ivr-pin config     print the effective configuration (secrets masked)
//	ivr-pin load       measure one serve process under many concurrent calls
//	ivr-pin dial       call a line over SIP and press keys (a tester's softphone)
//	ivr-pin key        import the zone PIN key into a PKCS#11 token, or check it
//	ivr-pin --version  the module version and VCS revision it was built from
//
// Settings come from IVRPIN_* environment variables (see README.md).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/ivr-pin/ivr-pin/internal/buildinfo"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
)

const usage = `usage: ivr-pin <command> [flags]
       ivr-pin --version

commands:
  serve      connect to Asterisk ARI and take calls
  console    a complete call with the terminal as the phone (no Asterisk, no bank host needed)
  simulate   run the card-host and KeySecure simulators on loopback and print their test cards
  config     print the effective configuration, secrets shown only as set/unset or key check value
  check      every start-up check of serve, and what it needs around it, all at once; exits 0
             only when serve would start
  load       measure one serve process under many concurrent calls (see docs/performance.md)
  dial       call a line over SIP and press keys (a tester's softphone)
  key        the zone PIN key's ceremony: import from custodians' components into the
             PKCS#11 token, or check a key there
  prompts    list the prompts' words, or check a sounds directory (a bank's recordings)
  ready      ask a running serve's /readyz: exit 0 when ready (a container's health check)
  audit      check audit files: every attempt closed by its call record

Run 'ivr-pin <command> -h' for a command's flags. Settings come from IVRPIN_* environment
variables (README.md). Exit codes: 0 done, 1 failed (configuration, start-up, runtime; for
dial: the call did not end with the far end hanging up after every group), 2 bad usage,
3 console call ended without an outcome.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the command line; main only exits with its code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "console":
		return console(args[1:], stdin, stdout, stderr)
	case "simulate":
		return simulate(args[1:], stdout, stderr)
	case "config":
		return printConfig(args[1:], stdout, stderr)
	case "load":
		return load(args[1:], stdout, stderr)
	case "dial":
		return dial(args[1:], stdin, stdout, stderr)
	case "key":
		return key(args[1:], stdin, stdout, stderr)
	case "check":
		return checkCmd(args[1:], stdout, stderr)
	case "ready":
		return ready(args[1:], stdout, stderr)
	case "audit":
		return auditCmd(args[1:], stdout, stderr)
	case "prompts":
		return promptsCmd(args[1:], stdout, stderr)
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, "ivr-pin", buildinfo.Read())
		return 0
	}
	fmt.Fprintf(stderr, "ivr-pin: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// parseFlags parses a verb's flags as Go tools do. -h or --help prints the
// verb's usage to stdout: done is true and code 0, with no side effect. An
// unknown flag or a stray argument prints the error and the usage to
// stderr: done is true and code 2. Otherwise done is false: go on.
func parseFlags(fs *flag.FlagSet, args []string, summary string, stdout, stderr io.Writer) (code int, done bool) {
	return parseFlagsAndArgs(fs, args, "", 0, summary, stdout, stderr)
}

// parseFlagsAndArgs is parseFlags for a verb that takes exactly nargs
// arguments after its flags, shown in the usage as argsUsage.
func parseFlagsAndArgs(fs *flag.FlagSet, args []string, argsUsage string, nargs int, summary string, stdout, stderr io.Writer) (code int, done bool) {
	printUsage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: ivr-pin %s [flags]%s\n\n%s\n", fs.Name(), argsUsage, summary)
		var flags strings.Builder
		fs.SetOutput(&flags)
		fs.PrintDefaults()
		if flags.Len() > 0 {
			fmt.Fprintf(w, "\nflags:\n%s", flags.String())
		}
	}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout)
		return 0, true
	case err != nil:
		fmt.Fprintf(stderr, "ivr-pin %s: %v\n", fs.Name(), err)
		printUsage(stderr)
		return 2, true
	case fs.NArg() > nargs:
		fmt.Fprintf(stderr, "ivr-pin %s: unexpected argument %q\n", fs.Name(), fs.Arg(nargs))
		printUsage(stderr)
		return 2, true
	case fs.NArg() < nargs:
		fmt.Fprintf(stderr, "ivr-pin %s: missing%s\n", fs.Name(), argsUsage)
		printUsage(stderr)
		return 2, true
	}
	return 0, false
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

func printConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	table := fs.Bool("table", false, "print every setting's variable, default and meaning as a Markdown table (the README's)")
	if code, done := parseFlags(fs, args, "Prints the effective configuration from IVRPIN_* variables, one NAME=value a line;\nsecrets only as <set>/<unset> or their key check value.", stdout, stderr); done {
		return code
	}
	if *table {
		config.Describe(stdout)
		return 0
	}
	cfg, ok := loadConfig(stderr)
	if !ok {
		return 1
	}
	cfg.Print(stdout)
	if cfg.TokenKey() {
		// The key's KCV comes from the token itself.
		tok, err := hsm.Open(cfg.PKCS11())
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin config: IVRPIN_PKCS11_TOKEN_LABEL: %v\n", err)
			return 1
		}
		defer tok.Close()
		k, err := tok.Key(cfg.NIZPKLabel, cfg.ZPKAlgorithm(), cfg.NIZPKKCV)
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin config: IVRPIN_NI_ZPK_LABEL: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "# zone PIN key: %s\n", k.Describe())
	}
	return 0
}
