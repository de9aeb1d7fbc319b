package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

// simulate runs both host simulators on loopback until interrupted. The keys
// come from the same variables the client reads (IVRPIN_NI_ZPK(_FILE),
// IVRPIN_KEYSECURE_API_SECRET(_FILE)), so one environment serves both sides;
// unset, fresh keys are made and written to 0600 files whose paths the
// printed settings name.
func simulate(args []string, std cli.IO) int {
	out, stderr := std.Stdout, std.Stderr
	fs := flag.NewFlagSet("ivr-pin simulate", flag.ContinueOnError)
	chAddr := fs.String("cardhost", "127.0.0.1:8091", "card host simulator address (loopback)")
	ksAddr := fs.String("keysecure", "127.0.0.1:8092", "KeySecure simulator address (loopback)")
	secretsDir := fs.String("secrets", "", "directory for the secrets made for this run, 0600 files (default: a new directory under $TMPDIR)")
	if code, done := parseFlags(fs, args, "Runs the card-host and KeySecure simulators on loopback until SIGTERM; prints the settings serve\n"+
		"needs to reach them (secrets made for the run written to 0600 files), their test cards (test\n"+
		"data, in full) and how to inject faults, then one line per request answered.", out, stderr); done {
		return code
	}
	cfg, ok := loadConfig(stderr)
	if !ok {
		return 1
	}
	// Both addresses first: nothing is written for a run that cannot start.
	for _, a := range []struct{ flag, addr string }{{"--cardhost", *chAddr}, {"--keysecure", *ksAddr}} {
		ln, err := net.Listen("tcp", a.addr)
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin simulate: cannot listen on %s (%s): %v; give another address with %s ADDR\n", a.addr, a.flag, errors.Unwrap(err), a.flag)
			return 1
		}
		ln.Close()
	}
	made, err := newSimSecrets(*secretsDir, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin simulate: %v\n", err)
		return 1
	}
	opts := simrun.Options{CardHostAddr: *chAddr, KeySecureAddr: *ksAddr, BankID: cfg.NIBankID,
		APIKey: made.apiKey, APISecret: made.apiSecret, RequestLog: out}
	if opts.ZPK, err = made.zpk(cfg); err != nil {
		fmt.Fprintf(stderr, "ivr-pin simulate: %v\n", err)
		return 1
	}
	r, err := simrun.Start(opts)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin simulate: %v\n", err)
		return 1
	}
	defer r.Close()
	fmt.Fprintf(out, "# serve (or check, or console) reaches the simulators with these, as they stand; the secrets are\n")
	fmt.Fprintf(out, "# 0600 files under %s. ARI's settings are yours (docs/asterisk.md).\n", made.dir)
	fmt.Fprintf(out, "export IVRPIN_NI_URL=%s\n", r.CardHostURL)
	fmt.Fprintf(out, "export IVRPIN_NI_BANK_ID=%s\n", r.BankID)
	fmt.Fprintf(out, "%s\n", made.zpkSetting)
	fmt.Fprintf(out, "export IVRPIN_KEYSECURE_URL=%s\n", r.KeySecureURL)
	fmt.Fprintf(out, "%s\n%s\n", made.apiKeySetting, made.apiSecretSetting)
	fmt.Fprintf(out, "export IVRPIN_LIMIT_KEY_FILE=%s\n", made.limitKeyFile)
	fmt.Fprintf(out, "# a lab's attempt store and audit file, beside the secrets (production: /var/lib/ivr-pin):\n")
	fmt.Fprintf(out, "export IVRPIN_LIMIT_STORE=%s\n", filepath.Join(made.dir, "attempts.db"))
	fmt.Fprintf(out, "# a lab: serve takes the software zone PIN key above, or a SoftHSM2 token (never in production):\n")
	fmt.Fprintf(out, "export IVRPIN_LAB=true\n")
	fmt.Fprintf(out, "export IVRPIN_AUDIT_FILE=%s\n", filepath.Join(made.dir, "audit.jsonl"))
	fmt.Fprintf(out, "# zone PIN key %s; KeySecure apiSecret KCV %s\n", r.ZPK.Describe(), r.APISecret.KCV())
	if made.components != nil {
		fmt.Fprintf(out, "# the same key as two custodians' components, for a lab's key ceremony into a token (docs/lab.md):\n")
		for i, c := range made.components {
			fmt.Fprintf(out, "#   component %d: %s (KCV %s)\n", i+1, c.path, c.kcv)
		}
	}
	fmt.Fprintf(out, "# faults: POST {\"kind\":\"delay|status|reset|malformed|wrong_msg_id|redirect\",...} to /_sim/fault on either\n\n")
	fmt.Fprintf(out, "Test cards (test data from public test ranges, not cardholder data; expiry as the host keeps it, YYMM):\n")
	fmt.Fprintf(out, "%-20s %-6s %-4s %-9s %-5s %-10s %-20s %-14s %s\n", "PAN", "expiry", "seq", "PIN", "code", "card host", "KeySecure", "card_no", "path")
	for _, c := range sim.TestCards {
		pin := c.PIN
		if pin == "" {
			pin = "(none)"
		}
		fmt.Fprintf(out, "%-20s %-6s %-4s %-9s %-5s %-10s %-20s %-14s %s\n", c.PAN, c.Expiry, c.SeqNo, pin, c.CVV, c.CardHost, c.KeySecure, c.CardNo, c.Path)
	}
	fmt.Fprintf(out, "\nRequests (card masked, the host's result code):\n")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	return 0
}

