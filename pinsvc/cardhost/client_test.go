package cardhost_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/internal/testkit/testpki"
	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/contract"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/cardhostsim"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/faults"
)

const (
	pan    = "4111111111111111"
	expiry = "2812"
	oldPIN = "7392"
	bankID = "TB01"
)

func zpk(t testing.TB) *pinblock.ZPK {
	k, err := secret.ParseHexKey(secret.TDES, "0123456789ABCDEFFEDCBA9876543210")
	if err != nil {
		t.Fatal(err)
	}
	z, err := pinblock.NewZPK(k, pinblock.ISO0)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

type harness struct {
	sim    *cardhostsim.Server
	srv    *httptest.Server
	client *cardhost.Client
}

func newHarness(t *testing.T, mutate func(*cardhost.Config)) *harness {
	t.Helper()
	z := zpk(t)
	sim := cardhostsim.New(cardhostsim.Config{BankID: bankID, ZPK: z}).WithTestCards()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := cardhost.Config{
		URL: srv.URL + cardhostsim.Route, BankID: bankID, EncryptionMethod: cardhost.MethodSymmetric,
		Encrypter: z, Timeout: 2 * time.Second,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := cardhost.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{sim: sim, srv: srv, client: c}
}

// sealed is pin sealed by c for cardPAN (Seal wipes pin).
func sealed(t *testing.T, c *cardhost.Client, cardPAN string, pin *secret.PIN) *contract.SealedPIN {
	t.Helper()
	s, err := c.Seal(secret.PAN(cardPAN), pin, time.Now())
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return &s
}

func change(t *testing.T, c *cardhost.Client, cardPAN, exp, old, new string) outcome.Result {
	t.Helper()
	res, err := c.ChangePIN(context.Background(), cardhost.ChangeRequest{
		PAN: secret.PAN(cardPAN), Expiry: exp,
		OldSealed: sealed(t, c, cardPAN, secret.PINFromString(old)), NewSealed: sealed(t, c, cardPAN, secret.PINFromString(new)),
	})
	if err != nil {
		t.Fatalf("ChangePIN: %v", err)
	}
	return res
}

func TestChangeSucceedsAndHostHoldsNewPIN(t *testing.T) {
	h := newHarness(t, nil)
	res := change(t, h.client, pan, expiry, oldPIN, "4829")
	if res.Kind != outcome.Changed || res.Code != "000" || len(res.MsgID) != 12 {
		t.Fatalf("result %v", res)
	}
	if !h.sim.PINIs(pan, "4829") || h.sim.PINIs(pan, oldPIN) {
		t.Fatal("simulator does not hold the new PIN")
	}
	// The envelope on the wire is the seed's, field for field.
	var sent map[string]map[string]map[string]map[string]any
	if err := json.Unmarshal(h.sim.Received()[0], &sent); err != nil {
		t.Fatal(err)
	}
	hdr := sent["NISrvRequest"]["request_card_pin_change"]["header"]
	body := sent["NISrvRequest"]["request_card_pin_change"]["body"]
	for k, want := range map[string]string{"msg_type": "TRANSACTION", "msg_function": "REQ_CARD_PIN_CHANGE",
		"src_application": "IVR", "target_application": "PCMS", "bank_id": bankID} {
		if hdr[k] != want {
			t.Errorf("header.%s = %v, want %s", k, hdr[k], want)
		}
	}
	if _, err := time.Parse(cardhost.TimestampLayout, hdr["timestamp"].(string)); err != nil {
		t.Errorf("timestamp not in the samples' form: %v", hdr["timestamp"])
	}
	if body["encryption_method"] != "SYMMETRIC_ENC" || len(body["encrypted_old_pin"].(string)) != 16 ||
		body["card_expiry_date"] != expiry {
		t.Errorf("body %v", body)
	}
}

func TestChangeWipesBothPINs(t *testing.T) {
	h := newHarness(t, nil)
	oldBuf, newBuf := []byte(oldPIN), []byte("4829")
	_, err := h.client.ChangePIN(context.Background(), cardhost.ChangeRequest{
		PAN: pan, Expiry: expiry,
		OldSealed: sealed(t, h.client, string(pan), secret.NewPIN(oldBuf)), NewSealed: sealed(t, h.client, string(pan), secret.NewPIN(newBuf)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(oldBuf, make([]byte, 4)) || !bytes.Equal(newBuf, make([]byte, 4)) {
		t.Fatal("clear PIN digits were not zeroed")
	}
}

func TestHostRefusalsMapToOutcomes(t *testing.T) {
	cases := []struct {
		name, pan, exp, old string
		want                outcome.Kind
		code                string
	}{
		{"wrong current PIN", pan, expiry, "1357", outcome.WrongPIN, "105"},
		{"blocked card", "4000056655665556", "2903", "4826", outcome.NotEligible, "104"},
		{"no PIN yet", "4012888888881881", "3001", "1357", outcome.NoPINYet, "107"},
		{"unknown card", "4242424242424242", "2812", "1357", outcome.UnknownCard, "102"},
		{"expiry mismatch", pan, "2901", oldPIN, outcome.ExpiryMismatch, "103"},
		{"new PIN refused", pan, expiry, oldPIN, outcome.WeakPIN, "110"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			newPIN := "4829"
			if c.want == outcome.WeakPIN {
				newPIN = "1112" // the host's own rule: three identical digits
			}
			res := change(t, h.client, c.pan, c.exp, c.old, newPIN)
			if res.Kind != c.want || res.Code != c.code {
				t.Fatalf("got %s code %s, want %s code %s", res.Kind, res.Code, c.want, c.code)
			}
			if h.sim.Applied() != 0 {
				t.Fatal("a refused change was applied")
			}
		})
	}
}

func TestThreeWrongPINsBlockTheCard(t *testing.T) {
	h := newHarness(t, nil)
	for i := 0; i < 2; i++ {
		if res := change(t, h.client, pan, expiry, "1357", "4829"); res.Kind != outcome.WrongPIN {
			t.Fatalf("try %d: %v", i, res)
		}
	}
	if res := change(t, h.client, pan, expiry, "1357", "4829"); res.Kind != outcome.NotEligible || res.Code != "106" {
		t.Fatalf("third wrong PIN: %v", res)
	}
	if st, tries := h.sim.Status(pan); st != "blocked" || tries != 3 {
		t.Fatalf("status %s tries %d", st, tries)
	}
	// Even the right PIN is refused now.
	if res := change(t, h.client, pan, expiry, oldPIN, "4829"); res.Kind != outcome.NotEligible {
		t.Fatalf("blocked card accepted a change: %v", res)
	}
}

func TestCustomCodeMapping(t *testing.T) {
	h := newHarness(t, func(c *cardhost.Config) {
		c.Codes = cardhost.Codes{WrongPIN: []string{"999"}, NotEligible: []string{"104"}}
	})
	if res := change(t, h.client, pan, expiry, "1357", "4829"); res.Kind != outcome.Rejected {
		t.Fatalf("unmapped code 105 should be a generic rejection, got %v", res)
	}
}

func TestFaults(t *testing.T) {
	cases := []struct {
		name      string
		fault     faults.Fault
		want      outcome.Kind
		appliedBy int // how many changes the host applied despite the fault
	}{
		{"slow host beyond the timeout", faults.Fault{Kind: faults.Delay, Delay: 1500 * time.Millisecond}, outcome.Ambiguous, 1},
		{"slow host within the timeout", faults.Fault{Kind: faults.Delay, Delay: 50 * time.Millisecond}, outcome.Changed, 1},
		{"500", faults.Fault{Kind: faults.Status, Status: 500}, outcome.Ambiguous, 0},
		{"502", faults.Fault{Kind: faults.Status, Status: 502}, outcome.Ambiguous, 0},
		{"503", faults.Fault{Kind: faults.Status, Status: 503}, outcome.Unavailable, 0},
		{"reset after the request was read", faults.Fault{Kind: faults.Reset}, outcome.Ambiguous, 1},
		{"malformed body", faults.Fault{Kind: faults.Malformed}, outcome.Ambiguous, 1},
		{"answer for another msg_id", faults.Fault{Kind: faults.WrongMsgID}, outcome.Ambiguous, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *cardhost.Config) { cfg.Timeout = 700 * time.Millisecond })
			c.fault.Count = 1
			h.sim.Faults.Set(c.fault)
			res := change(t, h.client, pan, expiry, oldPIN, "4829")
			if res.Kind != c.want {
				t.Fatalf("got %v, want %s", res, c.want)
			}
			// Wait (bounded) for a delayed host to finish its work, then check
			// the client did not resend: at most one change reached the host.
			deadline := time.Now().Add(3 * time.Second)
			for h.sim.Applied() < c.appliedBy && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if got := h.sim.Applied(); got != c.appliedBy {
				t.Fatalf("host applied %d changes, want %d", got, c.appliedBy)
			}
			if n := len(h.sim.Received()); n != 1 {
				t.Fatalf("client sent %d requests, want exactly 1", n)
			}
		})
	}
}

func TestHostDownIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := cardhost.New(cardhost.Config{URL: url, BankID: bankID, EncryptionMethod: cardhost.MethodSymmetric,
		Encrypter: zpk(t), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res := change(t, c, pan, expiry, oldPIN, "4829"); res.Kind != outcome.Unavailable {
		t.Fatalf("refused connection gave %v", res)
	}
}

func TestAsymmetricEncryption(t *testing.T) {
	certFile, priv := testpki.RSACertificate(t)
	pub, err := pinblock.LoadCertificate(certFile)
	if err != nil {
		t.Fatal(err)
	}
	sim := cardhostsim.New(cardhostsim.Config{BankID: bankID, RSAKey: priv, RSAFormat: pinblock.ISO0}).WithTestCards()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := cardhost.New(cardhost.Config{URL: srv.URL + cardhostsim.Route, BankID: bankID,
		EncryptionMethod: cardhost.MethodAsymmetric, Encrypter: &pinblock.RSAEncrypter{Public: pub, Format: pinblock.ISO0}})
	if err != nil {
		t.Fatal(err)
	}
	if res := change(t, c, pan, expiry, oldPIN, "4829"); res.Kind != outcome.Changed {
		t.Fatalf("ASYNC_ENC change: %v", res)
	}
	if !sim.PINIs(pan, "4829") {
		t.Fatal("host does not hold the new PIN")
	}
}

func TestOAuth2AndMutualTLS(t *testing.T) {
	pki := testpki.New(t)
	z := zpk(t)
	sim := cardhostsim.New(cardhostsim.Config{BankID: bankID, ZPK: z, ClientID: "ivr", ClientSecret: "s3cret-value"}).WithTestCards()
	srv := httptest.NewUnstartedServer(sim)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.Server}, ClientCAs: pki.CAPool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	base := cardhost.Config{URL: srv.URL + cardhostsim.Route, BankID: bankID, EncryptionMethod: cardhost.MethodSymmetric,
		Encrypter: z, TLSCA: pki.CAFile, TLSCert: pki.ClientCert, TLSKey: pki.ClientKey,
		TokenURL: srv.URL + cardhostsim.TokenRoute, ClientID: "ivr", ClientSecret: "s3cret-value"}
	c, err := cardhost.New(base)
	if err != nil {
		t.Fatal(err)
	}
	if res := change(t, c, pan, expiry, oldPIN, "4829"); res.Kind != outcome.Changed {
		t.Fatalf("with token and client certificate: %v", res)
	}
	// Without the client certificate the TLS handshake fails: nothing is sent.
	noCert := base
	noCert.TLSCert, noCert.TLSKey = "", ""
	c2, err := cardhost.New(noCert)
	if err != nil {
		t.Fatal(err)
	}
	if res := change(t, c2, pan, expiry, "4829", "4830"); res.Kind != outcome.Unavailable {
		t.Fatalf("without a client certificate: %v", res)
	}
	// With a wrong client secret the token call fails: nothing is sent.
	badSecret := base
	badSecret.ClientSecret = "wrong"
	c3, _ := cardhost.New(badSecret)
	res := change(t, c3, pan, expiry, "4829", "4830")
	if res.Kind != outcome.Unavailable {
		t.Fatalf("with a bad client secret: %v", res)
	}
	if strings.Contains(res.Description, "wrong") || strings.Contains(res.Description, "s3cret") {
		t.Fatal("description echoes a secret")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	good := cardhost.Config{URL: "http://127.0.0.1:1/x", BankID: bankID, EncryptionMethod: cardhost.MethodSymmetric, Encrypter: zpk(t)}
	cases := map[string]func(*cardhost.Config){
		"no URL":          func(c *cardhost.Config) { c.URL = "" },
		"long bank id":    func(c *cardhost.Config) { c.BankID = "BANK1" },
		"bad method":      func(c *cardhost.Config) { c.EncryptionMethod = "PLAIN" },
		"no encrypter":    func(c *cardhost.Config) { c.Encrypter = nil },
		"partial oauth":   func(c *cardhost.Config) { c.TokenURL = "http://127.0.0.1:1/t" },
		"missing TLS key": func(c *cardhost.Config) { c.TLSCert = "/nonexistent.pem" },
	}
	for name, mutate := range cases {
		cfg := good
		mutate(&cfg)
		if _, err := cardhost.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLocalErrorsSendNothing(t *testing.T) {
	h := newHarness(t, nil)
	_, err := h.client.ChangePIN(context.Background(), cardhost.ChangeRequest{
		PAN: pan, Expiry: expiry, SequenceNumber: "001",
		OldSealed: sealed(t, h.client, string(pan), secret.PINFromString(oldPIN)), NewSealed: sealed(t, h.client, string(pan), secret.PINFromString("4829")),
	})
	if !errors.Is(err, cardhost.ErrLocal) {
		t.Fatalf("three-digit sequence number: %v", err)
	}
	if strings.Contains(err.Error(), pan) || strings.Contains(err.Error(), oldPIN) {
		t.Fatal("error leaks card data")
	}
	if len(h.sim.Received()) != 0 {
		t.Fatal("an invalid request was sent")
	}
}

func TestMsgIDsAreUniqueAndShort(t *testing.T) {
	g := cardhost.NewIDGenerator()
	seen := map[string]bool{}
	for i := 0; i < 100000; i++ {
		id := g.Next()
		if len(id) != cardhost.MaxMsgID || seen[id] {
			t.Fatalf("id %q (len %d) repeated or wrong length", id, len(id))
		}
		seen[id] = true
	}
}

func TestParseTimestampAcceptsBothDocumentedForms(t *testing.T) {
	for _, s := range []string{"2020-05-21T15:13:18.853+04:00", "21/05/2020 15:13:18"} {
		if ts, err := cardhost.ParseTimestamp(s); err != nil || ts.Year() != 2020 || ts.Day() != 21 {
			t.Errorf("ParseTimestamp(%s) = %v, %v", s, ts, err)
		}
	}
	if _, err := cardhost.ParseTimestamp("2020-13-45"); err == nil {
		t.Error("garbage accepted")
	}
}

// wireBody decodes the body of the i-th request the simulator received.
func wireBody(t *testing.T, h *harness, i int) (header, body map[string]any) {
	t.Helper()
	var doc struct {
		NISrvRequest struct {
			Op struct {
				Header map[string]any `json:"header"`
				Body   map[string]any `json:"body"`
			} `json:"request_card_pin_change"`
		} `json:"NISrvRequest"`
	}
	if err := json.Unmarshal(h.sim.Received()[i], &doc); err != nil {
		t.Fatal(err)
	}
	return doc.NISrvRequest.Op.Header, doc.NISrvRequest.Op.Body
}

func TestRedirectIsNeverFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	for _, status := range []int{301, 302, 307, 308} {
		h := newHarness(t, nil)
		h.sim.Faults.Set(faults.Fault{Kind: faults.Redirect, Status: status, Location: other.URL + cardhostsim.Route, Count: 1})
		res := change(t, h.client, pan, expiry, oldPIN, "4829")
		if res.Kind != outcome.Unavailable || !strings.Contains(res.Description, "redirect") {
			t.Fatalf("%d: %v", status, res)
		}
		if n := len(h.sim.Received()); n != 1 || elsewhere.Load() != 0 || h.sim.Applied() != 0 {
			t.Fatalf("%d: %d requests to the host, %d elsewhere, %d applied", status, n, elsewhere.Load(), h.sim.Applied())
		}
	}
}

func TestRefusalBehindAnErrorStatusIsRead(t *testing.T) {
	for _, status := range []int{400, 422, 500} {
		z := zpk(t)
		sim := cardhostsim.New(cardhostsim.Config{BankID: bankID, ZPK: z, FailureStatus: status}).WithTestCards()
		srv := httptest.NewServer(sim)
		c, err := cardhost.New(cardhost.Config{URL: srv.URL + cardhostsim.Route, BankID: bankID,
			EncryptionMethod: cardhost.MethodSymmetric, Encrypter: z, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		res := change(t, c, pan, expiry, "1357", "4829")
		srv.Close()
		if res.Kind != outcome.WrongPIN || res.Code != "105" {
			t.Fatalf("HTTP %d with an NI body: %v", status, res)
		}
	}
}

func TestHostReferenceIsKept(t *testing.T) {
	h := newHarness(t, nil)
	res := change(t, h.client, pan, expiry, oldPIN, "4829")
	if res.Kind != outcome.Changed || !strings.HasPrefix(res.Reference, "TRN") {
		t.Fatalf("%+v", res)
	}
	// A host that sends the reference as a number does not fail the answer.
	z := zpk(t)
	sim := cardhostsim.New(cardhostsim.Config{BankID: bankID, ZPK: z, RefAsNumber: true}).WithTestCards()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, _ := cardhost.New(cardhost.Config{URL: srv.URL + cardhostsim.Route, BankID: bankID,
		EncryptionMethod: cardhost.MethodSymmetric, Encrypter: z, Timeout: 2 * time.Second})
	res = change(t, c, pan, expiry, oldPIN, "4829")
	if res.Kind != outcome.Changed || res.Reference != "700000000001" {
		t.Fatalf("numeric transaction_ref_id: %+v", res)
	}
}

func TestSequenceNumberIsSentWhenKnown(t *testing.T) {
	h := newHarness(t, func(c *cardhost.Config) {
		c.SequenceByBIN = map[string]string{"4111": "02", "411111": "01", "5555": "03"}
	})
	send := func(seq string) {
		_, err := h.client.ChangePIN(context.Background(), cardhost.ChangeRequest{PAN: pan, Expiry: expiry, SequenceNumber: seq,
			OldSealed: sealed(t, h.client, string(pan), secret.PINFromString("1357")), NewSealed: sealed(t, h.client, string(pan), secret.PINFromString("4829"))})
		if err != nil {
			t.Fatal(err)
		}
	}
	send("")   // from the longest BIN prefix
	send("07") // a transfer's own wins
	if _, b := wireBody(t, h, 0); b["card_sequence_number"] != "01" {
		t.Fatalf("by BIN: %v", b["card_sequence_number"])
	}
	if _, b := wireBody(t, h, 1); b["card_sequence_number"] != "07" {
		t.Fatalf("passed in: %v", b["card_sequence_number"])
	}
	h2 := newHarness(t, nil)
	change(t, h2.client, pan, expiry, "1357", "4829")
	if _, b := wireBody(t, h2, 0); b["card_sequence_number"] != nil {
		t.Fatalf("unknown sequence number sent: %v", b["card_sequence_number"])
	}
}

func TestHeaderSettings(t *testing.T) {
	z := zpk(t)
	sim := cardhostsim.New(cardhostsim.Config{BankID: bankID, ZPK: z, SrcApplication: "IVR2", TargetApplication: "CMS"}).WithTestCards()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	cfg := cardhost.Config{URL: srv.URL + cardhostsim.Route, BankID: bankID, EncryptionMethod: cardhost.MethodSymmetric,
		Encrypter: z, Timeout: 2 * time.Second, TimestampLayout: cardhost.LegacyTimestampLayout}
	c, _ := cardhost.New(cfg)
	if res := change(t, c, pan, expiry, oldPIN, "4829"); res.Kind != outcome.Rejected || res.Code != "101" {
		t.Fatalf("default IVR/PCMS to a host expecting IVR2/CMS: %v", res)
	}
	cfg.SrcApplication, cfg.TargetApplication = "IVR2", "CMS"
	c, _ = cardhost.New(cfg)
	if res := change(t, c, pan, expiry, oldPIN, "4829"); res.Kind != outcome.Changed {
		t.Fatalf("%v", res)
	}
	var doc map[string]map[string]map[string]map[string]any
	_ = json.Unmarshal(sim.Received()[1], &doc)
	ts, _ := doc["NISrvRequest"]["request_card_pin_change"]["header"]["timestamp"].(string)
	if _, err := time.Parse(cardhost.LegacyTimestampLayout, ts); err != nil {
		t.Fatalf("timestamp %q not in the legacy form", ts)
	}
	for _, bad := range []cardhost.Config{
		{SrcApplication: "ELEVENCHARS"},
		{TimestampLayout: "2006"},
		{SequenceByBIN: map[string]string{"41x": "01"}},
		{SequenceByBIN: map[string]string{"4111": "1"}},
	} {
		bad.URL, bad.BankID, bad.EncryptionMethod, bad.Encrypter = srv.URL, bankID, cardhost.MethodSymmetric, z
		if _, err := cardhost.New(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestPlainHTTPToAnotherHostIsRefused(t *testing.T) {
	z := zpk(t)
	base := cardhost.Config{BankID: bankID, EncryptionMethod: cardhost.MethodSymmetric, Encrypter: z}
	for _, u := range []string{"http://cards.bank.example/PCServices/CardPinChange", "cards.bank.example", "https://%zz"} {
		cfg := base
		cfg.URL = u
		if _, err := cardhost.New(cfg); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	cfg := base
	cfg.URL, cfg.TokenURL, cfg.ClientID, cfg.ClientSecret = "https://cards.bank.example/x", "http://idp.bank.example/token", "id", "secret"
	if _, err := cardhost.New(cfg); err == nil {
		t.Error("plain http token URL accepted")
	}
	cfg.AllowInsecure = true
	if _, err := cardhost.New(cfg); err != nil {
		t.Errorf("explicitly allowed: %v", err)
	}
}

func TestSealedPINsAreSentAgainWithoutTheirDigits(t *testing.T) {
	h := newHarness(t, nil)
	newBuf := []byte("4829")
	sealedNew, err := h.client.Seal(pan, secret.NewPIN(newBuf), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(newBuf, make([]byte, 4)) {
		t.Fatal("Seal left the clear digits")
	}
	for _, s := range []string{fmt.Sprint(sealedNew), fmt.Sprintf("%+v", sealedNew), fmt.Sprintf("%#v", sealedNew)} {
		if s != "<sealed>" && s != "cardhost.Sealed(<sealed>)" {
			t.Fatalf("a sealed PIN prints as %q", s)
		}
	}
	var shown string
	if b, _ := json.Marshal(sealedNew); json.Unmarshal(b, &shown) != nil || shown != "<sealed>" {
		t.Fatalf("JSON %s", b)
	}
	send := func(old string) outcome.Result {
		sealedOld, err := h.client.Seal(pan, secret.PINFromString(old), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		res, err := h.client.ChangePIN(context.Background(), cardhost.ChangeRequest{PAN: pan, Expiry: expiry, OldSealed: &sealedOld, NewSealed: &sealedNew})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := send("1357"); res.Kind != outcome.WrongPIN {
		t.Fatalf("%v", res)
	}
	if res := send(oldPIN); res.Kind != outcome.Changed || !h.sim.PINIs(pan, "4829") {
		t.Fatalf("the sealed new PIN sent again: %v", res)
	}
	// A block sealed for one card cannot go out for another.
	_, err = h.client.ChangePIN(context.Background(), cardhost.ChangeRequest{PAN: "5555555555554444", Expiry: "2906",
		OldSealed: sealed(t, h.client, "5555555555554444", secret.PINFromString("2580")), NewSealed: &sealedNew})
	if !errors.Is(err, cardhost.ErrLocal) {
		t.Fatalf("sealed for another card: %v", err)
	}
}

// A rotation: the host holds both keys by id; a call that sealed its first
// PIN before the instant sends both blocks under the current key and its
// id, one that began at or after it under the next; blocks of two keys in
// one request are refused before anything is sent.
func TestRotationKeepsACallOnTheKeyItBeganWith(t *testing.T) {
	cur := zpk(t)
	nk, _ := secret.ParseHexKey(secret.TDES, "89ABCDEF0123456776543210FEDCBA98")
	next, _ := pinblock.NewZPK(nk, pinblock.ISO0)
	sim := cardhostsim.New(cardhostsim.Config{BankID: bankID, ZPKs: map[string]*pinblock.ZPK{"zpk-2026": cur, "zpk-2027": next}}).WithTestCards()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	from := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := cardhost.New(cardhost.Config{URL: srv.URL + cardhostsim.Route, BankID: bankID, EncryptionMethod: cardhost.MethodSymmetric,
		EncryptionKeyID: "zpk-2026", Encrypter: cur, Timeout: 2 * time.Second,
		Next: &cardhost.NextKey{Encrypter: next, KeyID: "zpk-2027", From: from}})
	if err != nil {
		t.Fatal(err)
	}
	card := secret.PAN(pan)
	seal := func(pin string, since time.Time) *contract.SealedPIN {
		s, err := c.Seal(card, secret.PINFromString(pin), since)
		if err != nil {
			t.Fatal(err)
		}
		return &s
	}
	send := func(old, new *contract.SealedPIN) (outcome.Result, error) {
		return c.ChangePIN(context.Background(), cardhost.ChangeRequest{PAN: card, Expiry: expiry, OldSealed: old, NewSealed: new})
	}
	before, after := from.Add(-time.Second), from
	if res, err := send(seal(oldPIN, before), seal("4829", before)); err != nil || res.Kind != outcome.Changed {
		t.Fatalf("a call begun before the instant: %+v %v", res, err)
	}
	if res, err := send(seal("4829", after), seal("5831", after)); err != nil || res.Kind != outcome.Changed {
		t.Fatalf("a call begun at the instant: %+v %v", res, err)
	}
	if got := sim.Decoded(); got["zpk-2026"] != 1 || got["zpk-2027"] != 1 {
		t.Fatalf("decoded by key id %v, want one request under each", got)
	}
	if _, err := send(seal("5831", before), seal("6942", after)); !errors.Is(err, cardhost.ErrLocal) {
		t.Fatalf("blocks of two keys in one request: %v", err)
	}
	if n := len(sim.Received()); n != 2 {
		t.Fatalf("%d requests reached the host, want 2", n)
	}
	// A next key must have an id of its own.
	if _, err := cardhost.New(cardhost.Config{URL: srv.URL + cardhostsim.Route, BankID: bankID, EncryptionMethod: cardhost.MethodSymmetric,
		EncryptionKeyID: "zpk-2026", Encrypter: cur, Next: &cardhost.NextKey{Encrypter: next, KeyID: "zpk-2026", From: from}}); err == nil {
		t.Fatal("a next key under the current key's id was accepted")
	}
}
