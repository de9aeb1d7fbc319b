package deploy

import (
	"encoding/hex"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/softhsmtest"
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// The unit's SoftHSM2 drop-in holds: a user that is neither root nor the
// token's owner, in the softhsm group as the drop-in makes the service's
// dynamic user, uses the key in a token whose files the group may read
// but not write, and cannot create a key there; without the group it is
// refused, the error naming the files SoftHSM2 could not read.
func TestServiceUserReachesASoftHSMToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if os.Geteuid() != 0 {
		t.Skip("runs ivr-pin as another user: needs root")
	}
	setpriv := testkit.Program(t, "setpriv", "util-linux")
	if _, err := user.LookupGroup("softhsm"); err != nil {
		testkit.Missing(t, "the softhsm group", "softhsm2")
	}
	drop := read(t, "ivr-pin.service.d/softhsm2.conf")
	if !strings.Contains(drop, "SupplementaryGroups=softhsm") || strings.Contains(drop, "ReadWritePaths") {
		t.Fatalf("the drop-in no longer gives the group, read-only:\n%s", drop)
	}
	st := softhsmtest.New(t, "ivr-pin-unit")
	tok, err := hsm.Open(hsm.Config{Module: st.Module, TokenLabel: st.Label, PIN: st.PIN})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	if _, err := tok.Import("zpk", hsm.TDES2, raw, false); err != nil {
		t.Fatal(err)
	}
	tok.Close()
	bin := filepath.Join(t.TempDir(), "ivr-pin")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/ivr-pin").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	pin := filepath.Join(t.TempDir(), "pkcs11-pin")
	if err := os.WriteFile(pin, []byte(st.PIN), 0o400); err != nil {
		t.Fatal(err)
	}
	nobody, _ := user.Lookup("nobody")
	for _, c := range [][]string{
		{"chgrp", "-R", "softhsm", st.Dir, st.ConfPath},
		{"find", st.Dir, "-type", "d", "-exec", "chmod", "2750", "{}", "+"},
		{"find", st.Dir, "-type", "f", "-exec", "chmod", "0640", "{}", "+"},
		{"chmod", "0640", st.ConfPath},
		{"chown", nobody.Uid, pin},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	// The test's directories are 0700: let the other user through them.
	for _, p := range []string{filepath.Dir(st.Dir), filepath.Dir(filepath.Dir(st.Dir)), filepath.Dir(bin), filepath.Dir(filepath.Dir(bin)),
		filepath.Dir(pin), filepath.Dir(filepath.Dir(pin))} {
		_ = os.Chmod(p, 0o755)
	}
	as := func(groups string, args ...string) (string, error) {
		cmd := exec.Command(setpriv, append([]string{"--reuid=nobody", "--regid=nogroup", "--groups=" + groups, "--inh-caps=-all", bin}, args...)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SOFTHSM2_CONF=" + st.ConfPath, "IVRPIN_PKCS11_MODULE=" + st.Module,
			"IVRPIN_PKCS11_TOKEN_LABEL=" + st.Label, "IVRPIN_PKCS11_PIN_FILE=" + pin}
		cmd.Stdin = strings.NewReader("A\n0123456789ABCDEFFEDCBA9876543210\nB\n1111111111111111111111111111111F\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := as("softhsm", "key", "check", "--label", "zpk"); err != nil || !strings.Contains(out, "KCV 08D7B4") {
		t.Fatalf("the service's user with the softhsm group: %v\n%s", err, out)
	}
	k1, _ := secret.ParseHexKey(secret.TDES, "0123456789ABCDEFFEDCBA9876543210")
	k2, _ := secret.ParseHexKey(secret.TDES, "1111111111111111111111111111111F")
	if out, err := as("softhsm", "key", "import", "--label", "zpk2", "--type", "tdes2", "--components", "2", "--lab",
		"--kcv", k1.KCV()+","+k2.KCV()); err == nil || strings.Contains(out, "imported") || !strings.Contains(out, "component 2 of 2") {
		t.Fatalf("the service's user created a key: %v\n%s", err, out)
	}
	if out, err := as("nogroup", "key", "check", "--label", "zpk"); err == nil || !strings.Contains(out, "IVRPIN_PKCS11_MODULE") || !strings.Contains(out, st.ConfPath) {
		t.Fatalf("without the group: %v\n%s", err, out)
	}
}
