package keysecure_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/faults"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/keysecuresim"
)

const (
	apiKey    = "ak_test_ivr"
	apiSecret = "0123456789abcdef0123456789abcdef" // 32 bytes: AES-256
	physical  = "C202605220001"
	holder    = "U202605220001"
)

var now = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

type harness struct {
	sim    *keysecuresim.Server
	srv    *httptest.Server
	client *keysecure.Client
	calls  *atomic.Int32
}

func newHarness(t *testing.T, simCfg func(*keysecuresim.Config), cliCfg func(*keysecure.Config)) *harness {
	t.Helper()
	sc := keysecuresim.Config{APIKey: apiKey, APISecret: apiSecret, PCIDisplay: true}
	if simCfg != nil {
		simCfg(&sc)
	}
	sim, err := keysecuresim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	sim.WithTestCards()
	calls := &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	key, err := keysecure.SecretKey(apiSecret)
	if err != nil {
		t.Fatal(err)
	}
	cc := keysecure.Config{BaseURL: srv.URL, APIKey: apiKey, APISecret: key, Timeout: 2 * time.Second}
	if cliCfg != nil {
		cliCfg(&cc)
	}
	c, err := keysecure.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{sim: sim, srv: srv, client: c, calls: calls}
}

func set(t *testing.T, c *keysecure.Client, cardNo, holderNo, pin string) outcome.Result {
	t.Helper()
	res, err := c.SetPIN(context.Background(), keysecure.SetRequest{CardNo: cardNo, CardholderNo: holderNo, PIN: secret.PINFromString(pin)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSetPINOnAPhysicalActivatedCard(t *testing.T) {
	h := newHarness(t, nil, nil)
	buf := []byte("482915")
	res, err := h.client.SetPIN(context.Background(), keysecure.SetRequest{CardNo: physical, CardholderNo: holder, PIN: secret.NewPIN(buf)})
	if err != nil || res.Kind != outcome.Changed {
		t.Fatalf("%v %v", res, err)
	}
	if !h.sim.PINIs(physical, "482915") || h.sim.PINSets() != 1 {
		t.Fatal("platform does not hold the PIN")
	}
	if !bytes.Equal(buf, make([]byte, 6)) {
		t.Fatal("clear PIN not wiped")
	}
	// What went over the wire is Base64 ciphertext, never the digits.
	for _, b := range h.sim.Received() {
		if bytes.Contains(b, []byte("482915")) {
			t.Fatal("clear PIN on the wire")
		}
	}
}

func TestRulesAreCheckedBeforeAnyCall(t *testing.T) {
	cases := []struct{ name, pin string }{
		{"five digits", "48291"}, {"seven digits", "4829150"}, {"repeated", "481115"},
		{"ascending", "123456"}, {"descending", "987654"}, {"letters", "48a915"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			res := set(t, h.client, physical, holder, c.pin)
			if res.Kind != outcome.WeakPIN || res.Code != "4016" {
				t.Fatalf("%v", res)
			}
			if h.calls.Load() != 0 {
				t.Fatalf("%d calls made for a PIN that breaks the rules", h.calls.Load())
			}
		})
	}
}

func TestCardRulesMapToOutcomes(t *testing.T) {
	cases := []struct {
		name, cardNo, holderNo string
		code                   string
	}{
		{"virtual card", "C202605220002", "U202605220002", "4017"},
		{"not activated", "C202605220003", "U202605220003", "4005"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			res := set(t, h.client, c.cardNo, c.holderNo, "482915")
			if res.Kind != outcome.NotEligible || res.Code != c.code {
				t.Fatalf("%v", res)
			}
			if h.sim.PINSets() != 0 {
				t.Fatal("PIN set on an ineligible card")
			}
		})
	}
}

// The simulator enforces the same rules itself when a client skips them.
func TestSimulatorRefusesWhatTheDocsForbid(t *testing.T) {
	h := newHarness(t, nil, nil)
	key, _ := keysecure.SecretKey(apiSecret)
	tok, err := h.client.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	encPIN := func(p string) string { s, _ := keysecure.EncryptECB(key, []byte(p)); return s }
	nowMS := func() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) }
	cases := []struct {
		name    string
		headers map[string]string
		path    string
		body    any
		code    int
	}{
		{"no Api-Key", map[string]string{"Api-Key": ""}, keysecure.PathSetPIN, nil, 1002},
		{"unknown Api-Key", map[string]string{"Api-Key": "other"}, keysecure.PathSetPIN, nil, 1008},
		{"timestamp 61 s old", map[string]string{"Timestamp": strconv.FormatInt(time.Now().Add(-61*time.Second).UnixMilli(), 10)}, keysecure.PathSetPIN, nil, 1005},
		{"timestamp in the future", map[string]string{"Timestamp": strconv.FormatInt(time.Now().Add(5*time.Second).UnixMilli(), 10)}, keysecure.PathSetPIN, nil, 1005},
		{"timestamp in seconds", map[string]string{"Timestamp": strconv.FormatInt(time.Now().Unix(), 10)}, keysecure.PathSetPIN, nil, 1005},
		{"no token", map[string]string{"Access-Token": ""}, keysecure.PathSetPIN, nil, 1006},
		{"bad token", map[string]string{"Access-Token": "nope"}, keysecure.PathSetPIN, nil, 1007},
		{"missing pin", nil, keysecure.PathSetPIN, map[string]string{"card_no": physical, "cardholder_no": holder}, 1004},
		{"virtual card", nil, keysecure.PathSetPIN, map[string]string{"card_no": "C202605220002", "cardholder_no": "U202605220002", "pin": encPIN("482915")}, 4017},
		{"not activated", nil, keysecure.PathSetPIN, map[string]string{"card_no": "C202605220003", "cardholder_no": "U202605220003", "pin": encPIN("482915")}, 4005},
		{"weak PIN", nil, keysecure.PathSetPIN, map[string]string{"card_no": physical, "cardholder_no": holder, "pin": encPIN("111111")}, 4016},
		{"four-digit PIN", nil, keysecure.PathSetPIN, map[string]string{"card_no": physical, "cardholder_no": holder, "pin": encPIN("4829")}, 4016},
		{"PIN not encrypted", nil, keysecure.PathSetPIN, map[string]string{"card_no": physical, "cardholder_no": holder, "pin": "482915"}, 4016},
		{"wrong cardholder", nil, keysecure.PathSetPIN, map[string]string{"card_no": physical, "cardholder_no": "U1", "pin": encPIN("482915")}, 2001},
		{"list without dates", nil, keysecure.PathCardList, map[string]any{"page": 0, "size": 10}, 1004},
		{"list over 90 days", nil, keysecure.PathCardList, map[string]any{"start_time": "2026-01-01", "end_time": "2026-06-01", "page": 0, "size": 10}, 1004},
		{"list size 101", nil, keysecure.PathCardList, map[string]any{"start_time": "2026-05-01", "end_time": "2026-06-01", "page": 0, "size": 101}, 1004},
		{"list ok", nil, keysecure.PathCardList, map[string]any{"start_time": "2026-05-01", "end_time": "2026-06-01", "page": 0, "size": 10}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, _ := json.Marshal(c.body)
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+c.path, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Api-Key", apiKey)
			req.Header.Set("Timestamp", nowMS())
			req.Header.Set("Access-Token", tok)
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env keysecure.Envelope
			_ = json.NewDecoder(resp.Body).Decode(&env)
			if env.Code != c.code {
				t.Fatalf("code %d (%s), want %d", env.Code, env.Msg, c.code)
			}
		})
	}
	if h.sim.PINSets() != 0 {
		t.Fatal("a refused request set a PIN")
	}
}

