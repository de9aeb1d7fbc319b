package config

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestISO4WithSymmetricIsRefused(t *testing.T) {
	t.Setenv("IVRPIN_NI_PINBLOCK_FORMAT", "ISO4")
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "IVRPIN_NI_PINBLOCK_FORMAT") {
		t.Fatalf("%v", err)
	}
}

// Start-up refuses host settings that cannot work or would weaken the line,
// naming the variable.
func TestHostSettingsAreCheckedAtStartUp(t *testing.T) {
	ni := map[string]string{"IVRPIN_NI_URL": "https://cards.bank.example/PCServices/CardPinChange", "IVRPIN_NI_BANK_ID": "TB01", "IVRPIN_NI_ZPK": zpkHex}
	cases := []struct {
		name    string
		env     map[string]string
		wantVar string // "" means accepted
	}{
		{"https card host", nil, ""},
		{"plain http card host elsewhere", map[string]string{"IVRPIN_NI_URL": "http://cards.bank.example/x"}, "IVRPIN_NI_URL"},
		{"plain http card host on loopback", map[string]string{"IVRPIN_NI_URL": "http://127.0.0.1:8081/x"}, ""},
		{"plain http elsewhere, lab allowed", map[string]string{"IVRPIN_NI_URL": "http://cards.lab.example/x", "IVRPIN_ALLOW_INSECURE_HOSTS": "true"}, ""},
		{"card host URL that does not parse", map[string]string{"IVRPIN_NI_URL": "https://%zz/x"}, "IVRPIN_NI_URL"},
		{"relative card host URL", map[string]string{"IVRPIN_NI_URL": "cards.bank.example/x"}, "IVRPIN_NI_URL"},
		{"plain http token URL", map[string]string{"IVRPIN_NI_TOKEN_URL": "http://idp.bank.example/token", "IVRPIN_NI_CLIENT_ID": "c", "IVRPIN_NI_CLIENT_SECRET": "s"}, "IVRPIN_NI_TOKEN_URL"},
		{"plain http KeySecure", map[string]string{"IVRPIN_KEYSECURE_URL": "http://openplatform.keysecure.example", "IVRPIN_KEYSECURE_API_KEY": "k", "IVRPIN_KEYSECURE_API_SECRET": "0123456789abcdef"}, "IVRPIN_KEYSECURE_URL"},
		{"ASYNC_ENC with ISO4", map[string]string{"IVRPIN_NI_ENCRYPTION_METHOD": "ASYNC_ENC", "IVRPIN_NI_PINBLOCK_FORMAT": "ISO4"}, "IVRPIN_NI_PINBLOCK_FORMAT"},
		{"unknown MGF1 hash", map[string]string{"IVRPIN_NI_ENCRYPTION_METHOD": "ASYNC_ENC", "IVRPIN_NI_RSA_MGF1_HASH": "MD5"}, "IVRPIN_NI_RSA_MGF1_HASH"},
		{"MGF1 hash with PKCS#1 v1.5", map[string]string{"IVRPIN_NI_ENCRYPTION_METHOD": "ASYNC_ENC", "IVRPIN_NI_RSA_PADDING": "PKCS1v15", "IVRPIN_NI_RSA_MGF1_HASH": "SHA1"}, "IVRPIN_NI_RSA_MGF1_HASH"},
		{"src application too long", map[string]string{"IVRPIN_NI_SRC_APPLICATION": "INTERACTIVE"}, "IVRPIN_NI_SRC_APPLICATION"},
		{"unknown timestamp format", map[string]string{"IVRPIN_NI_TIMESTAMP_FORMAT": "unix"}, "IVRPIN_NI_TIMESTAMP_FORMAT"},
		{"legacy timestamp format", map[string]string{"IVRPIN_NI_TIMESTAMP_FORMAT": "legacy"}, ""},
		{"sequence numbers by BIN", map[string]string{"IVRPIN_NI_SEQUENCE_BY_BIN": "411111:01,555555:00"}, ""},
		{"bad sequence number", map[string]string{"IVRPIN_NI_SEQUENCE_BY_BIN": "411111:1"}, "IVRPIN_NI_SEQUENCE_BY_BIN"},
		{"clock skew over 30 s", map[string]string{"IVRPIN_KEYSECURE_CLOCK_SKEW": "1m"}, "IVRPIN_KEYSECURE_CLOCK_SKEW"},
		{"no card search", map[string]string{"IVRPIN_KEYSECURE_MAX_LIST_REQUESTS": "0"}, "IVRPIN_KEYSECURE_MAX_LIST_REQUESTS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range ni {
				t.Setenv(k, v)
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, err := Load()
			switch {
			case c.wantVar == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.wantVar != "" && err == nil:
				t.Fatal("accepted")
			case c.wantVar != "" && !strings.HasPrefix(err.Error(), c.wantVar+":"):
				t.Fatalf("error does not name %s: %v", c.wantVar, err)
			}
			if err == nil {
				if _, err := cfg.CardHostClient(nil, nil); err != nil {
					t.Fatalf("card host client config: %v", err)
				}
			}
		})
	}
}

