package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
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
