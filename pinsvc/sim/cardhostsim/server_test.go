package cardhostsim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/cardhostsim"
)

func zpk(t *testing.T) *pinblock.ZPK {
	k, _ := secret.ParseHexKey(secret.TDES, "0123456789ABCDEFFEDCBA9876543210")
	z, err := pinblock.NewZPK(k, pinblock.ISO0)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// validRequest is a request the simulator accepts, as a generic map so each
// case can break one documented rule.
func validRequest(t *testing.T, z *pinblock.ZPK, msgID string) map[string]any {
	oldB, _ := z.Encrypt([]byte("7392"), "4111111111111111")
	newB, _ := z.Encrypt([]byte("4829"), "4111111111111111")
	return map[string]any{"NISrvRequest": map[string]any{"request_card_pin_change": map[string]any{
		"header": map[string]any{
			"msg_id": msgID, "msg_type": "TRANSACTION", "msg_function": "REQ_CARD_PIN_CHANGE",
			"src_application": "IVR", "target_application": "PCMS",
			"timestamp": time.Now().Format("2006-01-02T15:04:05.000-07:00"), "tracking_id": "12345df",
			"bank_id": "TB01", "instance_id": nil,
		},
		"body": map[string]any{
			"card_number": "4111111111111111", "card_sequence_number": "01", "card_expiry_date": "2812",
			"encrypted_old_pin": oldB, "encrypted_new_pin": newB, "encryption_method": "SYMMETRIC_ENC",
		},
	}}}
}

// details is what these tests read of an answer, decoded here rather than
// with the client's types.
type details struct {
	Status           string `json:"status"`
	ErrorCode        string `json:"error_code"`
	ErrorDescription string `json:"error_description"`
}

func post(t *testing.T, url string, doc any) (int, details) {
	t.Helper()
	b, _ := json.Marshal(doc)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		NISrvResponse struct {
			ResponseCardPINChange *struct {
				ExceptionDetails details `json:"exception_details"`
			} `json:"response_card_pin_change"`
		} `json:"NISrvResponse"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	if r.NISrvResponse.ResponseCardPINChange == nil {
		return resp.StatusCode, details{}
	}
	return resp.StatusCode, r.NISrvResponse.ResponseCardPINChange.ExceptionDetails
}

func TestSimulatorRefusesEveryBrokenRule(t *testing.T) {
	z := zpk(t)
	set := func(part, field string, v any) func(map[string]any) {
		return func(m map[string]any) {
			m["NISrvRequest"].(map[string]any)["request_card_pin_change"].(map[string]any)[part].(map[string]any)[field] = v
		}
	}
	cases := []struct {
		name   string
		mutate func(map[string]any)
		code   string
	}{
		{"msg_id missing", set("header", "msg_id", ""), "101"},
		{"msg_id over 12", set("header", "msg_id", "1234567890123"), "101"},
		{"msg_type wrong", set("header", "msg_type", "ENQUIRY"), "101"},
		{"msg_function wrong", set("header", "msg_function", "REQ_CARD_SET_PIN"), "101"},
		{"src_application over 10", set("header", "src_application", "IVR-SYSTEM-1"), "101"},
		{"target_application missing", set("header", "target_application", ""), "101"},
		{"timestamp unreadable", set("header", "timestamp", "yesterday"), "101"},
		{"tracking_id over 15", set("header", "tracking_id", "1234567890123456"), "101"},
		{"bank_id over 4", set("header", "bank_id", "BANK1"), "101"},
		{"bank_id unknown", set("header", "bank_id", "XX99"), "111"},
		{"instance_id over 10", set("header", "instance_id", "12345678901"), "101"},
		{"card number 15 digits", set("body", "card_number", "411111111111111"), "101"},
		{"card number letters", set("body", "card_number", "41111111111111AB"), "101"},
		{"expiry month 13", set("body", "card_expiry_date", "2813"), "101"},
		{"expiry 5 digits", set("body", "card_expiry_date", "28123"), "101"},
		{"sequence 3 digits", set("body", "card_sequence_number", "001"), "101"},
		{"old pin block over 20", set("body", "encrypted_old_pin", "0123456789ABCDEF01234"), "101"},
		{"new pin block missing", set("body", "encrypted_new_pin", ""), "101"},
		{"method unknown", set("body", "encryption_method", "PLAIN"), "101"},
		{"pin block garbage", set("body", "encrypted_old_pin", "ZZZZZZZZZZZZZZZZ"), "109"},
		{"legacy timestamp form accepted", set("header", "timestamp", "21/05/2026 15:13:18"), "000"},
		{"another source application", set("header", "src_application", "WEB"), "101"},
		{"another target application", set("header", "target_application", "CMS"), "101"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := cardhostsim.New(cardhostsim.Config{BankID: "TB01", ZPK: z}).WithTestCards()
			srv := httptest.NewServer(sim)
			defer srv.Close()
			doc := validRequest(t, z, "T"+string(rune('A'+i)))
			c.mutate(doc)
			status, ed := post(t, srv.URL+cardhostsim.Route, doc)
			if status != 200 || ed.ErrorCode != c.code {
				t.Fatalf("HTTP %d code %q (%s), want %s", status, ed.ErrorCode, ed.ErrorDescription, c.code)
			}
			if (c.code == "000") != (sim.Applied() == 1) {
				t.Fatalf("applied %d for code %s", sim.Applied(), c.code)
			}
		})
	}
}

func TestSimulatorRefusesRepeatedMsgID(t *testing.T) {
	z := zpk(t)
	sim := cardhostsim.New(cardhostsim.Config{BankID: "TB01", ZPK: z}).WithTestCards()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	if _, ed := post(t, srv.URL+cardhostsim.Route, validRequest(t, z, "DUP1")); ed.ErrorCode != "000" {
		t.Fatalf("first: %v", ed)
	}
	if _, ed := post(t, srv.URL+cardhostsim.Route, validRequest(t, z, "DUP1")); ed.ErrorCode != "108" {
		t.Fatalf("repeat: %v", ed)
	}
	if sim.Applied() != 1 {
		t.Fatal("a repeated message changed the PIN twice")
	}
}

func TestSimulatorTransportRules(t *testing.T) {
	sim := cardhostsim.New(cardhostsim.Config{BankID: "TB01", ZPK: zpk(t), ClientID: "ivr", ClientSecret: "x"})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	resp, _ := http.Get(srv.URL + cardhostsim.Route)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	resp, _ = http.Post(srv.URL+cardhostsim.Route, "text/plain", bytes.NewReader([]byte("{}")))
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d", resp.StatusCode)
	}
	resp, _ = http.Post(srv.URL+cardhostsim.Route, "application/json", bytes.NewReader([]byte("{}")))
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no bearer token: %d", resp.StatusCode)
	}
}
