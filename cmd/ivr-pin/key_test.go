package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/softhsmtest"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

// Two custodians' components of the ANSI test key 0123456789ABCDEF
// FEDCBA9876543210 (KCV 08D7B4); the second is the first XOR the key.
const (
	component1 = "1111 1111 1111 1111 2222 2222 2222 2222"
	component2 = "1032547698BADCFEDCFE98BA54761032"
)

func tokenEnv(t *testing.T, st *softhsmtest.Token) {
	t.Setenv("IVRPIN_PKCS11_MODULE", st.Module)
	t.Setenv("IVRPIN_PKCS11_TOKEN_LABEL", st.Label)
	t.Setenv("IVRPIN_PKCS11_PIN", st.PIN)
}

func runKey(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"key"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// The ceremony puts a key into the token from two components, prints the
// components' KCVs and the key's, and sets the attributes a zone PIN key
// must have; a console call on that key changes a PIN that the card host's
// own copy of the key decodes.
func TestKeyCeremonyAndAConsoleCallOnTheToken(t *testing.T) {
	st := softhsmtest.New(t, "ivr-pin-ceremony")
	tokenEnv(t, st)
	k1, _ := secret.ParseHexKey(secret.TDES, component1)
	k2, _ := secret.ParseHexKey(secret.TDES, component2)
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	t.Setenv("IVRPIN_AUDIT_FILE", auditPath)
	t.Setenv("IVRPIN_AUDIT_KEY_FILE", auditKeyFile(t))
	code, out, errs := runKey(t, "Alice Smith\n"+component1+"\nBob Jones\n"+component2+"\n", "import", "--label", "zpk", "--type", "tdes2", "--components", "2",
		"--kcv", k1.KCV()+","+k2.KCV(), "--lab")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"component 1 of 2 (Alice Smith): KCV " + k1.KCV() + ", as on the form", "component 2 of 2 (Bob Jones): KCV " + k2.KCV(), "tdes2, KCV 08D7B4",
		"Key ceremony", "custodian 1  Alice Smith", "custodian 2  Bob Jones", "the ceremony record is in " + auditPath,
		"CKA_EXTRACTABLE=false", "CKA_SENSITIVE=true", "CKA_PRIVATE=true", "CKA_TOKEN=true", "CKA_DECRYPT=false", "CKA_MODIFIABLE=false",
		"CKA_COPYABLE=false", "IVRPIN_NI_ZPK_LABEL=zpk IVRPIN_NI_ZPK_KCV=08D7B4"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, secretText := range []string{"1111", "1032547698BADCFE", "0123456789ABCDEF", "0123456789abcdef", st.PIN} {
		if strings.Contains(out+errs, secretText) {
			t.Errorf("the ceremony printed %s…", secretText[:4])
		}
	}
	// The audit trail holds the ceremony, chained, with no component.
	rec, _ := os.ReadFile(auditPath)
	for _, want := range []string{`"record":"ceremony"`, `"label":"zpk"`, `"kcv":"08D7B4"`, `{"name":"Alice Smith","kcv":"` + k1.KCV() + `"}`, `"operator":`, `"mac":"`} {
		if !strings.Contains(string(rec), want) {
			t.Errorf("the ceremony record lacks %s:\n%s", want, rec)
		}
	}
	var cout0, cerr0 strings.Builder
	if code := run([]string{"audit", "check", "--key-file", auditKeyFile(t), auditPath}, nil, &cout0, &cerr0); code != 0 {
		t.Errorf("audit check of the ceremony record: %d %s %s", code, cout0.String(), cerr0.String())
	}
	// OpenSC's pkcs11-tool, an independent client, sees the key as
	// sensitive and offers it for encryption only.
	t.Run("pkcs11-tool sees it", func(t *testing.T) {
		tool := testkit.Program(t, "pkcs11-tool", "opensc")
		cmd := exec.Command(tool, "--module", st.Module, "--token-label", st.Label, "--login", "--pin", st.PIN, "--list-objects", "--type", "secrkey")
		cmd.Env = append(cmd.Environ(), st.Env...)
		list, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(list), "label:      zpk") || !strings.Contains(string(list), "Usage:      encrypt\n") ||
			!strings.Contains(string(list), "Access:     sensitive") || strings.Contains(string(list), "extractable") {
			t.Errorf("pkcs11-tool --list-objects: %v\n%s", err, list)
		}
	})

	// check prints the same; a second import under the label is refused.
	if code, out, errs := runKey(t, "", "check", "--label", "zpk"); code != 0 || !strings.Contains(out, "KCV 08D7B4") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runKey(t, "", "import", "--label", "zpk", "--type", "tdes2", "--lab"); code != 1 || !strings.Contains(errs, "--replace") || !strings.Contains(errs, "nothing was asked") {
		t.Fatalf("second import: exit %d %s", code, errs)
	}

	// config shows the key's KCV, computed by the token.
	t.Setenv("IVRPIN_NI_ZPK_LABEL", "zpk")
	t.Setenv("IVRPIN_NI_ZPK_KCV", "08D7B4")
	var cout, cerr bytes.Buffer
	if code := run([]string{"config"}, strings.NewReader(""), &cout, &cerr); code != 0 ||
		!strings.Contains(cout.String(), "# zone PIN key: TDES-128 key KCV 08D7B4 in PKCS#11 token") {
		t.Fatalf("config: exit %d\n%s%s", code, cout.String(), cerr.String())
	}

	// The card host holds its own copy of the key (its HSM's); the line's
	// blocks are made in the token.
	hostKey, _ := secret.ParseHexKey(secret.TDES, "0123456789ABCDEFFEDCBA9876543210")
	hostZPK, _ := pinblock.NewZPK(hostKey, pinblock.ISO0)
	host, err := simrun.Start(simrun.Options{BankID: "TB01", ZPK: hostZPK})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	t.Setenv("IVRPIN_NI_URL", host.CardHostURL)
	t.Setenv("IVRPIN_NI_BANK_ID", "TB01")
	t.Setenv("IVRPIN_NI_ZPK_LABEL", "zpk")
	t.Setenv("IVRPIN_NI_ZPK_KCV", "08D7B4")
	code, out, errs = runConsole(t, "", "--keys", "1 4111111111111111# 1228 7392# 4829# 4829#", "--speed", "0.01")
	if code != 0 || !strings.Contains(out, "Outcome: changed (host cardhost") {
		t.Fatalf("console on the token: exit %d\n%s\n%s", code, out, errs)
	}
	if !host.CardHost.PINIs("4111111111111111", "4829") {
		t.Fatal("the host did not decode the new PIN")
	}
	// The token's key is used whenever a label is set: a KCV that is not
	// the key's stops the console, and without a card host that holds the
	// key the console will not quietly use a simulator's own.
	t.Setenv("IVRPIN_NI_ZPK_KCV", "ABCDEF")
	if code, _, errs := runConsole(t, "", "--keys", "1", "--speed", "0.01"); code != 1 || !strings.Contains(errs, "IVRPIN_NI_ZPK_LABEL") || !strings.Contains(errs, "ABCDEF") {
		t.Fatalf("console with a wrong KCV: exit %d\n%s", code, errs)
	}
	t.Setenv("IVRPIN_NI_ZPK_KCV", "08D7B4")
	t.Setenv("IVRPIN_NI_URL", "")
	if code, _, errs := runConsole(t, "", "--keys", "1", "--speed", "0.01"); code != 1 || !strings.Contains(errs, "IVRPIN_NI_URL") {
		t.Fatalf("console with a token key and no card host: exit %d\n%s", code, errs)
	}
}

