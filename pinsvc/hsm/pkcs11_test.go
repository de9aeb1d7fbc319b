//go:build cgo

package hsm

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/ivr-pin/ivr-pin/internal/testkit/softhsmtest"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// The ANSI test key 0123456789ABCDEF FEDCBA9876543210, KCV 08D7B4.
const testKeyHex = "0123456789ABCDEFFEDCBA9876543210"

func openToken(t *testing.T) (*Token, *softhsmtest.Token) {
	t.Helper()
	st := softhsmtest.New(t, "ivr-pin-test")
	tok, err := Open(Config{Module: st.Module, TokenLabel: st.Label, PIN: st.PIN, Sessions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tok.Close)
	return tok, st
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImportSetsTheAttributesOfAZonePINKey(t *testing.T) {
	tok, st := openToken(t)
	info, err := tok.Import("zpk", TDES2, mustHex(t, testKeyHex), false)
	if err != nil {
		t.Fatal(err)
	}
	if info.KCV != "08D7B4" || info.Type != TDES2 {
		t.Fatalf("imported %+v, want TDES2 KCV 08D7B4", info)
	}
	want := map[string]bool{"CKA_TOKEN": true, "CKA_PRIVATE": true, "CKA_SENSITIVE": true, "CKA_EXTRACTABLE": false,
		"CKA_ENCRYPT": true, "CKA_DECRYPT": false, "CKA_WRAP": false, "CKA_UNWRAP": false, "CKA_SIGN": false,
		"CKA_MODIFIABLE": false, "CKA_COPYABLE": false}
	again, err := tok.Inspect("zpk")
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range want {
		if got, ok := again.Attributes[name]; !ok || got != v {
			t.Errorf("%s = %v (reported %v), want %v", name, got, ok, v)
		}
	}
	// A second import under the label is refused unless it replaces.
	if _, err := tok.Import("zpk", TDES2, mustHex(t, "89ABCDEF0123456776543210FEDCBA98"), false); err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("second import under one label: %v", err)
	}
	info2, err := tok.Import("zpk", TDES2, mustHex(t, "89ABCDEF0123456776543210FEDCBA98"), true)
	if err != nil {
		t.Fatal(err)
	}
	if info2.KCV == "08D7B4" {
		t.Fatal("--replace kept the old key")
	}
	if got, err := tok.Inspect("zpk"); err != nil || got.KCV != info2.KCV {
		t.Fatalf("after replace: %+v %v", got, err)
	}
	// SoftHSM2 keeps a private object encrypted under the token's key: the
	// clear key is nowhere in its files.
	_ = filepath.Walk(st.Dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, mustHex(t, testKeyHex)[:8]) || bytes.Contains(b, mustHex(t, "89ABCDEF01234567")) {
				t.Errorf("%s holds key material in clear", p)
			}
		}
		return nil
	})
}

