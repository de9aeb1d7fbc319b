package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/harden"
	"github.com/ivr-pin/ivr-pin/internal/line"
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// purposes are the --purpose names of what a key in the token is for.
var purposes = map[string]hsm.Purpose{"zpk": hsm.PINBlocks, "keysecure": hsm.KeySecureSecret, "audit": hsm.AuditMAC}

// keyProgram is `ivr-pin key`'s verbs.
func keyProgram() cli.Program {
	return cli.Program{Name: "ivr-pin key", Intro: `The zone PIN key's ceremony, on the PKCS#11 token named by IVRPIN_PKCS11_MODULE,
IVRPIN_PKCS11_TOKEN_LABEL and IVRPIN_PKCS11_PIN (or IVRPIN_PKCS11_PIN_FILE).`,
		Verbs: []cli.Verb{
			{Name: "import", Synopsis: "--label L --type tdes2|tdes3|aes128|aes192|aes256 --components 2|3 [--kcv K1,K2[,K3]] [--replace] [--lab]",
				Summary: `the key ceremony, under dual control: checks the label first, then asks each
key custodian in turn for their name, their component (hex, not echoed) and
its KCV from their form (or --kcv), refusing a mismatch; combines the
components by XOR (odd parity for DES), refuses a weak key, and creates it
in the token: private, sensitive, never extractable, encrypt only, neither
modifiable nor copyable. Prints a summary for the paper form and writes a
ceremony record to the audit trail (IVRPIN_AUDIT_FILE). Components come
from a terminal; a pipe only with --lab.`,
				Run: func(a []string, s cli.IO) int { return keyImport(a, s.Stdin, s.Stdout, s.Stderr) }},
			{Name: "check", Synopsis: "--label L", Summary: "prints a key's type, attributes and KCV (computed by the token).",
				Run: func(a []string, s cli.IO) int { return keyCheck(a, s.Stdout, s.Stderr) }},
			{Name: "generate", Synopsis: "--type T --out FILE", Summary: `writes a fresh random software key (hex, odd parity for DES) to a new
0600 file, for a lab's IVRPIN_NI_ZPK_FILE and its simulator; prints its KCV.`,
				Run: func(a []string, s cli.IO) int { return keyGenerate(a, s.Stdout, s.Stderr) }},
		},
		Outro: "docs/operations.md describes the ceremony."}
}

// key runs the key ceremony verbs.
func key(args []string, std cli.IO) int { return keyProgram().Run(args, std) }