// simSecrets are the secrets simulate shares with serve: those given to it
// (by file or environment) are used as they are; the others are made for
// the run and written to 0600 files.
type simSecrets struct {
	dir                            string
	components                     []component // the made key split for a ceremony
	apiKey, apiSecret              string
	zpkHex                         []byte // made for this run; nil when given
	zpkSetting, apiKeySetting      string
	apiSecretSetting, limitKeyFile string
}

func newSimSecrets(dir string, cfg *config.Config) (*simSecrets, error) {
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ivr-pin-simulate-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &simSecrets{dir: dir}
	write := func(name string, b []byte) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, b, 0o600)
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	hexOf := func(b []byte) []byte { return []byte(strings.ToUpper(hex.EncodeToString(b))) }

	switch {
	case cfg.ZPKFile() != "":
		s.zpkSetting = "export IVRPIN_NI_ZPK_FILE=" + cfg.ZPKFile()
	case cfg.HasSoftwareZPK():
		s.zpkSetting = "# IVRPIN_NI_ZPK: the same as simulate's environment"
	default:
		raw := random(16)
		secret.SetOddParity(raw) // as an HSM makes a DES key
		s.zpkHex = hexOf(raw)
		p, err := write("zpk", s.zpkHex)
		if err == nil {
			s.components, err = splitForCeremony(raw, write)
		}
		secret.Zero(raw)
		if err != nil {
			return nil, err
		}
		s.zpkSetting = "export IVRPIN_NI_ZPK_FILE=" + p
	}
	s.apiKey = cfg.KeySecureAPIKey
	if s.apiKey == "" {
		s.apiKey = "sim-" + hex.EncodeToString(random(8))
	}
	p, err := write("keysecure_api_key", []byte(s.apiKey))
	if err != nil {
		return nil, err
	}
	s.apiKeySetting = "export IVRPIN_KEYSECURE_API_KEY_FILE=" + p
	s.apiSecret = cfg.KeySecureAPISecret
	if s.apiSecret == "" {
		s.apiSecret = hex.EncodeToString(random(16)) // 32 characters: AES-256
	}
	if p, err = write("keysecure_api_secret", []byte(s.apiSecret)); err != nil {
		return nil, err
	}
	s.apiSecretSetting = "export IVRPIN_KEYSECURE_API_SECRET_FILE=" + p
	if s.limitKeyFile, err = write("limit_key", []byte(hex.EncodeToString(random(32)))); err != nil {
		return nil, err
	}
	return s, nil
}

// component is one custodian's part of a lab key: its 0600 file (hex) and
// its check value.
type component struct{ path, kcv string }

// splitForCeremony splits a TDES key into two components whose XOR, with
// odd parity, is the key (as `ivr-pin key import` combines them), each
// written to a 0600 file: a lab's key ceremony puts the simulator's key into
// a token from them.
func splitForCeremony(key []byte, write func(name string, b []byte) (string, error)) ([]component, error) {
	c1 := make([]byte, len(key))
	_, _ = rand.Read(c1)
	secret.SetOddParity(c1)
	c2 := make([]byte, len(key))
	for i := range key {
		c2[i] = key[i] ^ c1[i]
	}
	secret.SetOddParity(c2)
	defer secret.Zero(c1)
	defer secret.Zero(c2)
	var out []component
	for i, c := range [][]byte{c1, c2} {
		k, err := secret.NewKey(secret.TDES, c)
		if err != nil {
			return nil, err
		}
		h := []byte(strings.ToUpper(hex.EncodeToString(c)))
		p, err := write(fmt.Sprintf("zpk-component-%d", i+1), append(h, '\n'))
		secret.Zero(h)
		if err != nil {
			return nil, err
		}
		out = append(out, component{path: p, kcv: k.KCV()})
	}
	return out, nil
}

// zpk is the simulated card host's zone PIN key: the one given to
// simulate, or the one made for this run.
func (s *simSecrets) zpk(cfg *config.Config) (*pinblock.ZPK, error) {
	if s.zpkHex == nil {
		return zpkFrom(cfg)
	}
	k, err := secret.ParseHexKeyBytes(secret.TDES, s.zpkHex)
	secret.Zero(s.zpkHex)
	if err != nil {
		return nil, err
	}
	return pinblock.NewZPK(k, pinblock.ISO0)
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
