// Package softhsmtest gives a test a PKCS#11 token of its own: Debian's
// SoftHSM2, standing in for the bank's HSM, with its token directory in the
// test's temporary directory. Without SoftHSM2 the test skips, unless
// CI=true (.ci/run installs it), where it fails.
package softhsmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
)

// Modules are where Debian and other distributions put SoftHSM2's module.
var Modules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// Token is an initialised SoftHSM2 token.
type Token struct {
	Module   string // PKCS#11 library path
	Label    string // token label
	PIN      string // user PIN
	SOPIN    string
	Dir      string // the token directory
	ConfPath string // SOFTHSM2_CONF
	Env      []string
}

// Module finds SoftHSM2's module, or skips (fails under CI=true).
func Module(t testing.TB) string {
	t.Helper()
	if m := os.Getenv("IVRPIN_TEST_SOFTHSM_MODULE"); m != "" {
		return m
	}
	for _, m := range Modules {
		if _, err := os.Stat(m); err == nil {
			return m
		}
	}
	testkit.Missing(t, "SoftHSM2's PKCS#11 module", "softhsm2")
	return ""
}

// New initialises a token labelled label in a directory of the test's own
// and points this process's SOFTHSM2_CONF at it (t.Setenv: the test may not
// be parallel). Env carries the same setting for child processes.
func New(t testing.TB, label string) *Token {
	t.Helper()
	mod := Module(t)
	util := testkit.Program(t, "softhsm2-util", "softhsm2")
	root := t.TempDir()
	tok := &Token{Module: mod, Label: label, PIN: "ivr-pin-user-pin-1", SOPIN: "ivr-pin-so-pin-1",
		Dir: filepath.Join(root, "tokens"), ConfPath: filepath.Join(root, "softhsm2.conf")}
	if err := os.MkdirAll(tok.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := "directories.tokendir = " + tok.Dir + "/\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(tok.ConfPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	tok.Env = []string{"SOFTHSM2_CONF=" + tok.ConfPath}
	if st, ok := t.(interface{ Setenv(string, string) }); ok {
		st.Setenv("SOFTHSM2_CONF", tok.ConfPath)
	}
	cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--so-pin", tok.SOPIN, "--pin", tok.PIN)
	cmd.Env = append(os.Environ(), tok.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return tok
}

// Unplug moves the token directory away, as a token pulled from its slot
// (SoftHSM2 then fails every use of the key); Plug puts it back.
func (tok *Token) Unplug(t testing.TB) {
	t.Helper()
	if err := os.Rename(tok.Dir, tok.Dir+".away"); err != nil {
		t.Fatal(err)
	}
}

// Plug puts an unplugged token back.
func (tok *Token) Plug(t testing.TB) {
	t.Helper()
	if err := os.Rename(tok.Dir+".away", tok.Dir); err != nil {
		t.Fatal(err)
	}
}
