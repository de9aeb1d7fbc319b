package line_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/demo"
	"github.com/ivr-pin/ivr-pin/internal/line"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/softhsmtest"
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

// The zone PIN key in a SoftHSM2 token, standing in for the bank's HSM:
// PIN blocks made in the token decode to the typed PINs at the card host
// (an independent simulator holding its own copy of the key, as the host's
// HSM does); fifty callers at once all change; a token that goes away
// fails calls closed, says so on /readyz, and is used again without a
// restart when it is back.
func TestZonePINKeyInAToken(t *testing.T) {
	const keyHex = "0123456789ABCDEFFEDCBA9876543210" // KCV 08D7B4
	st := softhsmtest.New(t, "ivr-pin-line")
	tok, err := hsm.Open(hsm.Config{Module: st.Module, TokenLabel: st.Label, PIN: st.PIN})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(keyHex)
	if _, err := tok.Import("zpk", hsm.TDES2, raw, false); err != nil {
		t.Fatal(err)
	}
	tok.Close()

	hostKey, _ := secret.ParseHexKey(secret.TDES, keyHex)
	hostZPK, _ := pinblock.NewZPK(hostKey, pinblock.ISO0)
	host, err := simrun.Start(simrun.Options{BankID: "TB01", ZPK: hostZPK})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()

	old := line.TokenProbeInterval
	line.TokenProbeInterval = 50 * time.Millisecond
	defer func() { line.TokenProbeInterval = old }()
	l := startLine(t, func(c *config.Config) {
		c.FirstDigitTimeout, c.InterDigitTimeout = 8*time.Second, 5*time.Second
		c.NIURL, c.NIBankID = host.CardHostURL, "TB01"
		c.NIZPKLabel, c.NIZPKKCV = "zpk", "08D7B4"
		c.PKCS11Module, c.PKCS11TokenLabel, c.PKCS11PIN, c.PKCS11Sessions = st.Module, st.Label, st.PIN, 4
	}, demo.Options{})
	if l.Line.Token == nil || !strings.Contains(l.Line.PINBlocks, "PKCS#11") || !strings.Contains(l.Line.PINBlocks, "08D7B4") {
		t.Fatalf("the line does not use the token: %q", l.Line.PINBlocks)
	}
	health := httptest.NewServer(l.Line.Health().Handler())
	defer health.Close()
	readyz := func() (int, string) { return getReadyz(t, health.URL) }
	if code, body := readyz(); code != 200 || !strings.Contains(body, `"pin_key":"ready"`) {
		t.Fatalf("/readyz %d %s", code, body)
	}

	// One change: the host's independent decoding finds the typed PINs.
	host.CardHost.AddCard("4111111111111111", "2812", "", "active", "7392")
	if _, rec := l.call(t, aritest.CallOptions{}, change, card, exp, oldPIN, newPIN, newPIN); rec.Outcome != "changed" {
		t.Fatalf("%+v", rec)
	}
	if !host.CardHost.PINIs("4111111111111111", "4829") {
		t.Fatal("the host did not decode the new PIN from the token's block")
	}

	// Fifty callers at once.
	const calls = 50
	pans := make([]string, calls)
	for i := range pans {
		pans[i] = testkit.LuhnPAN(fmt.Sprintf("400000%09d", i))
		host.CardHost.AddCard(pans[i], "2812", "", "active", "7392")
	}
	changeAtOnce(t, l, pans)
	for _, pan := range pans {
		if !host.CardHost.PINIs(pan, "4829") {
			t.Fatalf("card %s…: PIN not changed", pan[:6])
		}
	}

	// The token goes away: the call fails closed.
	sent := len(host.CardHost.Received())
	st.Unplug(t)
	ch, rec := l.call(t, aritest.CallOptions{}, change, card, exp, "4829#", "5938#", "5938#")
	if rec.End != "pin_key_unavailable" || rec.Outcome != "none" || !played(ch, "result-unavailable") {
		t.Fatalf("with the token gone: %+v played %v", rec, ch.Snapshot().Played)
	}
	if n := len(host.CardHost.Received()); n != sent {
		t.Fatalf("%d requests reached the card host without a PIN block", n-sent)
	}
	if code, body := readyz(); code != 503 || !strings.Contains(body, "PIN key token not available") {
		t.Fatalf("/readyz with the token gone: %d %s", code, body)
	}

	// It comes back: no restart.
	st.Plug(t)
	deadline := time.Now().Add(10 * time.Second)
	for l.Line.Token.Ready() != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := readyz(); code != 200 {
		t.Fatalf("/readyz after the token came back: %d %s", code, body)
	}
	if _, rec := l.call(t, aritest.CallOptions{}, change, card, exp, "4829#", "5938#", "5938#"); rec.Outcome != "changed" {
		t.Fatalf("after the token came back: %+v", rec)
	}
	if !host.CardHost.PINIs("4111111111111111", "5938") {
		t.Fatal("the PIN did not change after recovery")
	}
	for _, s := range []string{keyHex, strings.ToLower(keyHex), st.PIN} {
		if strings.Contains(l.logs.String(), s) {
			t.Fatal("a key or the token PIN is in the logs")
		}
	}
	if !strings.Contains(l.logs.String(), "stopped encrypting") || !strings.Contains(l.logs.String(), "encrypts again") {
		t.Error("the token's failure and recovery were not logged")
	}
}