func TestKeyImportRefusals(t *testing.T) {
	st := softhsmtest.New(t, "ivr-pin-refusals")
	tokenEnv(t, st)
	kcvOf := func(h string) string { k, _ := secret.ParseHexKey(secret.TDES, h); return k.KCV() }
	kcv1, kcvK1, kcvK2 := kcvOf(component1), kcvOf("0123456789ABCDEF0000000000000000"), kcvOf("00000000000000000123456789ABCDEF")
	cases := []struct {
		name, stdin string
		args        []string
		code        int
		want        string
	}{
		{"wrong KCV", "A\n" + component1 + "\nB\n" + component2 + "\n", []string{"--kcv", "000000,111111"}, 1, "not the 000000"},
		{"wrong KCV typed", "A\n" + component1 + "\n000000\n", nil, 1, "not the 000000 on its custodian's form"},
		{"short component", "A\n0123\n", nil, 1, "2 bytes; a tdes2 component is 16 bytes"},
		{"not hex", "A\n0123456789ABCDEFFEDCBA987654321G\n", nil, 1, "not valid hexadecimal"},
		{"zero component", "A\n" + strings.Repeat("0", 32) + "\n", nil, 1, "all zeros"},
		{"equal components", "A\n" + component1 + "\nB\n" + component1 + "\n", []string{"--kcv", kcv1 + "," + kcv1}, 1, "all zeros"},
		{"K1 = K2", "A\n0123456789ABCDEF0000000000000000\nB\n00000000000000000123456789ABCDEF\n", []string{"--kcv", kcvK1 + "," + kcvK2}, 1, "equal halves"},
		{"one custodian twice", "Alice\n" + component1 + "\n" + kcv1 + "\nalice\n", nil, 1, "alice has given a component already"},
		{"no name", "\n", nil, 1, "a custodian gives their name"},
		{"missing component", "A\n" + component1 + "\n" + kcv1 + "\nB\n", nil, 1, "no more input"},
		{"a pipe outside a lab", "A\n" + component1 + "\n", []string{"--lab=false"}, 2, "a pipe is for a lab: --lab"},
		{"bad type", "", []string{"--type", "des"}, 2, "unknown key type"},
		{"three components", "", []string{"--components", "4"}, 2, "2 or 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"import", "--label", "zpk-" + strings.ReplaceAll(c.name, " ", "-"), "--type", "tdes2", "--lab"}, c.args...)
			code, out, errs := runKey(t, c.stdin, args...)
			if code != c.code || !strings.Contains(errs, c.want) {
				t.Fatalf("exit %d, want %d with %q\n%s%s", code, c.code, c.want, out, errs)
			}
			if strings.Contains(out+errs, "0123456789ABCDEF") || strings.Contains(out+errs, "1111 1111") {
				t.Fatal("a component was echoed")
			}
		})
	}
	if code, _, errs := runKey(t, "", "check", "--label", "no-such-key"); code != 1 || !strings.Contains(errs, "no secret key") {
		t.Fatalf("check of a missing key: %d %s", code, errs)
	}
	t.Setenv("IVRPIN_PKCS11_MODULE", "")
	if code, _, errs := runKey(t, "", "check", "--label", "zpk"); code != 1 || !strings.Contains(errs, "IVRPIN_PKCS11_MODULE") {
		t.Fatalf("no module: %d %s", code, errs)
	}
	if code, out, _ := runKey(t, "", "--help"); code != 0 || !strings.Contains(out, "key import") {
		t.Fatal("key --help")
	}
}