func TestTokenEncryptsAsTheSoftwareKeyDoes(t *testing.T) {
	tok, _ := openToken(t)
	for _, c := range []struct {
		typ    KeyType
		hex    string
		format pinblock.Format
	}{
		{TDES2, testKeyHex, pinblock.ISO0},
		{TDES3, "0123456789ABCDEFFEDCBA987654321089ABCDEF01234567", pinblock.ISO0},
		{AES128, "000102030405060708090A0B0C0D0E0F", pinblock.ISO4},
		{AES256, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", pinblock.ISO4},
	} {
		label := "zpk-" + string(c.typ)
		if _, err := tok.Import(label, c.typ, mustHex(t, c.hex), false); err != nil {
			t.Fatal(err)
		}
		hk, err := tok.Key(label, c.typ.Algorithm(), "")
		if err != nil {
			t.Fatal(err)
		}
		sk, _ := secret.ParseHexKey(c.typ.Algorithm(), c.hex)
		if hk.KCV() != sk.KCV() {
			t.Fatalf("%s: token KCV %s, software %s", c.typ, hk.KCV(), sk.KCV())
		}
		if strings.Contains(hk.Describe(), c.hex[:8]) || !strings.Contains(hk.Describe(), sk.KCV()) {
			t.Fatalf("description: %s", hk.Describe())
		}
		hz, _ := pinblock.NewZPK(hk, c.format)
		sz, _ := pinblock.NewZPK(sk, c.format)
		block, err := hz.Encrypt([]byte("4829"), "4111111111111111")
		if err != nil {
			t.Fatal(err)
		}
		pin, err := sz.Decrypt(block, "4111111111111111")
		if err != nil || string(pin) != "4829" {
			t.Fatalf("%s: the software key decrypts the token's block to %q (%v)", c.typ, pin, err)
		}
	}
}

func TestKeyRefusals(t *testing.T) {
	tok, _ := openToken(t)
	if _, err := tok.Import("zpk", TDES2, mustHex(t, testKeyHex), false); err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Key("zpk", secret.TDES, "ABCDEF"); err == nil || !strings.Contains(err.Error(), "08D7B4") {
		t.Fatalf("a wrong IVRPIN_NI_ZPK_KCV: %v", err)
	}
	if _, err := tok.Key("zpk", secret.AES, ""); err == nil {
		t.Fatal("a TDES key accepted for AES")
	}
	if _, err := tok.Key("nothing", secret.TDES, ""); !errors.Is(err, ErrNoKey) {
		t.Fatalf("missing label: %v", err)
	}
	// Keys that the token would hand out are refused by name.
	// So are keys of more than one purpose (PCI PIN 19), the attribute
	// named.
	for _, c := range []struct {
		label             string
		extractable, sens bool
		other             uint // another purpose set true, or 0
		want              string
	}{
		{"extractable", true, true, 0, "CKA_EXTRACTABLE"},
		{"not-sensitive", false, false, 0, "CKA_SENSITIVE"},
		{"decrypts", false, true, pkcs11.CKA_DECRYPT, "CKA_DECRYPT"},
		{"wraps", false, true, pkcs11.CKA_WRAP, "CKA_WRAP"},
		{"unwraps", false, true, pkcs11.CKA_UNWRAP, "CKA_UNWRAP"},
		{"signs", false, true, pkcs11.CKA_SIGN, "CKA_SIGN"},
		{"derives", false, true, pkcs11.CKA_DERIVE, "CKA_DERIVE"},
	} {
		attrs := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_DES2),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, c.sens), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, c.extractable),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true), pkcs11.NewAttribute(pkcs11.CKA_LABEL, c.label),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, mustHex(t, testKeyHex)),
		}
		// Every other purpose stated (SoftHSM2 sets CKA_DECRYPT when it
		// is left out), the case's one true.
		for _, a := range []uint{pkcs11.CKA_DECRYPT, pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP, pkcs11.CKA_SIGN, pkcs11.CKA_DERIVE} {
			attrs = append(attrs, pkcs11.NewAttribute(a, a == c.other))
		}
		tok.mu.Lock()
		_, err := tok.p.CreateObject(tok.login, attrs)
		tok.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tok.Key(c.label, secret.TDES, ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.label, err)
		}
	}
	// The module is one per process: a token still logged in would let any
	// PIN through (CKR_USER_ALREADY_LOGGED_IN).
	tok.Close()
	if _, err := Open(Config{Module: softhsmtest.Module(t), TokenLabel: "ivr-pin-test", PIN: "wrong-pin-0000"}); err == nil ||
		strings.Contains(err.Error(), "wrong-pin") {
		t.Fatalf("a wrong user PIN: %v", err)
	}
	if _, err := Open(Config{Module: softhsmtest.Module(t), TokenLabel: "no-such-token", PIN: "x"}); err == nil || !strings.Contains(err.Error(), "no-such-token") {
		t.Fatalf("a missing token: %v", err)
	}
}

// Fifty callers at once: every block is right, through a pool of four
// sessions.
func TestConcurrentEncryption(t *testing.T) {
	tok, _ := openToken(t)
	hk := importTestKey(t, tok)
	sk, _ := secret.ParseHexKey(secret.TDES, testKeyHex)
	var wg sync.WaitGroup
	var wrong, failed sync.Map
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				src := []byte{byte(g), byte(i), 1, 2, 3, 4, 5, 6}
				got, want := make([]byte, 8), make([]byte, 8)
				if err := hk.EncryptBlock(got, src); err != nil {
					failed.Store(g, err)
					return
				}
				_ = sk.EncryptBlock(want, src)
				if !bytes.Equal(got, want) {
					wrong.Store(g, i)
				}
			}
		}(g)
	}
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Errorf("goroutine %v: %v", k, v); return true })
	wrong.Range(func(k, v any) bool { t.Errorf("goroutine %v: wrong block at %v", k, v); return true })
}