// An audit write that fails is logged and counted, and keeps /readyz at 503
// until a record is written again (here, after the file is reopened where
// the disk has room). A change whose attempt cannot be written is not sent:
// the caller hears "not available" and nothing is changed.
func TestAuditWriteFailureMakesTheLineNotReady(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "audit.jsonl")
	if err := os.Symlink("/dev/full", link); err != nil {
		t.Fatal(err)
	}
	l := startLine(t, func(c *config.Config) { c.AuditFile = link }, demo.Options{})
	health := httptest.NewServer(l.Line.Health().Handler())
	defer health.Close()
	readyz := func() (int, string) { return getReadyz(t, health.URL) }
	ch, rec := l.call(t, aritest.CallOptions{}, changeKeys...)
	if rec.Outcome != "unavailable" || !played(ch, "sound:ivr-pin/result-unavailable") {
		t.Fatalf("a change whose attempt was not written: %+v", rec)
	}
	if !l.Sims.CardHost.PINIs("4111111111111111", "7392") || len(l.Sims.CardHost.Received()) != 0 {
		t.Fatal("a change was sent without its attempt on disk")
	}
	if code, body := readyz(); code != 503 || !strings.Contains(body, "audit write failed") {
		t.Fatalf("/readyz after a failed audit write: %d %s", code, body)
	}
	if n := counter(t, l, "ivrpin_audit_write_errors_total", "", ""); n != 3 { // the start, the attempt, then the call's record
		t.Fatalf("audit write errors: %v", n)
	}
	if !strings.Contains(l.logs.String(), "audit record not written") {
		t.Fatal("the failure was not logged")
	}
	// The disk has room again: the operator points the file back and
	// sends SIGHUP.
	_ = os.Remove(link)
	if err := l.Line.ReopenAudit(); err != nil {
		t.Fatal(err)
	}
	if _, rec := l.call(t, aritest.CallOptions{}, changeKeys...); rec.Outcome != "changed" {
		t.Fatalf("%+v", rec)
	}
	if code, body := readyz(); code != 200 {
		t.Fatalf("/readyz after a record was written again: %d %s", code, body)
	}
	if b, _ := os.ReadFile(link); strings.Count(string(b), "\n") != 3 { // the reopen, the attempt and the call's record
		t.Fatalf("the audit file after reopening:\n%s", b)
	}
}

// getReadyz reads /readyz from a health server.
func getReadyz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A token that cannot be opened is refused naming the setting to fix: the
// PIN's own variable (its _FILE when it came from one), the token label
// with the files SoftHSM2 reads, the module.
func TestTokenErrorsNameTheSettingToFix(t *testing.T) {
	st := softhsmtest.New(t, "ivr-pin-errors")
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte("not-the-user-pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyConf := filepath.Join(t.TempDir(), "softhsm2.conf")
	emptyDir := t.TempDir()
	if err := os.WriteFile(emptyConf, []byte("directories.tokendir = "+emptyDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notALibrary := filepath.Join(t.TempDir(), "libsofthsm2.so")
	if err := os.WriteFile(notALibrary, []byte("not a library"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"a refused PIN from a file", map[string]string{"IVRPIN_PKCS11_PIN_FILE": pinFile},
			[]string{"IVRPIN_PKCS11_PIN_FILE: the token's user PIN was refused"}},
		{"a token directory without the token", map[string]string{"IVRPIN_PKCS11_PIN": st.PIN, "SOFTHSM2_CONF": emptyConf},
			[]string{"IVRPIN_PKCS11_TOKEN_LABEL: no such token", emptyConf, emptyDir}},
		{"a module that does not load", map[string]string{"IVRPIN_PKCS11_PIN": st.PIN, "IVRPIN_PKCS11_MODULE": notALibrary},
			[]string{"IVRPIN_PKCS11_MODULE: the PKCS#11 module " + notALibrary}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("IVRPIN_PKCS11_MODULE", st.Module)
			t.Setenv("IVRPIN_PKCS11_TOKEN_LABEL", st.Label)
			t.Setenv("IVRPIN_NI_ZPK_LABEL", "zpk")
			t.Setenv("IVRPIN_NI_ZPK_KCV", "08D7B4")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, err := config.Load()
			if err != nil {
				t.Fatal(err)
			}
			_, err = line.OpenToken(cfg)
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want %q in it", err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), "not-the-user-pin") {
				t.Fatalf("the PIN is in the error: %v", err)
			}
		})
	}
}

// serve's line takes a SoftHSM2 token only in a lab: without IVRPIN_LAB
// it is refused by name (the token's make and model said), with it the
// line comes up and shows ivrpin_lab_mode 1.
func TestServeRefusesASoftwareTokenOutsideALab(t *testing.T) {
	st := softhsmtest.New(t, "ivr-pin-lab-check")
	tok, err := hsm.Open(hsm.Config{Module: st.Module, TokenLabel: st.Label, PIN: st.PIN})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	if _, err := tok.Import("zpk", hsm.TDES2, raw, false); err != nil {
		t.Fatal(err)
	}
	tok.Close()
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg.NIURL, cfg.NIBankID = "http://127.0.0.1:1/pin", "TB01"
	cfg.NIZPKLabel, cfg.NIZPKKCV = "zpk", "08D7B4"
	cfg.PKCS11Module, cfg.PKCS11TokenLabel, cfg.PKCS11PIN = st.Module, st.Label, st.PIN
	cfg.LimitStore, cfg.LimitKey = filepath.Join(t.TempDir(), "attempts.db"), "00112233445566778899aabbccddeeff"
	cfg.ARIURL = "http://127.0.0.1:1/ari"
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	_, err = line.Build(t.Context(), cfg, line.Options{Log: logrus.NewEntry(quiet), RefuseLabParts: true})
	if err == nil || !strings.HasPrefix(err.Error(), "IVRPIN_PKCS11_MODULE:") || !strings.Contains(err.Error(), "SoftHSM") || !strings.Contains(err.Error(), "IVRPIN_LAB") {
		t.Fatalf("a SoftHSM2 token outside a lab: %v", err)
	}
	cfg.Lab = true
	l, err := line.Build(t.Context(), cfg, line.Options{Log: logrus.NewEntry(quiet), RefuseLabParts: true})
	if err != nil {
		t.Fatalf("in a lab: %v", err)
	}
	defer l.Close()
	mfs, _ := l.Metrics.Registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "ivrpin_lab_mode" && mf.GetMetric()[0].GetGauge().GetValue() != 1 {
			t.Fatal("ivrpin_lab_mode is not 1 in a lab")
		}
	}
}

