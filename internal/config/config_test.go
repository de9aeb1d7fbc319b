package config

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

const zpkHex = "0123456789ABCDEFFEDCBA9876543210"

func TestDefaults(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.ARIURL != "http://127.0.0.1:8088/ari" || c.ARIApplication != "ivr-pin" || c.FirstDigitTimeout != 8*time.Second ||
		c.InterDigitTimeout != 5*time.Second || c.MaxTries != 3 || c.Languages[0] != "en" || c.NIPINBlockFormat != "ISO0" {
		t.Fatalf("defaults: %+v", c)
	}
	if got := c.WebsocketURL(); got != "ws://127.0.0.1:8088/ari/events" {
		t.Fatalf("WebsocketURL = %s", got)
	}
}

func TestMalformedValuesNameTheVariableAndNeverEchoIt(t *testing.T) {
	cases := []struct{ name, value, wantVar string }{
		{"IVRPIN_NI_TIMEOUT", "ten-seconds-SECRETISH", "IVRPIN_NI_TIMEOUT"},
		{"IVRPIN_MAX_TRIES", "lots-SECRETISH", "IVRPIN_MAX_TRIES"},
		{"IVRPIN_NI_PINBLOCK_FORMAT", "ISO9-SECRETISH", "IVRPIN_NI_PINBLOCK_FORMAT"},
		{"IVRPIN_ARI_URL", "ftp://SECRETISH", "IVRPIN_ARI_URL"},
		{"IVRPIN_KEYSECURE_API_SECRET", "short-SECRETISH", "IVRPIN_KEYSECURE_API_SECRET"},
		{"IVRPIN_NI_ZPK", "00112233SECRETISH", "IVRPIN_NI_ZPK"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(c.name, c.value)
			if strings.HasPrefix(c.name, "IVRPIN_KEYSECURE") {
				t.Setenv("IVRPIN_KEYSECURE_URL", "http://127.0.0.1:1")
				t.Setenv("IVRPIN_KEYSECURE_API_KEY", "k")
			}
			if c.name == "IVRPIN_NI_ZPK" {
				t.Setenv("IVRPIN_NI_URL", "http://127.0.0.1:1/x")
				t.Setenv("IVRPIN_NI_BANK_ID", "TB01")
			}
			_, err := Load()
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), c.wantVar+":") {
				t.Fatalf("error does not name %s: %v", c.wantVar, err)
			}
			if strings.Contains(err.Error(), "SECRETISH") {
				t.Fatalf("error echoes the value: %v", err)
			}
		})
	}
}

func TestPrintShowsSecretsOnlyAsSetOrKCV(t *testing.T) {
	t.Setenv("IVRPIN_NI_URL", "https://host.example/PCServices/CardPinChange")
	t.Setenv("IVRPIN_NI_BANK_ID", "TB01")
	t.Setenv("IVRPIN_NI_ZPK", zpkHex)
	t.Setenv("IVRPIN_NI_CLIENT_SECRET", "client-secret-value")
	t.Setenv("IVRPIN_ARI_PASSWORD", "ari-password-value")
	t.Setenv("IVRPIN_KEYSECURE_URL", "https://ks.example")
	t.Setenv("IVRPIN_KEYSECURE_API_KEY", "api-key-value")
	t.Setenv("IVRPIN_KEYSECURE_API_SECRET", "0123456789abcdef")
	t.Setenv("IVRPIN_REDIS_URL", "redis://:redis-pass-value@127.0.0.1:6379/0")
	t.Setenv("IVRPIN_LIMIT_KEY", "00112233445566778899aabbccddeeff")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	c.Print(&buf)
	out := buf.String()
	for _, s := range []string{zpkHex, "client-secret-value", "ari-password-value", "api-key-value", "0123456789abcdef", "redis-pass-value", "00112233445566778899"} {
		if strings.Contains(out, s) {
			t.Fatalf("config dump shows a secret:\n%s", out)
		}
	}
	for _, want := range []string{"IVRPIN_NI_ZPK=<set, KCV 08D7B4>", "IVRPIN_ARI_PASSWORD=<set>", "IVRPIN_NI_TLS_CERT=", "IVRPIN_NI_BANK_ID=TB01"} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %q in:\n%s", want, out)
		}
	}
}

func TestISO4WithSymmetricIsRefused(t *testing.T) {
	t.Setenv("IVRPIN_NI_PINBLOCK_FORMAT", "ISO4")
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "IVRPIN_NI_PINBLOCK_FORMAT") {
		t.Fatalf("%v", err)
	}
}

func TestDescribeListsEverySetting(t *testing.T) {
	var buf bytes.Buffer
	Describe(&buf)
	for _, v := range []string{"IVRPIN_NI_URL", "IVRPIN_NI_BANK_ID", "IVRPIN_NI_ENCRYPTION_METHOD", "IVRPIN_NI_PINBLOCK_FORMAT",
		"IVRPIN_NI_ZPK", "IVRPIN_NI_CERT_FILE", "IVRPIN_NI_TOKEN_URL", "IVRPIN_NI_CLIENT_ID", "IVRPIN_NI_CLIENT_SECRET",
		"IVRPIN_NI_TLS_CERT", "IVRPIN_NI_TLS_KEY", "IVRPIN_NI_TLS_CA", "IVRPIN_NI_TIMEOUT", "IVRPIN_KEYSECURE_URL",
		"IVRPIN_KEYSECURE_API_KEY", "IVRPIN_KEYSECURE_API_SECRET", "IVRPIN_KEYSECURE_TIMEOUT", "IVRPIN_ARI_URL",
		"IVRPIN_ARI_WS_URL", "IVRPIN_ARI_USERNAME", "IVRPIN_ARI_PASSWORD", "IVRPIN_ARI_APPLICATION", "IVRPIN_LANGUAGES",
		"IVRPIN_REDIS_URL", "IVRPIN_METRICS_ADDR"} {
		if !strings.Contains(buf.String(), "`"+v+"`") {
			t.Errorf("%s not described", v)
		}
	}
}

func TestRedisNeedsASharedLimitKey(t *testing.T) {
	t.Setenv("IVRPIN_REDIS_URL", "redis://127.0.0.1:6379/0")
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "IVRPIN_LIMIT_KEY") {
		t.Fatalf("%v", err)
	}
}