func TestSequenceNumbersReachTheClient(t *testing.T) {
	t.Setenv("IVRPIN_NI_URL", "https://cards.bank.example/x")
	t.Setenv("IVRPIN_NI_BANK_ID", "TB01")
	t.Setenv("IVRPIN_NI_ZPK", zpkHex)
	t.Setenv("IVRPIN_NI_SEQUENCE_BY_BIN", "411111:01,555555:00")
	cfg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	ch, err := cfg.CardHostClient(nil, nil)
	if err != nil || ch.SequenceByBIN["411111"] != "01" || ch.SequenceByBIN["555555"] != "00" || ch.SrcApplication != "IVR" || ch.TargetApplication != "PCMS" {
		t.Fatalf("%+v %v", ch, err)
	}
	var out bytes.Buffer
	cfg.Print(&out)
	if !strings.Contains(out.String(), "IVRPIN_NI_SEQUENCE_BY_BIN=411111:01,555555:00\n") {
		t.Fatalf("config print: %s", out.String())
	}
}

// What cannot work, or would weaken the line, stops start-up naming the
// variable (each of these was accepted before).

// A rotation needs its next key, an id of its own beside the current
// key's, and an instant; it must be a new key; and it reaches the client.
func TestRotationSettings(t *testing.T) {
	const nextHex = "89ABCDEF0123456776543210FEDCBA98"
	base := map[string]string{"IVRPIN_NI_URL": "https://cards.bank.example/x", "IVRPIN_NI_BANK_ID": "TB01", "IVRPIN_NI_ZPK": zpkHex,
		"IVRPIN_NI_KEY_ID": "zpk-2026", "IVRPIN_NI_ZPK_NEXT": nextHex, "IVRPIN_NI_NEXT_KEY_ID": "zpk-2027",
		"IVRPIN_NI_ZPK_NEXT_FROM": "2027-01-04T02:00:00Z"}
	cases := []struct {
		name    string
		env     map[string]string // "" unsets
		wantVar string
		says    string
	}{
		{"a rotation", nil, "", ""},
		{"no next id", map[string]string{"IVRPIN_NI_NEXT_KEY_ID": ""}, "IVRPIN_NI_NEXT_KEY_ID", "required with a next key"},
		{"no current id", map[string]string{"IVRPIN_NI_KEY_ID": ""}, "IVRPIN_NI_KEY_ID", "tell the keys apart"},
		{"the same id", map[string]string{"IVRPIN_NI_NEXT_KEY_ID": "zpk-2026"}, "IVRPIN_NI_NEXT_KEY_ID", "an id of its own"},
		{"no instant", map[string]string{"IVRPIN_NI_ZPK_NEXT_FROM": ""}, "IVRPIN_NI_ZPK_NEXT_FROM", "RFC 3339"},
		{"not an instant", map[string]string{"IVRPIN_NI_ZPK_NEXT_FROM": "next monday"}, "IVRPIN_NI_ZPK_NEXT_FROM", "RFC 3339"},
		{"the current key again", map[string]string{"IVRPIN_NI_ZPK_NEXT": zpkHex}, "IVRPIN_NI_ZPK_NEXT", "must be a new key"},
		{"no next key", map[string]string{"IVRPIN_NI_ZPK_NEXT": ""}, "IVRPIN_NI_ZPK_NEXT_LABEL", "the next key"},
		{"a token next key beside a software one", map[string]string{"IVRPIN_NI_ZPK_NEXT": "", "IVRPIN_NI_ZPK_NEXT_LABEL": "zpk-2027"},
			"IVRPIN_NI_ZPK_NEXT_LABEL", "needs the current key in the token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range base {
				t.Setenv(k, v)
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, errs := LoadAll()
			var got error
			for _, e := range errs {
				if c.wantVar != "" && strings.HasPrefix(e.Error(), c.wantVar+":") {
					got = e
				}
			}
			switch {
			case c.wantVar == "" && len(errs) > 0:
				t.Fatalf("refused: %v", errs)
			case c.wantVar != "" && (got == nil || !strings.Contains(got.Error(), c.says)):
				t.Fatalf("got %v, want %s: ...%s", errs, c.wantVar, c.says)
			}
			if strings.Contains(fmt.Sprint(errs), nextHex) {
				t.Fatal("an error repeats the key")
			}
			if c.wantVar == "" {
				ch, err := cfg.CardHostClient(nil, nil)
				if err != nil || ch.Next == nil || ch.Next.KeyID != "zpk-2027" || ch.Next.From.Format(time.RFC3339) != "2027-01-04T02:00:00Z" {
					t.Fatalf("client's next key: %+v %v", ch.Next, err)
				}
			}
		})
	}
	// The token's: its KCV must not be the current key's.
	cfg := &Config{}
	cfg.NIZPKLabel, cfg.NIZPKKCV, cfg.NIKeyID = "zpk-2026", "08D7B4", "zpk-2026"
	cfg.NIZPKNextLabel, cfg.NIZPKNextKCV, cfg.NINextKeyID, cfg.NIZPKNextFrom = "zpk-2027", "08d7b4", "zpk-2027", "2027-01-04T02:00:00Z"
	if errs := cfg.rotationProblems(); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "IVRPIN_NI_ZPK_NEXT_KCV: is the current key's KCV") {
		t.Fatalf("%v", errs)
	}
}
