package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/term"

	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/harden"
	"github.com/ivr-pin/ivr-pin/internal/line"
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// keyProgram is `ivr-pin key`'s verbs.
func keyProgram() cli.Program {
	return cli.Program{Name: "ivr-pin key", Intro: `The zone PIN key's ceremony, on the PKCS#11 token named by IVRPIN_PKCS11_MODULE,
IVRPIN_PKCS11_TOKEN_LABEL and IVRPIN_PKCS11_PIN (or IVRPIN_PKCS11_PIN_FILE).`,
		Verbs: []cli.Verb{
			{Name: "import", Synopsis: "--label L --type tdes2|tdes3|aes128|aes192|aes256 --components 2|3 [--kcv K1,K2[,K3]] [--replace]",
				Summary: `reads each key custodian's component (hex; not echoed on a terminal,
one line each from a pipe), prints each component's KCV to compare with
the custodian's form, combines them by XOR (odd parity for DES), refuses a
weak key, and creates it in the token: private, sensitive, never
extractable, encrypt only, neither modifiable nor copyable.`,
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
// setting.
func openKeyToken(stderr io.Writer) (*hsm.Token, bool) {
	cfg, ok := loadConfig(stderr)
	if !ok {
		return nil, false
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
		return nil, false
	}
	tok, err := line.OpenToken(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin key: %v\n", err)
		return nil, false
	}
	return tok, true
}

func keyImport(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin key import", flag.ContinueOnError)
	label := fs.String("label", "", "CKA_LABEL of the new key (serve's IVRPIN_NI_ZPK_LABEL)")
	typName := fs.String("type", "", "tdes2, tdes3, aes128, aes192 or aes256")
	n := fs.Int("components", 2, "how many custodians' components make the key: 2 or 3")
	kcvs := fs.String("kcv", "", "each component's KCV from the custodians' forms, comma separated: a component whose KCV differs is refused")
	replace := fs.Bool("replace", false, "put the new key in place of an existing key with the label")
	if code, done := parseFlags(fs, args, "Imports a zone PIN key into the PKCS#11 token from key custodians' components.", stdout, stderr); done {
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
	var want []string
	if *kcvs != "" {
		want = strings.Split(strings.ToUpper(strings.ReplaceAll(*kcvs, " ", "")), ",")
		if len(want) != *n {
			fmt.Fprintf(stderr, "ivr-pin key import: --kcv has %d values for %d components\n", len(want), *n)
			return 2
		}
	}
	// Components are about to be in this process's memory.
	if _, err := harden.Process(); err != nil {
		fmt.Fprintf(stderr, "ivr-pin key import: warning: %v\n", err)
	}
	tok, ok := openKeyToken(stderr)
	if !ok {
		return 1
	}
	defer tok.Close()

	combined := make([]byte, typ.Len())
	defer secret.Zero(combined)
	read := componentReader(stdin, stderr)
	for i := 1; i <= *n; i++ {
		comp, err := read(fmt.Sprintf("Component %d of %d (hex, %d bytes): ", i, *n, typ.Len()))
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin key import: component %d: %v\n", i, err)
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
			fmt.Fprintf(stderr, "ivr-pin key import: component %d: %v\n", i, err)
			return 1
		}
		fmt.Fprintf(stdout, "component %d of %d: KCV %s\n", i, *n, kcv)
		if want != nil && want[i-1] != kcv {
			fmt.Fprintf(stderr, "ivr-pin key import: component %d has KCV %s, not the %s on its custodian's form: nothing was imported\n", i, kcv, want[i-1])
			return 1
		}
	}
	// Zeros first: odd parity would turn them into a key of 0x01 bytes.
	if w := secret.Weakness(secret.AES, combined); w != "" {
		fmt.Fprintf(stderr, "ivr-pin key import: the combined key %s (the components cancel out): nothing was imported\n", w)
		return 1
	}
	if typ.Algorithm() == secret.TDES {
		secret.SetOddParity(combined)
	}
	if w := secret.Weakness(typ.Algorithm(), combined); w != "" {
		fmt.Fprintf(stderr, "ivr-pin key import: the combined key %s: nothing was imported\n", w)
		return 1
	}
	info, err := tok.Import(*label, typ, combined, *replace)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin key import: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "key %q imported into %s: %s, KCV %s\n", info.Label, tok.Describe(), info.Type, info.KCV)
	printAttributes(stdout, info)
	fmt.Fprintf(stdout, "serve: IVRPIN_NI_ZPK_LABEL=%s IVRPIN_NI_ZPK_KCV=%s\n", info.Label, info.KCV)
	return 0
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
	k, err := secret.NewKey(typ.Algorithm(), comp)
	if err != nil {
		return "", err
	}
	return k.KCV(), nil
}

// componentReader reads one component at a time: without echo from a
// terminal, else one hex line from the pipe, a byte at a time so no buffer
// holds the next custodian's component. The result is decoded and the
// hex wiped; the caller wipes the result.
func componentReader(stdin io.Reader, stderr io.Writer) func(prompt string) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return func(prompt string) ([]byte, error) {
			fmt.Fprint(stderr, prompt)
			line, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			if err != nil {
				return nil, err
			}
			defer secret.Zero(line)
			return secret.DecodeHex(line)
		}
	}
	return func(string) ([]byte, error) {
		line := make([]byte, 0, 128)
		defer func() { secret.Zero(line[:cap(line)]) }()
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
					return nil, errors.New("no more input")
				}
				break
			}
			if err != nil {
				return nil, err
			}
		}
		one[0] = 0
		return secret.DecodeHex(line)
	}
}

func keyCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin key check", flag.ContinueOnError)
	label := fs.String("label", "", "CKA_LABEL of the key")
	if code, done := parseFlags(fs, args, "Prints a key's type, attributes and KCV; exits 1 if serve would refuse it.", stdout, stderr); done {
		return code
	}
	if *label == "" {
		fmt.Fprintln(stderr, "ivr-pin key check: --label is required")
		return 2
	}
	tok, ok := openKeyToken(stderr)
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
	if p := info.Problem(); p != "" {
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
