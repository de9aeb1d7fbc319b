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
	last   atomic.Pointer[http.Header]
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
	h := &harness{sim: sim, calls: calls}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		hdr := r.Header.Clone()
		h.last.Store(&hdr)
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
	h.srv, h.client = srv, c
	return h
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
			if int(env.Code) != c.code {
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

func addCard(h *harness, cardNo, holderNo, typ, created, pan, expiry, cvv string) {
	at, err := time.Parse("2006-01-02 15:04:05", created)
	if err != nil {
		panic(err)
	}
	h.sim.AddCard(keysecuresim.Card{CardNo: cardNo, CardholderNo: holderNo, Type: typ, Status: keysecure.StatusActivated,
		Created: at, PAN: pan, Expiry: expiry, CVV: cvv})
}

func check(pan, yymm, code string) keysecure.CardCheck {
	exp, err := policy.ParseExpiry(yymm, now)
	if err != nil {
		panic(err)
	}
	return keysecure.CardCheck{PAN: secret.PAN(pan), Expiry: exp, Code: secret.NewSecurityCode([]byte(code))}
}

func kindOf(err error) outcome.Kind {
	res, _ := keysecure.AsResult(err)
	return res.Kind
}

func TestVerifyCardFromTypedPAN(t *testing.T) {
	fixed := func() time.Time { return now }
	h := newHarness(t, func(c *keysecuresim.Config) { c.Now = fixed }, func(c *keysecure.Config) { c.Now = fixed })
	// Fill the window with 250 cards with other last four digits (three pages),
	// a virtual look-alike, and the real card created a year ago in another window.
	for i := 0; i < 250; i++ {
		addCard(h, fmt.Sprintf("C2026101%05d", i), "U9", keysecure.TypePhysical, "2026-10-15 09:00:00", fmt.Sprintf("4000%08d4321", i), "2912", "111")
	}
	addCard(h, "C202511300001", "U202511300001", keysecure.TypePhysical, "2025-11-30 09:00:00", "4539148803436467", "2911", "364")
	addCard(h, "C202511300002", "U202511300002", keysecure.TypeVirtual, "2025-11-30 09:00:00", "4539148803436467", "2911", "364")
	chk := check("4539148803436467", "2911", "364")
	ref, err := h.client.VerifyCard(context.Background(), chk)
	if err != nil {
		t.Fatal(err)
	}
	if ref.CardNo != "C202511300001" || ref.CardholderNo != "U202511300001" {
		t.Fatalf("found %+v", ref)
	}
	if !chk.Code.Wiped() {
		t.Fatal("security code not wiped")
	}
	// Only the one physical card with the same last four had its private info read.
	if n := h.sim.Calls(keysecuresim.RoutePrivateInfo); n != 1 {
		t.Fatalf("private info read for %d cards", n)
	}
	// Any one detail wrong is a mismatch, and the answer never says which.
	for name, c := range map[string]keysecure.CardCheck{
		"wrong expiry":        check("4539148803436467", "2912", "364"),
		"wrong security code": check("4539148803436467", "2911", "365"),
	} {
		if _, err := h.client.VerifyCard(context.Background(), c); kindOf(err) != outcome.DetailsMismatch {
			t.Errorf("%s: %v", name, err)
		}
		if res, _ := keysecure.AsResult(err); strings.Contains(res.Description, "expiry") || strings.Contains(res.Description, "code") {
			t.Errorf("%s: the answer says which detail: %q", name, res.Description)
		}
	}
}

func TestVerifyCardNamedByAnAgentChecksTheCode(t *testing.T) {
	h := newHarness(t, nil, nil)
	ok := keysecure.CardCheck{CardNo: physical, Code: secret.NewSecurityCode([]byte("731"))}
	ref, err := h.client.VerifyCard(context.Background(), ok)
	if err != nil || ref.CardholderNo != holder {
		t.Fatalf("%+v %v", ref, err)
	}
	bad := keysecure.CardCheck{CardNo: physical, CardholderNo: holder, Code: secret.NewSecurityCode([]byte("137"))}
	if _, err := h.client.VerifyCard(context.Background(), bad); kindOf(err) != outcome.DetailsMismatch {
		t.Fatalf("wrong code: %v", err)
	}
	none := keysecure.CardCheck{CardNo: physical, CardholderNo: holder}
	if _, err := h.client.VerifyCard(context.Background(), none); kindOf(err) != outcome.DetailsMismatch {
		t.Fatalf("no code: %v", err)
	}
}

func TestVerifyCardWithoutPCIDisplayCannotVerify(t *testing.T) {
	h := newHarness(t, func(c *keysecuresim.Config) { c.PCIDisplay = false }, nil)
	_, err := h.client.VerifyCard(context.Background(), check("4012888888881881", "3001", "731"))
	res, ok := keysecure.AsResult(err)
	if !ok || res.Code != "1013" || res.Kind != outcome.CannotVerify {
		t.Fatalf("%v", err)
	}
}

func TestCardSearchIsBounded(t *testing.T) {
	h := newHarness(t, func(c *keysecuresim.Config) { c.EndlessList = true }, func(c *keysecure.Config) { c.MaxListRequests = 12 })
	_, err := h.client.VerifyCard(context.Background(), check("4012888888881881", "3001", "731"))
	if kindOf(err) != outcome.CannotVerify {
		t.Fatalf("%v", err)
	}
	if n := h.sim.Calls(keysecuresim.RouteCardList); n != 12 {
		t.Fatalf("%d card list requests, want the bound of 12", n)
	}
}

func TestCardSearchStopsWhenTheCallerHangsUp(t *testing.T) {
	h := newHarness(t, func(c *keysecuresim.Config) { c.EndlessList = true }, nil)
	h.sim.Faults.Set(faults.Fault{Kind: faults.Delay, Delay: 30 * time.Millisecond, Path: keysecure.PathCardList})
	ctx, hangUp := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.client.VerifyCard(ctx, check("4012888888881881", "3001", "731"))
		done <- err
	}()
	for h.sim.Calls(keysecuresim.RouteCardList) < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	hangUp()
	err := <-done
	if kindOf(err) == outcome.Verified || err == nil {
		t.Fatalf("%v", err)
	}
	after := h.sim.Calls(keysecuresim.RouteCardList)
	time.Sleep(100 * time.Millisecond)
	if n := h.sim.Calls(keysecuresim.RouteCardList); n != after || n >= 40 {
		t.Fatalf("the search went on after the hang-up: %d then %d requests", after, n)
	}
}