func TestIPAllowList(t *testing.T) {
	h := newHarness(t, func(c *keysecuresim.Config) { c.AllowedIPs = []string{"192.0.2.10"} }, nil)
	_, err := h.client.Token(context.Background())
	res, ok := keysecure.AsResult(err)
	if !ok || res.Code != "1003" || res.Kind != outcome.Unavailable {
		t.Fatalf("%v", err)
	}
}

func TestTokenIsCachedAndRenewedBeforeExpiry(t *testing.T) {
	var clockMu atomic.Int64
	clockMu.Store(now.UnixNano())
	nowFn := func() time.Time { return time.Unix(0, clockMu.Load()) }
	h := newHarness(t, func(c *keysecuresim.Config) { c.TokenTTL = time.Hour; c.Now = nowFn },
		func(c *keysecure.Config) { c.Now = nowFn; c.RenewBefore = 5 * time.Minute })
	t1, err := h.client.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := h.client.Token(context.Background())
	if t1 != t2 || h.calls.Load() != 1 {
		t.Fatalf("token not cached: %d calls", h.calls.Load())
	}
	clockMu.Add(int64(56 * time.Minute)) // within RenewBefore of expiry
	t3, _ := h.client.Token(context.Background())
	if t3 == t1 || h.calls.Load() != 2 {
		t.Fatal("token not renewed before expiry")
	}
}

func TestTokenExpiringMidRunIsRenewedOnce(t *testing.T) {
	h := newHarness(t, nil, nil)
	if _, err := h.client.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.sim.ExpireTokens()
	if res := set(t, h.client, physical, holder, "482915"); res.Kind != outcome.Changed {
		t.Fatalf("after the platform dropped the token: %v", res)
	}
	if h.sim.PINSets() != 1 {
		t.Fatal("PIN set more than once")
	}
}

