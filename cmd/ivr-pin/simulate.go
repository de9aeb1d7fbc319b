package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

// simulate runs both host simulators on loopback until interrupted. The keys
// come from the same variables the client reads (IVRPIN_NI_ZPK,
// IVRPIN_KEYSECURE_API_SECRET), so one environment serves both sides; unset,
// fresh keys are made and only their check values are printed.
func simulate(args []string, out, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	chAddr := fs.String("cardhost", "127.0.0.1:8091", "card host simulator address (loopback)")
	ksAddr := fs.String("keysecure", "127.0.0.1:8092", "KeySecure simulator address (loopback)")
	if code, done := parseFlags(fs, args, "Runs the card-host and KeySecure simulators on loopback until SIGTERM, and prints their test\ncards (test data, in full) and how to inject faults.", out, stderr); done {
		return code
	}
	cfg, ok := loadConfig(stderr)
	if !ok {
		return 1
	}
	opts := simrun.Options{CardHostAddr: *chAddr, KeySecureAddr: *ksAddr, BankID: cfg.NIBankID,
		APIKey: cfg.KeySecureAPIKey, APISecret: cfg.KeySecureAPISecret}
	if cfg.HasSoftwareZPK() {
		z, err := zpkFrom(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin simulate: %v\n", err)
			return 1
		}
		opts.ZPK = z
	}
	r, err := simrun.Start(opts)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin simulate: %v\n", err)
		return 1
	}
	defer r.Close()
	fmt.Fprintf(out, "card host:  IVRPIN_NI_URL=%s  bank_id %s  ZPK %s\n", r.CardHostURL, r.BankID, r.ZPK.Describe())
	fmt.Fprintf(out, "KeySecure:  IVRPIN_KEYSECURE_URL=%s  apiSecret KCV %s\n", r.KeySecureURL, r.APISecret.KCV())
	if !cfg.HasSoftwareZPK() || cfg.KeySecureAPISecret == "" {
		fmt.Fprintf(out, "(keys were generated for this run: set IVRPIN_NI_ZPK and IVRPIN_KEYSECURE_API_SECRET for both sides to share them)\n")
	}
	fmt.Fprintf(out, "faults:     POST {\"kind\":\"delay|status|reset|malformed|wrong_msg_id|redirect\",...} to /_sim/fault on either\n\n")
	fmt.Fprintf(out, "Test cards (test data from public test ranges, not cardholder data):\n")
	fmt.Fprintf(out, "%-20s %-6s %-4s %-9s %-5s %-10s %-20s %-14s %s\n", "PAN", "expiry", "seq", "PIN", "code", "card host", "KeySecure", "card_no", "path")
	for _, c := range sim.TestCards {
		pin := c.PIN
		if pin == "" {
			pin = "(none)"
		}
		fmt.Fprintf(out, "%-20s %-6s %-4s %-9s %-5s %-10s %-20s %-14s %s\n", c.PAN, c.Expiry, c.SeqNo, pin, c.CVV, c.CardHost, c.KeySecure, c.CardNo, c.Path)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	return 0
}

func zpkFrom(cfg *config.Config) (*pinblock.ZPK, error) {
	k, err := cfg.ZPK()
	if err != nil {
		return nil, err
	}
	f, err := pinblock.ParseFormat(cfg.NIPINBlockFormat)
	if err != nil {
		return nil, err
	}
	return pinblock.NewZPK(k, f)
}