// openKeyToken opens the token the environment names, naming each missing
// setting; the configuration comes with it.
func openKeyToken(stderr io.Writer) (*hsm.Token, *config.Config, bool) {
	cfg, ok := loadConfig(stderr)
	if !ok {
		return nil, nil, false
	}
	var missing []string
	for _, s := range []struct{ name, value string }{{"IVRPIN_PKCS11_MODULE", cfg.PKCS11Module},
		{"IVRPIN_PKCS11_TOKEN_LABEL", cfg.PKCS11TokenLabel}, {"IVRPIN_PKCS11_PIN (or _FILE)", cfg.PKCS11PIN}} {
		if s.value == "" {
			missing = append(missing, s.name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "ivr-pin key: set %s: the token that holds the key\n", strings.Join(missing, ", "))
		return nil, nil, false
	}
	tok, err := line.OpenToken(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin key: %v\n", err)
		return nil, nil, false
	}
	return tok, cfg, true
}

// ceremonyInput is where the custodians type: a terminal, or (--lab) a
// pipe giving each custodian's name, component and (without --kcv) KCV
// one line each.
type ceremonyInput struct {
	secret func(prompt string) ([]byte, error) // a component: not echoed
	plain  func(prompt string) (string, error) // a name, a KCV
}

func keyImport(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin key import", flag.ContinueOnError)
	label := fs.String("label", "", "CKA_LABEL of the new key (serve's IVRPIN_NI_ZPK_LABEL)")
	typName := fs.String("type", "", "tdes2, tdes3, aes128, aes192 or aes256")
	n := fs.Int("components", 2, "how many custodians' components make the key: 2 or 3")
	kcvs := fs.String("kcv", "", "each component's KCV from the custodians' forms, comma separated (else each custodian types theirs): a component whose KCV differs is refused")
	replace := fs.Bool("replace", false, "put the new key in place of an existing key with the label")
	lab := fs.Bool("lab", false, "a lab: names, components and KCVs may come from a pipe, one line each")
	purposeName := fs.String("purpose", "zpk", "zpk (the zone PIN key: encrypts only), keysecure (KeySecure's apiSecret, its bytes in hex: AES, encrypts and decrypts) or audit (the audit chain's key: --type hmac256, signs only)")
	if code, done := parseFlags(fs, args, "Imports a zone PIN key into the PKCS#11 token from key custodians' components, under dual control.", stdout, stderr); done {
		return code
	}
	typ, err := hsm.ParseKeyType(*typName)
	if err != nil || *label == "" || (*n != 2 && *n != 3) {
		switch {
		case *label == "":
			fmt.Fprintln(stderr, "ivr-pin key import: --label is required")
		case err != nil:
			fmt.Fprintf(stderr, "ivr-pin key import: --type: %v\n", err)
		default:
			fmt.Fprintln(stderr, "ivr-pin key import: --components must be 2 or 3")
		}
		return 2
	}
	purpose, ok := purposes[*purposeName]
	if !ok || (purpose == hsm.KeySecureSecret && (typ.IsHMAC() || typ.Algorithm() != secret.AES)) || (purpose == hsm.AuditMAC) != typ.IsHMAC() {
		fmt.Fprintln(stderr, "ivr-pin key import: --purpose is zpk (a TDES or AES --type), keysecure (an AES --type: KeySecure's apiSecret is 16, 24 or 32 bytes) or audit (--type hmac256)")
		return 2
	}
	var want []string
	if *kcvs != "" {
		want = strings.Split(strings.ToUpper(strings.ReplaceAll(*kcvs, " ", "")), ",")
		if len(want) != *n {
			fmt.Fprintf(stderr, "ivr-pin key import: --kcv has %d values for %d components\n", len(want), *n)
			return 2
		}
	}
	in, terminal := ceremonyReader(stdin, stderr)
	if !terminal && !*lab {
		fmt.Fprintln(stderr, "ivr-pin key import: components come from a terminal, each custodian typing their own unseen: standard input is not one (a pipe is for a lab: --lab)")
		return 2
	}
	// Components are about to be in this process's memory.
	if _, err := harden.Process(); err != nil {
		fmt.Fprintf(stderr, "ivr-pin key import: warning: %v\n", err)
	}
	tok, cfg, opened := openKeyToken(stderr)
	if !opened {
		return 1
	}
	defer tok.Close()
	// The label before anyone types: a ceremony must not end refused.
	_, err = tok.Inspect(*label)
	switch {
	case err == nil && !*replace:
		fmt.Fprintf(stderr, "ivr-pin key import: the token already has a key labelled %q: choose a new label, or --replace to put the new key in its place (nothing was asked)\n", *label)
		return 1
	case err != nil && !errors.Is(err, hsm.ErrNoKey):
		fmt.Fprintf(stderr, "ivr-pin key import: %v\n", err)
		return 1
	}
	var auditKey audit.MACKey
	if cfg.AuditKeyLabel != "" {
		ak, err := tok.AuditKey(cfg.AuditKeyLabel, cfg.AuditKeyKCV)
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin key import: IVRPIN_AUDIT_KEY_LABEL: %v (nothing was asked)\n", err)
			return 1
		}
		auditKey = ak
	} else {
		raw, err := cfg.AuditKeyBytes()
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin key import: %v\n", err)
			return 1
		}
		auditKey = audit.KeyOf(raw)
	}
	if cfg.AuditFile == "" {
		fmt.Fprintln(stderr, "ivr-pin key import: warning: IVRPIN_AUDIT_FILE is not set: the ceremony is recorded on this screen only (copy the summary to the form)")
	}

	combined := make([]byte, typ.Len())
	defer secret.Zero(combined)
	custodians := make([]audit.Custodian, 0, *n)
	for i := 1; i <= *n; i++ {
		name, err := in.plain(fmt.Sprintf("Custodian %d of %d, your name: ", i, *n))
		if err == nil && name == "" {
			err = errors.New("a custodian gives their name")
		}
		for _, c := range custodians {
			if err == nil && strings.EqualFold(c.Name, name) {
				err = fmt.Errorf("%s has given a component already: each component is another custodian's", name)
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin key import: custodian %d: %v: nothing was imported\n", i, err)
			return 1
		}
		comp, err := in.secret(fmt.Sprintf("%s, your component (hex, %d bytes; not shown): ", name, typ.Len()))
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin key import: component %d: %v: nothing was imported\n", i, err)
			return 1
		}
		kcv, err := componentKCV(typ, comp)
		if err == nil {
			for j := range combined {
				combined[j] ^= comp[j]
			}
		}
		secret.Zero(comp)
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin key import: component %d: %v: nothing was imported\n", i, err)
			return 1
		}
		form := ""
		if want != nil {
			form = want[i-1]
		} else if form, err = in.plain(fmt.Sprintf("%s, the KCV on your form: ", name)); err != nil {
			fmt.Fprintf(stderr, "ivr-pin key import: component %d's KCV: %v: nothing was imported\n", i, err)
			return 1
		}
		if form = strings.ToUpper(strings.ReplaceAll(form, " ", "")); form != kcv {
			fmt.Fprintf(stderr, "ivr-pin key import: component %d has KCV %s, not the %s on its custodian's form: nothing was imported\n", i, kcv, form)
			return 1
		}
		fmt.Fprintf(stdout, "component %d of %d (%s): KCV %s, as on the form\n", i, *n, name, kcv)
		custodians = append(custodians, audit.Custodian{Name: name, KCV: kcv})
	}
	// Zeros first: odd parity would turn them into a key of 0x01 bytes.
	if w := secret.Weakness(secret.AES, combined); w != "" {
		fmt.Fprintf(stderr, "ivr-pin key import: the combined key %s (the components cancel out): nothing was imported\n", w)
		return 1
	}
	if !typ.IsHMAC() {
		if typ.Algorithm() == secret.TDES {
			secret.SetOddParity(combined)
		}
		if w := secret.Weakness(typ.Algorithm(), combined); w != "" {
			fmt.Fprintf(stderr, "ivr-pin key import: the combined key %s: nothing was imported\n", w)
			return 1
		}
	}
	info, err := tok.ImportFor(*label, typ, combined, *replace, purpose)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin key import: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "key %q imported into %s: %s, KCV %s\n", info.Label, tok.Describe(), info.Type, info.KCV)
	printAttributes(stdout, info)
	rec := ceremonyRecord(info, custodians, *replace)
	rec.Purpose = *purposeName
	printCeremony(stdout, rec, tok.Describe())
	setting := map[hsm.Purpose]string{hsm.PINBlocks: "NI_ZPK", hsm.KeySecureSecret: "KEYSECURE_KEY", hsm.AuditMAC: "AUDIT_KEY"}[purpose]
	fmt.Fprintf(stdout, "serve: IVRPIN_%s_LABEL=%s IVRPIN_%s_KCV=%s\n", setting, info.Label, setting, info.KCV)
	if cfg.AuditFile != "" {
		if err := audit.AppendEvent(cfg.AuditFile, auditKey, rec); err != nil {
			fmt.Fprintf(stderr, "ivr-pin key import: the key is imported, but the ceremony record was not written (%v): copy the summary to the form and the audit trail by hand\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "the ceremony record is in %s\n", cfg.AuditFile)
	}
	return 0
}

// ceremonyRecord is the audit's record of a key loaded: never a component.
func ceremonyRecord(info hsm.Info, custodians []audit.Custodian, replaced bool) audit.Event {
	host, _ := os.Hostname()
	operator := fmt.Sprintf("uid %d", os.Getuid())
	if u, err := user.Current(); err == nil {
		operator = fmt.Sprintf("%s (uid %s)", u.Username, u.Uid)
	}
	return audit.Event{Kind: audit.KindCeremony, Time: time.Now().UTC(), Label: info.Label, KeyType: string(info.Type), KCV: info.KCV,
		Custodians: custodians, Replaced: replaced, Operator: operator, Host: host}
}

// printCeremony prints the summary the custodians sign on the paper form.
func printCeremony(w io.Writer, e audit.Event, token string) {
	fmt.Fprintf(w, "\nKey ceremony\n  time      %s\n  host      %s\n  operator  %s\n  token     %s\n  key       %q, %s, KCV %s",
		e.Time.Format(time.RFC3339), e.Host, e.Operator, token, e.Label, e.KeyType, e.KCV)
	if e.Replaced {
		fmt.Fprint(w, " (in place of the key that had the label)")
	}
	fmt.Fprintln(w)
	for i, c := range e.Custodians {
		fmt.Fprintf(w, "  custodian %d  %-24s component KCV %s   signature: ____________\n", i+1, c.Name, c.KCV)
	}
	fmt.Fprintln(w)
}

// componentKCV checks a component's length and content and returns its
// KCV (as a key of the type: DES ignores parity, so a component's KCV is
// the one its custodian's form shows).
func componentKCV(typ hsm.KeyType, comp []byte) (string, error) {
	if len(comp) != typ.Len() {
		return "", fmt.Errorf("%d bytes; a %s component is %d bytes (%d hex digits)", len(comp), typ, typ.Len(), 2*typ.Len())
	}
	zero := true
	for _, b := range comp {
		zero = zero && b == 0
	}
	if zero {
		return "", errors.New("all zeros: such a component adds nothing to the key")
	}
	if typ.IsHMAC() {
		return secret.HMACKCV(func(data []byte) ([]byte, error) { return audit.SoftwareKey(comp).Sum(data) })
	}
	k, err := secret.NewKey(typ.Algorithm(), comp)
	if err != nil {
		return "", err
	}
	return k.KCV(), nil
}

// ceremonyReader reads what the custodians type: from a terminal,
// components without echo; from a pipe (a lab), one line each, a byte at a
// time so no buffer holds the next custodian's component. A component is
// decoded and its hex wiped; the caller wipes the result.
func ceremonyReader(stdin io.Reader, stderr io.Writer) (in ceremonyInput, terminal bool) {
	readLine := func() ([]byte, error) {
		line := make([]byte, 0, 128)
		var one [1]byte
		for len(line) < cap(line) {
			n, err := stdin.Read(one[:])
			if n == 1 {
				if one[0] == '\n' {
					break
				}
				line = append(line, one[0])
				continue
			}
			if err == io.EOF {
				if len(line) == 0 {
					return line, errors.New("no more input")
				}
				break
			}
			if err != nil {
				return line, err
			}
		}
		one[0] = 0
		return line, nil
	}
	in.plain = func(prompt string) (string, error) {
		fmt.Fprint(stderr, prompt)
		b, err := readLine()
		return strings.TrimSpace(string(b)), err
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		terminal = true
		in.secret = func(prompt string) ([]byte, error) {
			fmt.Fprint(stderr, prompt)
			line, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			defer secret.Zero(line)
			if err != nil {
				return nil, err
			}
			return secret.DecodeHex(line)
		}
		return in, true
	}
	in.secret = func(string) ([]byte, error) {
		line, err := readLine()
		defer secret.Zero(line[:cap(line)])
		if err != nil {
			return nil, err
		}
		return secret.DecodeHex(line)
	}
	return in, false
}

func keyCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin key check", flag.ContinueOnError)
	label := fs.String("label", "", "CKA_LABEL of the key")
	purposeName := fs.String("purpose", "zpk", "what serve uses the key for: zpk, keysecure or audit")
	if code, done := parseFlags(fs, args, "Prints a key's type, attributes and KCV; exits 1 if serve would refuse it.", stdout, stderr); done {
		return code
	}
	if *label == "" {
		fmt.Fprintln(stderr, "ivr-pin key check: --label is required")
		return 2
	}
	tok, _, ok := openKeyToken(stderr)
	if !ok {
		return 1
	}
	defer tok.Close()
	info, err := tok.Inspect(*label)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin key check: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "key %q in %s: %s, KCV %s\n", info.Label, tok.Describe(), info.Type, info.KCV)
	printAttributes(stdout, info)
	purpose, known := purposes[*purposeName]
	if !known {
		fmt.Fprintln(stderr, "ivr-pin key check: --purpose is zpk, keysecure or audit")
		return 2
	}
	if p := info.ProblemFor(purpose); p != "" {
		fmt.Fprintf(stderr, "ivr-pin key check: serve would refuse this key: %s\n", p)
		return 1
	}
	return 0
}