// A token that goes away fails every encryption at once, says why, and is
// used again without a restart when it is back with the same key.
func TestTokenFailsClosedAndRecovers(t *testing.T) {
	tok, st := openToken(t)
	hk := importTestKey(t, tok)
	out := make([]byte, 8)
	if err := hk.EncryptBlock(out, make([]byte, 8)); err != nil || tok.Ready() != nil {
		t.Fatalf("before: %v %v", err, tok.Ready())
	}
	st.Unplug(t)
	if err := hk.EncryptBlock(out, make([]byte, 8)); !errors.Is(err, ErrNotReady) {
		t.Fatalf("encryption with the token gone: %v", err)
	}
	if err := tok.Ready(); err == nil {
		t.Fatal("Ready with the token gone")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan error, 10)
	go tok.Watch(ctx, 50*time.Millisecond, func(err error) { changes <- err })
	time.Sleep(200 * time.Millisecond) // Watch retries while the token is away
	if tok.Ready() == nil {
		t.Fatal("ready while the token is away")
	}
	st.Plug(t)
	select {
	case err := <-changes:
		if err != nil {
			t.Fatalf("Watch reported %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the token did not come back: %v", tok.Ready())
	}
	if err := hk.EncryptBlock(out, make([]byte, 8)); err != nil {
		t.Fatalf("after the token came back: %v", err)
	}
	if got := strings.ToUpper(hex.EncodeToString(out[:3])); got != "08D7B4" {
		t.Fatalf("KCV after recovery %s", got)
	}
}

// Sessions lost under the line (another user of the module closed them, as
// a module or network HSM error does) fail the next encryption; the token
// is reopened and used again.
func TestLostSessionsAreReopened(t *testing.T) {
	tok, _ := openToken(t)
	hk := importTestKey(t, tok)
	other := pkcs11.New(tok.cfg.Module)
	if err := other.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatal(err)
	}
	if err := other.CloseAllSessions(tok.slot); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 8)
	if err := hk.EncryptBlock(out, make([]byte, 8)); !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "CKR_SESSION_HANDLE_INVALID") {
		t.Fatalf("with the sessions gone: %v", err)
	}
	if err := hk.EncryptBlock(out, make([]byte, 8)); !errors.Is(err, ErrNotReady) {
		t.Fatalf("a broken token was used before it was reopened: %v", err)
	}
	tok.reopen() // what Watch does
	if err := hk.EncryptBlock(out, make([]byte, 8)); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	if tok.Ready() != nil {
		t.Fatal(tok.Ready())
	}
}

// importTestKey puts the ANSI test key into the token as "zpk" and finds it.
func importTestKey(t *testing.T, tok *Token) *Key {
	t.Helper()
	if _, err := tok.Import("zpk", TDES2, mustHex(t, testKeyHex), false); err != nil {
		t.Fatal(err)
	}
	hk, err := tok.Key("zpk", secret.TDES, "08D7B4")
	if err != nil {
		t.Fatal(err)
	}
	return hk
}

// A token's AES KCV is the CMAC one, made from two ECB encryptions (the key
// needs no CKA_SIGN): it equals the token's own CKM_AES_CMAC over a zero
// block, taken on a copy of the key that may sign.
func TestTokenAESKCVIsItsCMAC(t *testing.T) {
	tok, _ := openToken(t)
	raw := mustHex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	info, err := tok.Import("zpk-aes", AES128, bytes.Clone(raw), false)
	if err != nil {
		t.Fatal(err)
	}
	tok.mu.Lock()
	defer tok.mu.Unlock()
	h, err := tok.p.CreateObject(tok.login, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, raw),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.p.SignInit(tok.login, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CMAC, nil)}, h); err != nil {
		t.Skipf("this token has no CKM_AES_CMAC: %v", err)
	}
	mac, err := tok.p.Sign(tok.login, make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}

	if want := strings.ToUpper(hex.EncodeToString(mac[:3])); info.KCV != want || want != "7AD386" {
		t.Fatalf("KCV %s, the token's CMAC %s (openssl: 7AD386)", info.KCV, want)
	}
}
