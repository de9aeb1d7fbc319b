package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/line"
)

func printConfig(args []string, stdout, stderr io.Writer) int {
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