// A generated lab key is a new 0600 file, never printed, that serve's
// configuration accepts (odd parity, not weak).
func TestKeyGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zpk")
	code, out, errs := runKey(t, "", "generate", "--type", "tdes2", "--out", path)
	if code != 0 || !strings.Contains(out, "KCV ") {
		t.Fatalf("exit %d %s%s", code, out, errs)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", st, err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(out, strings.TrimSpace(string(b))) {
		t.Fatal("the key was printed")
	}
	t.Setenv("IVRPIN_NI_ZPK_FILE", path)
	var cout, cerr bytes.Buffer
	if code := run([]string{"config"}, strings.NewReader(""), &cout, &cerr); code != 0 || !strings.Contains(cout.String(), "IVRPIN_NI_ZPK=<set from IVRPIN_NI_ZPK_FILE, KCV ") {
		t.Fatalf("config on the generated key: exit %d\n%s%s", code, cout.String(), cerr.String())
	}
	if code, _, errs := runKey(t, "", "generate", "--out", path); code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("overwrote an existing file: %d %s", code, errs)
	}
}

// A CGO_ENABLED=0 build still builds, runs on a software key, and refuses a
// key in a token, saying why.
func TestNoCgoBuildRefusesATokenKeyByName(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "ivr-pin-nocgo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 build: %v\n%s", err, out)
	}
	module := filepath.Join(t.TempDir(), "module.so")
	_ = os.WriteFile(module, nil, 0o600)
	cmd := exec.Command(bin, "config")
	cmd.Env = append(os.Environ(), "IVRPIN_NI_ZPK_LABEL=zpk", "IVRPIN_NI_ZPK_KCV=08D7B4", "IVRPIN_PKCS11_MODULE="+module, "IVRPIN_PKCS11_TOKEN_LABEL=t", "IVRPIN_PKCS11_PIN=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "CGO_ENABLED=0") {
		t.Fatalf("no-cgo build with a token key: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "config")
	cmd.Env = append(os.Environ(), "IVRPIN_NI_ZPK=0123456789ABCDEFFEDCBA9876543210")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "KCV 08D7B4") {
		t.Fatalf("no-cgo build with a software key: %v\n%s", err, out)
	}
}

