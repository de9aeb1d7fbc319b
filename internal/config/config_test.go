package config

import (
	"bytes"
	"strconv"
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
				if _, err := cfg.CardHost(nil); err != nil {
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
	ch, err := cfg.CardHost(nil)
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

// Outbound ARI: a listener without a password, a malformed address, or a
// certificate without its key is refused by name; the password never
// prints.
func TestOutboundListenSettings(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string // the variable named; "" = accepted
	}{
		{map[string]string{"IVRPIN_ARI_LISTEN": "127.0.0.1:8090"}, "IVRPIN_ARI_LISTEN_PASSWORD"},
		{map[string]string{"IVRPIN_ARI_LISTEN": "8090", "IVRPIN_ARI_LISTEN_PASSWORD": "pw-value-1-long-enough"}, "IVRPIN_ARI_LISTEN"},
		{map[string]string{"IVRPIN_ARI_LISTEN": "127.0.0.1:8090", "IVRPIN_ARI_LISTEN_PASSWORD": "pw-value-1-long-enough", "IVRPIN_ARI_LISTEN_USERNAME": ""}, "IVRPIN_ARI_LISTEN_USERNAME"},
		{map[string]string{"IVRPIN_ARI_LISTEN": ":8090", "IVRPIN_ARI_LISTEN_PASSWORD": "pw-value-1-long-enough", "IVRPIN_ARI_LISTEN_TLS_CERT": "/etc/c.pem"}, "IVRPIN_ARI_LISTEN_TLS_CERT"},
		{map[string]string{"IVRPIN_ARI_LISTEN": "127.0.0.1:8090", "IVRPIN_ARI_LISTEN_PASSWORD": "pw-value-1-long-enough"}, ""},
		{map[string]string{"IVRPIN_ARI_LISTEN_TLS_CERT": "/etc/c.pem"}, ""}, // ignored without a listener
	}
	for i, c := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, err := Load()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want+":")):
				t.Fatalf("error %v, want one naming %s", err, c.want)
			case c.want != "" && strings.Contains(err.Error(), "pw-value-1-long-enough"):
				t.Fatalf("the password is in the error: %v", err)
			}
			if cfg != nil {
				var b strings.Builder
				cfg.Print(&b)
				if strings.Contains(b.String(), "pw-value-1-long-enough") {
					t.Fatal("the listen password printed")
				}
			}
		})
	}
}

// An ARI link to or from another machine is encrypted or refused by name.
func TestARILinksAreEncryptedBeyondLoopback(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string // the variable named; "" = accepted
	}{
		{map[string]string{"IVRPIN_ARI_URL": "http://10.1.2.3:8088/ari"}, "IVRPIN_ARI_URL"},
		{map[string]string{"IVRPIN_ARI_URL": "http://asterisk.bank.example:8088/ari"}, "IVRPIN_ARI_URL"},
		{map[string]string{"IVRPIN_ARI_URL": "https://asterisk.bank.example:8089/ari", "IVRPIN_ARI_WS_URL": "ws://asterisk.bank.example:8088/ari/events"}, "IVRPIN_ARI_WS_URL"},
		{map[string]string{"IVRPIN_ARI_URL": "https://asterisk.bank.example:8089/ari"}, ""},
		{map[string]string{"IVRPIN_ARI_URL": "http://127.0.0.1:8088/ari"}, ""},
		{map[string]string{"IVRPIN_ARI_URL": "http://[::1]:8088/ari"}, ""},
		{map[string]string{"IVRPIN_ARI_URL": "http://10.1.2.3:8088/ari", "IVRPIN_ALLOW_INSECURE_HOSTS": "true"}, ""},
		{map[string]string{"IVRPIN_ARI_LISTEN": "0.0.0.0:8090", "IVRPIN_ARI_LISTEN_PASSWORD": "pw-value-1-long-enough"}, "IVRPIN_ARI_LISTEN"},
		{map[string]string{"IVRPIN_ARI_LISTEN": ":8090", "IVRPIN_ARI_LISTEN_PASSWORD": "pw-value-1-long-enough"}, "IVRPIN_ARI_LISTEN"},
		{map[string]string{"IVRPIN_ARI_LISTEN": ":8090", "IVRPIN_ARI_LISTEN_PASSWORD": "pw-value-1-long-enough",
			"IVRPIN_ARI_LISTEN_TLS_CERT": "/etc/c.pem", "IVRPIN_ARI_LISTEN_TLS_KEY": "/etc/k.pem"}, ""},
		{map[string]string{"IVRPIN_ARI_LISTEN": ":8090", "IVRPIN_ARI_LISTEN_PASSWORD": "pw-value-1-long-enough", "IVRPIN_ALLOW_INSECURE_HOSTS": "true"}, ""},
		{map[string]string{"IVRPIN_ARI_TLS_CA": "/nonexistent/ca.pem"}, "IVRPIN_ARI_TLS_CA"},
		{map[string]string{"IVRPIN_ARI_LISTEN_TRUSTED_PROXIES": "10.0.0.0/8,not-an-address"}, "IVRPIN_ARI_LISTEN_TRUSTED_PROXIES"},
		{map[string]string{"IVRPIN_ARI_LISTEN_TRUSTED_PROXIES": "10.0.0.0/8,127.0.0.1"}, ""},
		{map[string]string{"IVRPIN_ARI_LISTEN_MAX_FAILURES": "0"}, "IVRPIN_ARI_LISTEN_MAX_FAILURES"},
	}
	for i, c := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, err := Load()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want+":")):
				t.Fatalf("error %v, want one naming %s", err, c.want)
			}
			if err == nil && c.env["IVRPIN_ALLOW_INSECURE_HOSTS"] == "true" && len(cfg.InsecureARILinks()) == 0 {
				t.Fatal("an insecure link allowed in a lab is not reported for serve's warning")
			}
		})
	}
}