func printAttributes(w io.Writer, info hsm.Info) {
	names := make([]string, 0, len(info.Attributes))
	for n := range info.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%v", n, info.Attributes[n])
	}
	fmt.Fprintf(w, "attributes: %s\n", strings.Join(parts, " "))
}

// keyGenerate writes a random lab key to a new file only its owner can read.
// The key is never printed: the file is the only copy.
func keyGenerate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin key generate", flag.ContinueOnError)
	typName := fs.String("type", "tdes2", "tdes2, tdes3, aes128, aes192 or aes256")
	out := fs.String("out", "", "the file to create (0600; an existing file is not overwritten)")
	if code, done := parseFlags(fs, args, "Writes a fresh random software zone PIN key for a lab (IVRPIN_NI_ZPK_FILE) to a new 0600 file.\nProduction keys are made in the HSM, or imported into it with `ivr-pin key import`.", stdout, stderr); done {
		return code
	}
	typ, err := hsm.ParseKeyType(*typName)
	if err == nil && typ.IsHMAC() {
		err = errors.New("a lab's audit key is a file of hex: openssl rand -hex 32")
	}
	if err != nil || *out == "" {
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin key generate: --type: %v\n", err)
		} else {
			fmt.Fprintln(stderr, "ivr-pin key generate: --out is required")
		}
		return 2
	}
	raw := make([]byte, typ.Len())
	defer secret.Zero(raw)
	for {
		if _, err := rand.Read(raw); err != nil {
			fmt.Fprintf(stderr, "ivr-pin key generate: %v\n", err)
			return 1
		}
		if typ.Algorithm() == secret.TDES {
			secret.SetOddParity(raw)
		}
		if secret.Weakness(typ.Algorithm(), raw) == "" {
			break
		}
	}
	k, err := secret.NewKey(typ.Algorithm(), raw)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin key generate: %v\n", err)
		return 1
	}
	text := make([]byte, hex.EncodedLen(len(raw))+1)
	defer secret.Zero(text)
	hex.Encode(text, raw)
	text[len(text)-1] = '\n'
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin key generate: %v\n", err)
		return 1
	}
	if _, err := f.Write(text); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "ivr-pin key generate: %v\n", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintf(stderr, "ivr-pin key generate: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "a %s lab key, KCV %s, is in %s (mode 0600): a software key, for labs only\n", typ, k.KCV(), *out)
	return 0
}