func TestPrivateInfoIsReadForAHandfulOfCardsOnly(t *testing.T) {
	fixed := func() time.Time { return now }
	h := newHarness(t, func(c *keysecuresim.Config) { c.Now = fixed }, func(c *keysecure.Config) { c.Now = fixed })
	for i := 0; i < 10; i++ {
		addCard(h, fmt.Sprintf("C2026110%05d", i), "U8", keysecure.TypePhysical, "2026-11-01 09:00:00", fmt.Sprintf("5200%08d6467", i), "2912", "999")
	}
	_, err := h.client.VerifyCard(context.Background(), check("4539148803436467", "2911", "364"))
	if kindOf(err) != outcome.DetailsMismatch {
		t.Fatalf("%v", err)
	}
	if n := h.sim.Calls(keysecuresim.RoutePrivateInfo); n != 3 {
		t.Fatalf("private info read for %d cards, want at most 3", n)
	}
}

func TestAnIndependentPlatformsDialect(t *testing.T) {
	fixed := func() time.Time { return now }
	h := newHarness(t, func(c *keysecuresim.Config) { c.Now = fixed; c.TimeAsNumber = true; c.OmitSetResult = true },
		func(c *keysecure.Config) { c.Now = fixed })
	ref, err := h.client.VerifyCard(context.Background(), check("4012888888881881", "3001", "731"))
	if err != nil {
		t.Fatalf("card list with a numeric time: %v", err)
	}
	res, err := h.client.SetPIN(context.Background(), keysecure.SetRequest{CardNo: ref.CardNo, CardholderNo: ref.CardholderNo, PIN: secret.PINFromString("482915")})
	if err != nil || res.Kind != outcome.Changed {
		t.Fatalf("code 0 without data.result: %v %v", res, err)
	}
}

func TestRedirectsAreNeverFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	for _, path := range []string{keysecure.PathToken, keysecure.PathSetPIN} {
		t.Run(path, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			if path != keysecure.PathToken {
				if _, err := h.client.Token(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			h.sim.Faults.Set(faults.Fault{Kind: faults.Redirect, Location: other.URL + path, Path: path})
			res := set(t, h.client, physical, holder, "482915")
			if res.Kind != outcome.Unavailable || !strings.Contains(res.Description, "redirect") {
				t.Fatalf("%v", res)
			}
			if elsewhere.Load() != 0 || h.sim.PINSets() != 0 {
				t.Fatalf("redirect followed: %d requests elsewhere", elsewhere.Load())
			}
		})
	}
}

func TestTimestampAllowsForAFastClock(t *testing.T) {
	fast := func() time.Time { return time.Now().Add(5 * time.Second) }
	h := newHarness(t, nil, func(c *keysecure.Config) { c.Now = fast })
	if _, err := h.client.Token(context.Background()); err == nil || !strings.Contains(err.Error(), "1005") {
		t.Fatalf("5 s fast with the default 2 s skew: %v", err)
	}
	h2 := newHarness(t, nil, func(c *keysecure.Config) { c.Now = fast; c.ClockSkew = 8 * time.Second })
	if _, err := h2.client.Token(context.Background()); err != nil {
		t.Fatalf("5 s fast with an 8 s skew: %v", err)
	}
	ts, _ := strconv.ParseInt(h2.last.Load().Get("Timestamp"), 10, 64)
	if d := time.Since(time.UnixMilli(ts)); d < 2*time.Second || d > 4*time.Second {
		t.Fatalf("Timestamp %s behind now, want about 3 s", d)
	}
}

func TestTimezoneAndLanguageHeaders(t *testing.T) {
	h := newHarness(t, nil, func(c *keysecure.Config) { c.Timezone = "UTC+4"; c.Language = "en_US" })
	if _, err := h.client.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if hdr := *h.last.Load(); hdr.Get("Timezone") != "UTC+4" || hdr.Get("Language") != "en_US" {
		t.Fatalf("headers %v", hdr)
	}
}

func TestPlainHTTPToAnotherHostIsRefused(t *testing.T) {
	key, _ := keysecure.SecretKey(apiSecret)
	for _, u := range []string{"http://openplatform.keysecure.example", "not a url", "ftp://x"} {
		if _, err := keysecure.New(keysecure.Config{BaseURL: u, APIKey: apiKey, APISecret: key}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	if _, err := keysecure.New(keysecure.Config{BaseURL: "http://openplatform.keysecure.example", APIKey: apiKey, APISecret: key, AllowInsecure: true}); err != nil {
		t.Errorf("explicitly allowed: %v", err)
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
