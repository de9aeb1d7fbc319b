// Command ivr-pin is the card PIN line: an Asterisk ARI (Stasis) application
// on which cardholders change their card PIN with the keypad.
//
//	ivr-pin serve      take calls from Asterisk (production)
//	ivr-pin console    a complete call on this machine: no Asterisk, no bank
//	ivr-pin simulate   run the card-host and KeySecure simulators on loopback
//	ivr-pin config     print the effective configuration (secrets masked)
//	ivr-pin load       measure one serve process under many concurrent calls
//
// Settings come from IVRPIN_* environment variables (see README.md).
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/ivr-pin/ivr-pin/internal/config"
)

const usage = `usage: ivr-pin <command> [flags]

commands:
  serve      connect to Asterisk ARI and take calls
  console    a complete call with the terminal as the phone (no Asterisk, no bank host needed)
  simulate   run the card-host and KeySecure simulators on loopback and print their test cards
  config     print the effective configuration, secrets shown only as set/unset or key check value
  load       measure one serve process under many concurrent calls (see docs/performance.md)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var code int
	switch os.Args[1] {
	case "serve":
		code = serve(os.Args[2:])
	case "console":
		code = console(os.Args[2:], os.Stdin, os.Stdout, os.Stderr)
	case "simulate":
		code = simulate(os.Args[2:], os.Stdout)
	case "config":
		code = printConfig(os.Args[2:], os.Stdout)
	case "load":
		code = load(os.Args[2:], os.Stdout)
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
	default:
		fmt.Fprintf(os.Stderr, "ivr-pin: unknown command %q\n\n%s", os.Args[1], usage)
		code = 2
	}
	os.Exit(code)
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

func printConfig(args []string, out io.Writer) int {
	if len(args) > 0 && args[0] == "--table" {
		config.Describe(out)
		return 0
	}
	cfg, ok := loadConfig(os.Stderr)
	if !ok {
		return 1
	}
	cfg.Print(out)
	return 0
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