func TestFaultsOnSetPIN(t *testing.T) {
	cases := []struct {
		name    string
		fault   faults.Fault
		want    outcome.Kind
		applied int
	}{
		{"slow beyond timeout", faults.Fault{Kind: faults.Delay, Delay: 1500 * time.Millisecond}, outcome.Ambiguous, 1},
		{"500", faults.Fault{Kind: faults.Status, Status: 500}, outcome.Ambiguous, 0},
		{"503", faults.Fault{Kind: faults.Status, Status: 503}, outcome.Unavailable, 0},
		{"reset after read", faults.Fault{Kind: faults.Reset}, outcome.Ambiguous, 1},
		{"malformed body", faults.Fault{Kind: faults.Malformed}, outcome.Ambiguous, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil, func(cfg *keysecure.Config) { cfg.Timeout = 700 * time.Millisecond })
			c.fault.Count, c.fault.Path = 1, keysecure.PathSetPIN
			h.sim.Faults.Set(c.fault)
			ctx := context.Background()
			res, err := h.client.SetPIN(ctx, keysecure.SetRequest{CardNo: physical, CardholderNo: holder, PIN: secret.PINFromString("482915")})
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != c.want {
				t.Fatalf("got %v, want %s", res, c.want)
			}
			deadline := time.Now().Add(3 * time.Second)
			for h.sim.PINSets() < c.applied && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if h.sim.PINSets() != c.applied {
				t.Fatalf("platform set %d PINs, want %d", h.sim.PINSets(), c.applied)
			}
		})
	}
}

func TestFindCardFromTypedPAN(t *testing.T) {
	fixed := func() time.Time { return now }
	h := newHarness(t, func(c *keysecuresim.Config) { c.Now = fixed }, func(c *keysecure.Config) { c.Now = fixed })
	// Fill the window with 250 cards sharing the last four digits (three pages),
	// virtual look-alikes, and the real card created a year ago in another window.
	for i := 0; i < 250; i++ {
		h.sim.AddCard(keysecure.Card{CardNo: fmt.Sprintf("C2026101%05d", i), CardholderNo: "U9", CardType: keysecure.TypePhysical,
			Status: keysecure.StatusActivated, Time: "2026-10-15 09:00:00"}, fmt.Sprintf("4000%08d4321", i), "2912")
	}
	h.sim.AddCard(keysecure.Card{CardNo: "C202511300001", CardholderNo: "U202511300001", CardType: keysecure.TypePhysical,
		Status: keysecure.StatusActivated, Time: "2025-11-30 09:00:00"}, "4539148803436467", "2911")
	h.sim.AddCard(keysecure.Card{CardNo: "C202511300002", CardholderNo: "U202511300002", CardType: keysecure.TypeVirtual,
		Status: keysecure.StatusActivated, Time: "2025-11-30 09:00:00"}, "4539148803436467", "2911")
	exp, _ := policy.ParseExpiry("2911", now)
	ref, err := h.client.FindCard(context.Background(), "4539148803436467", exp)
	if err != nil {
		t.Fatal(err)
	}
	if ref.CardNo != "C202511300001" || ref.CardholderNo != "U202511300001" {
		t.Fatalf("found %+v", ref)
	}
	// A wrong expiry does not match, even with the right PAN.
	exp2, _ := policy.ParseExpiry("2912", now)
	_, err = h.client.FindCard(context.Background(), "4539148803436467", exp2)
	if res, ok := keysecure.AsResult(err); !ok || res.Kind != outcome.NotEligible {
		t.Fatalf("wrong expiry: %v", err)
	}
}

func TestFindCardWithoutPCIDisplay(t *testing.T) {
	h := newHarness(t, func(c *keysecuresim.Config) { c.PCIDisplay = false }, nil)
	exp, _ := policy.ParseExpiry("3001", time.Now())
	_, err := h.client.FindCard(context.Background(), "4012888888881881", exp)
	res, ok := keysecure.AsResult(err)
	if !ok || res.Code != "1013" || res.Kind != outcome.Unavailable {
		t.Fatalf("%v", err)
	}
}

func TestECBKnownAnswerAndPadding(t *testing.T) {
	// AES-128 ECB of "123456" + PKCS#5 padding under the key "1234567890123456",
	// computed with: printf 123456 | openssl enc -aes-128-ecb -K 31323334353637383930313233343536 | base64
	key, _ := keysecure.SecretKey("1234567890123456")
	got, err := keysecure.EncryptECB(key, []byte("123456"))
	if err != nil {
		t.Fatal(err)
	}
	if got != knownECB {
		t.Fatalf("EncryptECB = %s, want %s", got, knownECB)
	}
	plain, err := keysecure.DecryptECB(key, got)
	if err != nil || string(plain) != "123456" {
		t.Fatal("round trip failed")
	}
	for _, bad := range []string{"", "!!", "AAAA", strings.Repeat("A", 24)} {
		if _, err := keysecure.DecryptECB(key, bad); err == nil {
			t.Errorf("DecryptECB(%q) accepted", bad)
		}
	}
	if _, err := keysecure.SecretKey("short"); err == nil {
		t.Fatal("5-byte apiSecret accepted")
	}
}

const knownECB = "yXVUkR45PFz0UfpbDB8/ew=="