// KeySecure's apiSecret in the token: imported by the same ceremony with
// --purpose keysecure (an AES key that encrypts and decrypts, nothing
// more), checked for that purpose, and used by a first PIN setup whose
// KeySecure decodes the PIN and whose card data the token decrypts.
func TestKeySecureSecretInTheToken(t *testing.T) {
	st := softhsmtest.New(t, "ivr-pin-keysecure")
	tokenEnv(t, st)
	const apiSecret = "ks-secret-0A1b2C" // the merchant's, 16 bytes
	c1 := "00112233445566778899AABBCCDDEEFF"
	raw, _ := hex.DecodeString(c1)
	for i := range raw {
		raw[i] ^= apiSecret[i]
	}
	c2 := hex.EncodeToString(raw)
	kcv := func(h string) string { k, _ := secret.ParseHexKey(secret.AES, h); return k.KCV() }
	code, out, errs := runKey(t, "Alice\n"+c1+"\nBob\n"+c2+"\n", "import", "--label", "ks", "--type", "aes128", "--components", "2",
		"--purpose", "keysecure", "--kcv", kcv(c1)+","+kcv(c2), "--lab")
	if code != 0 || !strings.Contains(out, "CKA_DECRYPT=true") || !strings.Contains(out, "CKA_SIGN=false") || !strings.Contains(out, "IVRPIN_KEYSECURE_KEY_LABEL=ks IVRPIN_KEYSECURE_KEY_KCV=") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	ksKCV := out[strings.Index(out, "IVRPIN_KEYSECURE_KEY_KCV=")+len("IVRPIN_KEYSECURE_KEY_KCV=") : strings.Index(out, "IVRPIN_KEYSECURE_KEY_KCV=")+len("IVRPIN_KEYSECURE_KEY_KCV=")+6]
	if code, _, errs := runKey(t, "", "check", "--label", "ks", "--purpose", "keysecure"); code != 0 {
		t.Fatalf("check for KeySecure: %d %s", code, errs)
	}
	if code, _, errs := runKey(t, "", "check", "--label", "ks"); code != 1 || !strings.Contains(errs, "CKA_DECRYPT is true") {
		t.Fatalf("the same key as a zone PIN key: %d %s", code, errs)
	}
	if code, _, errs := runKey(t, "Alice\n"+c1+"\n", "import", "--label", "ks2", "--type", "tdes2", "--purpose", "keysecure", "--lab"); code != 2 || !strings.Contains(errs, "AES") {
		t.Fatalf("a TDES KeySecure key: %d %s", code, errs)
	}

	host, err := simrun.Start(simrun.Options{BankID: "TB01", APIKey: "test-api-key", APISecret: apiSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	t.Setenv("IVRPIN_KEYSECURE_URL", host.KeySecureURL)
	t.Setenv("IVRPIN_KEYSECURE_API_KEY", "test-api-key")
	t.Setenv("IVRPIN_KEYSECURE_KEY_LABEL", "ks")
	t.Setenv("IVRPIN_KEYSECURE_KEY_KCV", ksKCV)
	code, out, errs = runConsole(t, "2 4012888888881881# 0130 731 482915# 482915#\n", "--speed", "0.01")
	if code != 0 || !strings.Contains(out, "Outcome: changed (host keysecure") {
		t.Fatalf("first setup with the apiSecret in the token: exit %d\n%s\n%s", code, out, errs)
	}
	t.Setenv("IVRPIN_KEYSECURE_KEY_KCV", "ABCDEF")
	if code, _, errs := runConsole(t, "", "--keys", "2", "--speed", "0.01"); code != 1 || !strings.Contains(errs, "IVRPIN_KEYSECURE_KEY_LABEL") || !strings.Contains(errs, "ABCDEF") {
		t.Fatalf("a wrong KCV: exit %d\n%s", code, errs)
	}
}

// The audit chain's key in the token: imported by the ceremony with
// --purpose audit (an HMAC key that signs and does nothing else), it
// chains a call's records and `audit check` verifies them through the
// token; a key that could encrypt is refused as the audit key by name.
func TestAuditKeyInTheToken(t *testing.T) {
	st := softhsmtest.New(t, "ivr-pin-audit-key")
	tokenEnv(t, st)
	c1, c2 := strings.Repeat("1F2E3D4C", 8), strings.Repeat("A0B1C2D3", 8)
	kcv := func(h string) string {
		raw, _ := hex.DecodeString(h)
		k, _ := secret.HMACKCV(func(d []byte) ([]byte, error) { return audit.SoftwareKey(raw).Sum(d) })
		return k
	}
	code, out, errs := runKey(t, "Alice\n"+c1+"\nBob\n"+c2+"\n", "import", "--label", "audit", "--type", "hmac256", "--components", "2",
		"--purpose", "audit", "--kcv", kcv(c1)+","+kcv(c2), "--lab")
	if code != 0 || !strings.Contains(out, "CKA_SIGN=true") || !strings.Contains(out, "CKA_ENCRYPT=false") || !strings.Contains(out, "IVRPIN_AUDIT_KEY_LABEL=audit IVRPIN_AUDIT_KEY_KCV=") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	i := strings.Index(out, "IVRPIN_AUDIT_KEY_KCV=") + len("IVRPIN_AUDIT_KEY_KCV=")
	auditKCV := out[i : i+6]
	if code, _, errs := runKey(t, "", "check", "--label", "audit", "--purpose", "audit"); code != 0 {
		t.Fatalf("check for the audit: %d %s", code, errs)
	}
	if code, _, errs := runKey(t, "A\n"+component1+"\nB\n"+component2+"\n", "import", "--label", "zpk", "--type", "tdes2", "--lab",
		"--kcv", kcvOfTDES(component1)+","+kcvOfTDES(component2)); code != 0 {
		t.Fatalf("a zone PIN key: %d %s", code, errs)
	}

	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	t.Setenv("IVRPIN_AUDIT_FILE", auditPath)
	t.Setenv("IVRPIN_AUDIT_KEY_LABEL", "audit")
	t.Setenv("IVRPIN_AUDIT_KEY_KCV", auditKCV)
	if code, out, errs := runConsole(t, "", "--keys", "1 4111111111111111# 1228 7392# 4829# 4829#", "--speed", "0.01"); code != 0 {
		t.Fatalf("a call chained by the token's key: exit %d\n%s\n%s", code, out, errs)
	}
	var cout, cerr strings.Builder
	if code := run([]string{"audit", "check", auditPath}, nil, &cout, &cerr); code != 0 || !strings.Contains(cout.String(), "the chain verifies") {
		t.Fatalf("audit check through the token: %d\n%s%s", code, cout.String(), cerr.String())
	}
	b, _ := os.ReadFile(auditPath)
	if err := os.WriteFile(auditPath, []byte(strings.Replace(string(b), `"outcome":"changed"`, `"outcome":"rejected"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cout.Reset()
	if code := run([]string{"audit", "check", auditPath}, nil, &cout, &cerr); code != 1 || !strings.Contains(cout.String(), "altered") {
		t.Fatalf("a changed record through the token: %d\n%s", code, cout.String())
	}
	t.Setenv("IVRPIN_AUDIT_KEY_LABEL", "zpk")
	t.Setenv("IVRPIN_AUDIT_KEY_KCV", "08D7B4")
	if code, _, errs := runConsole(t, "", "--keys", "1", "--speed", "0.01"); code != 1 || !strings.Contains(errs, "IVRPIN_AUDIT_KEY_LABEL") || !strings.Contains(errs, "not an HMAC key") {
		t.Fatalf("a cipher key as the audit key: exit %d\n%s", code, errs)
	}
}

func kcvOfTDES(h string) string { k, _ := secret.ParseHexKey(secret.TDES, h); return k.KCV() }