// A rotation in the token: the next key is found by its label and pinned
// by its KCV like the current one; a call that begins after the instant
// seals under it and names its id; a wrong next KCV stops the line by name.
func TestTheNextKeyInAToken(t *testing.T) {
	const curHex, nextHex = "0123456789ABCDEFFEDCBA9876543210", "89ABCDEF0123456776543210FEDCBA98"
	st := softhsmtest.New(t, "ivr-pin-rotation")
	tok, err := hsm.Open(hsm.Config{Module: st.Module, TokenLabel: st.Label, PIN: st.PIN})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]*pinblock.ZPK{}
	var nextKCV string
	for _, k := range []struct{ label, hex string }{{"zpk-2026", curHex}, {"zpk-2027", nextHex}} {
		raw, _ := hex.DecodeString(k.hex)
		info, err := tok.Import(k.label, hsm.TDES2, raw, false)
		if err != nil {
			t.Fatal(err)
		}
		sk, _ := secret.ParseHexKey(secret.TDES, k.hex)
		keys[k.label], _ = pinblock.NewZPK(sk, pinblock.ISO0)
		nextKCV = info.KCV
	}
	tok.Close()
	host, err := simrun.Start(simrun.Options{BankID: "TB01", ZPKs: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	settings := func(c *config.Config) {
		c.NIURL, c.NIBankID = host.CardHostURL, "TB01"
		c.NIZPKLabel, c.NIZPKKCV, c.NIKeyID = "zpk-2026", "08D7B4", "zpk-2026"
		c.NIZPKNextLabel, c.NIZPKNextKCV, c.NINextKeyID = "zpk-2027", nextKCV, "zpk-2027"
		c.NIZPKNextFrom = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) // in force
		c.PKCS11Module, c.PKCS11TokenLabel, c.PKCS11PIN = st.Module, st.Label, st.PIN
	}
	l := startLine(t, settings, demo.Options{})
	if !strings.Contains(l.Line.PINBlocks, "(key id zpk-2027)") || !strings.Contains(l.Line.PINBlocks, nextKCV) {
		t.Fatalf("the line does not name the next key: %q", l.Line.PINBlocks)
	}
	host.CardHost.AddCard("4111111111111111", "2812", "", "active", "7392")
	if _, rec := l.call(t, aritest.CallOptions{}, change, card, exp, oldPIN, newPIN, newPIN); rec.Outcome != "changed" {
		t.Fatalf("%+v", rec)
	}
	if got := host.CardHost.Decoded(); got["zpk-2027"] != 1 || got["zpk-2026"] != 0 {
		t.Fatalf("decoded by key id %v: a call after the instant must use the next key", got)
	}

	cfg := config.Config{}
	settings(&cfg)
	cfg.NIZPKNextKCV = "ABCDEF"
	_, err = line.Provision(context.Background(), &cfg, line.KeyStep, nil)
	if err == nil || !strings.Contains(err.Error(), "IVRPIN_NI_ZPK_NEXT_LABEL") || !strings.Contains(err.Error(), "ABCDEF") {
		t.Fatalf("a wrong next KCV: %v", err)
	}
}
