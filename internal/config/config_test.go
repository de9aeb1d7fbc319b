package config

import (
	"bytes"
	"os"
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

func TestRefusesWhatCannotWork(t *testing.T) {
	cases := []struct{ name, value string }{
		{"IVRPIN_LANGUAGES", "en,fr"},
		{"IVRPIN_LANGUAGES", "en,ar,en"},
		{"IVRPIN_LOG_LEVEL", "verbose"},
		{"IVRPIN_LIMIT_CARD_WINDOW", "0s"},
		{"IVRPIN_LIMIT_CALLER_LOCKOUT", "-1h"},
		{"IVRPIN_CALL_TIMEOUT", "-5s"},
		{"IVRPIN_DRAIN_TIMEOUT", "0s"},
		{"IVRPIN_HOST_WAIT_ANNOUNCE", "0s"},
		{"IVRPIN_NI_TIMEOUT", "0s"},
		{"IVRPIN_ARI_TIMEOUT", "-1s"},
		{"IVRPIN_AGENT_TRANSFER", "agents,queue,first"},
		{"IVRPIN_AGENT_TRANSFER", "agents,queue"},
		{"IVRPIN_AGENT_TRANSFER", ",queue,1"},
		{"IVRPIN_DRAIN_FALLBACK", "closed,s,0"},
		{"IVRPIN_REDIS_URL", "localhost:6379"},
		{"IVRPIN_ARI_WS_URL", "ws://"},
		{"IVRPIN_LIMIT_WITHHELD_MAX", "20"},
		{"IVRPIN_LIMIT_WITHHELD_MAX", "0"},
		{"IVRPIN_NI_CODES_UNKNOWN_CARD", "102,105"},
		{"IVRPIN_EXPIRY_ORDER", "DDMM"},
		{"IVRPIN_AGENT_ON_FAILURE", "sometimes"},
		{"IVRPIN_REDIS_SENTINELS", "127.0.0.1"},
		{"IVRPIN_REDIS_MIN_REPLICAS", "-2"},
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			t.Setenv(c.name, c.value)
			if c.name == "IVRPIN_REDIS_URL" || c.name == "IVRPIN_REDIS_SENTINELS" {
				t.Setenv("IVRPIN_LIMIT_KEY", "00112233445566778899aabbccddeeff")
				t.Setenv("IVRPIN_REDIS_MASTER", "ivr-pin")
			}
			_, err := Load()
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), c.name+":") {
				t.Fatalf("error does not name %s: %v", c.name, err)
			}
		})
	}
	for _, ok := range []struct{ name, value string }{
		{"IVRPIN_LANGUAGES", "ar,en,zh"}, {"IVRPIN_AGENT_TRANSFER", "agents,queue,1"}, {"IVRPIN_LOG_LEVEL", "warn"},
		{"IVRPIN_EXPIRY_ORDER", "YYMM"}, {"IVRPIN_AGENT_ON_FAILURE", "never"},
	} {
		t.Setenv(ok.name, ok.value)
		if _, err := Load(); err != nil {
			t.Errorf("%s=%s refused: %v", ok.name, ok.value, err)
		}
	}
}

func TestSecretsInsideURLsArePrintedAsSet(t *testing.T) {
	t.Setenv("IVRPIN_ARI_URL", "http://ivr-pin:ari-s3cret@127.0.0.1:8088/ari")
	t.Setenv("IVRPIN_NI_URL", "https://cards.bank.example/PCServices/CardPinChange?access_token=tok-s3cret&b=2")
	t.Setenv("IVRPIN_NI_BANK_ID", "TB01")
	t.Setenv("IVRPIN_NI_ZPK", zpkHex)
	t.Setenv("IVRPIN_KEYSECURE_URL", "https://ks:pw-s3cret@openplatform.keysecure.example")
	t.Setenv("IVRPIN_KEYSECURE_API_KEY", "k")
	t.Setenv("IVRPIN_KEYSECURE_API_SECRET", "0123456789abcdef")
	t.Setenv("IVRPIN_REDIS_URL", "redis://:redis-s3cret@127.0.0.1:6379/0")
	t.Setenv("IVRPIN_LIMIT_KEY", "00112233445566778899aabbccddeeff")
	cfg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cfg.Print(&out)
	if strings.Contains(out.String(), "s3cret") {
		t.Fatalf("a secret inside a URL was printed:\n%s", out.String())
	}
	for _, want := range []string{
		"IVRPIN_ARI_URL=http://ivr-pin:<set>@127.0.0.1:8088/ari\n",
		"IVRPIN_NI_URL=https://cards.bank.example/PCServices/CardPinChange?access_token=<set>&b=<set>\n",
		"IVRPIN_KEYSECURE_URL=https://ks:<set>@openplatform.keysecure.example\n",
		"IVRPIN_REDIS_URL=redis://:<set>@127.0.0.1:6379/0\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	if got := RedactURL(cfg.ARIURL); strings.Contains(got, "s3cret") {
		t.Fatalf("RedactURL: %s", got)
	}
}

// A setting's name without the IVRPIN_ prefix is never read as the setting
// (envconfig's fallback): a lab's LAB directory or another program's
// LOG_LEVEL change nothing, and stay in the environment.
func TestUnprefixedNamesAreNotSettings(t *testing.T) {
	t.Setenv("LAB", "/srv/ivr-pin-lab")
	t.Setenv("LOG_LEVEL", "trace")
	t.Setenv("MAX_TRIES", "99")
	cfg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Lab || cfg.LogLevel != "info" || cfg.MaxTries == 99 {
		t.Fatalf("read unprefixed names: lab %v, log level %q, max tries %d", cfg.Lab, cfg.LogLevel, cfg.MaxTries)
	}
	if os.Getenv("LAB") != "/srv/ivr-pin-lab" || os.Getenv("LOG_LEVEL") != "trace" {
		t.Fatal("the unprefixed variables were not put back")
	}
	t.Setenv("IVRPIN_LOG_LEVEL", "warn")
	if cfg, err := Load(); err != nil || cfg.LogLevel != "warn" {
		t.Fatalf("the prefixed setting: %v %v", cfg, err)
	}
}
