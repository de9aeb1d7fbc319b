package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func writeSecret(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

// Every secret has a _FILE twin, read from a file only its owner can read,
// with one trailing newline dropped; given both ways it is refused.
func TestSecretsFromFiles(t *testing.T) {
	vars := SecretVariables()
	for _, want := range []string{"IVRPIN_NI_ZPK", "IVRPIN_KEYSECURE_API_SECRET", "IVRPIN_ARI_PASSWORD", "IVRPIN_ARI_LISTEN_PASSWORD",
		"IVRPIN_NI_CLIENT_SECRET", "IVRPIN_LIMIT_KEY", "IVRPIN_PKCS11_PIN", "IVRPIN_REDIS_PASSWORD"} {
		found := false
		for _, v := range vars {
			found = found || v == want
		}
		if !found {
			t.Errorf("%s is not a secret with a _FILE twin", want)
		}
	}

	t.Setenv("IVRPIN_ARI_PASSWORD_FILE", writeSecret(t, "ari-password-from-a-file\n", 0o600))
	t.Setenv("IVRPIN_NI_ZPK_FILE", writeSecret(t, "0123 4567 89AB CDEF FEDC BA98 7654 3210\r\n", 0o400))
	t.Setenv("IVRPIN_LIMIT_KEY", "00112233445566778899aabbccddeeff")
	cfg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ARIPassword != "ari-password-from-a-file" {
		t.Fatal("the password file was not read, or its newline kept")
	}
	if k, err := cfg.ZPK(); err != nil || k.KCV() != "08D7B4" {
		t.Fatalf("key from the file: %v %v", k, err)
	}
	if cfg.NIZPK != "" {
		t.Fatal("the configuration keeps the key's hex")
	}
	if env := cfg.SecretsFromEnvironment(); len(env) != 1 || env[0] != "IVRPIN_LIMIT_KEY" {
		t.Fatalf("secrets from the environment: %v", env)
	}
	var b strings.Builder
	cfg.Print(&b)
	for _, want := range []string{"IVRPIN_NI_ZPK=<set from IVRPIN_NI_ZPK_FILE, KCV 08D7B4>", "IVRPIN_ARI_PASSWORD=<set from IVRPIN_ARI_PASSWORD_FILE>",
		"IVRPIN_LIMIT_KEY=<set>"} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("config lacks %s:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "ari-password-from-a-file") {
		t.Fatal("a secret printed")
	}
}

func TestSecretFileRefusals(t *testing.T) {
	cases := []struct {
		env     map[string]string
		wantVar string
		wantMsg string
	}{
		{map[string]string{"IVRPIN_ARI_PASSWORD": "ari-password-in-the-env", "IVRPIN_ARI_PASSWORD_FILE": writeSecret(t, "ari-password-from-a-file", 0o600)},
			"IVRPIN_ARI_PASSWORD_FILE", "one way"},
		{map[string]string{"IVRPIN_ARI_PASSWORD_FILE": writeSecret(t, "ari-password-from-a-file", 0o640)}, "IVRPIN_ARI_PASSWORD_FILE", "mode 0640"},
		{map[string]string{"IVRPIN_LIMIT_KEY_FILE": writeSecret(t, "00112233445566778899aabbccddeeff", 0o604)}, "IVRPIN_LIMIT_KEY_FILE", "mode 0604"},
		{map[string]string{"IVRPIN_NI_ZPK_FILE": writeSecret(t, "0123456789ABCDEFFEDCBA9876543210", 0o644)}, "IVRPIN_NI_ZPK_FILE", "mode 0644"},
		{map[string]string{"IVRPIN_PKCS11_PIN_FILE": "/nonexistent/pin"}, "IVRPIN_PKCS11_PIN_FILE", "/nonexistent/pin"},
		{map[string]string{"IVRPIN_REDIS_PASSWORD_FILE": writeSecret(t, "\n", 0o600)}, "IVRPIN_REDIS_PASSWORD_FILE", "empty"},
	}
	for i, c := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := Load()
			if err == nil || !strings.HasPrefix(err.Error(), c.wantVar+":") || !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("error %v, want %s … %s", err, c.wantVar, c.wantMsg)
			}
			if strings.Contains(err.Error(), "ari-password") || strings.Contains(err.Error(), "0123456789") {
				t.Fatalf("the secret is in the error: %v", err)
			}
		})
	}
}

// Keys and passwords an HSM or an assessor would refuse are refused, each
// naming its variable, never echoing the value.
func TestWeakKeysAndPasswordsRefused(t *testing.T) {
	cases := []struct {
		name, variable, value, want string
	}{
		{"all-zero key", "IVRPIN_NI_ZPK", strings.Repeat("0", 32), "all zeros"},
		{"K1 = K2", "IVRPIN_NI_ZPK", "0123456789ABCDEF0123456789ABCDEF", "equal halves"},
		{"K2 = K3", "IVRPIN_NI_ZPK", "0123456789ABCDEFFEDCBA9876543210FEDCBA9876543210", "K2 = K3"},
		{"even parity", "IVRPIN_NI_ZPK", "0023456789ABCDEFFEDCBA9876543210", "parity"},
		{"listener placeholder", "IVRPIN_ARI_LISTEN_PASSWORD", "replace-me-with-IVRPIN_ARI_LISTEN_PASSWORD", "placeholder"},
		{"listener one character", "IVRPIN_ARI_LISTEN_PASSWORD", "x", "shorter than 16"},
		{"ARI short", "IVRPIN_ARI_PASSWORD", "short-pass", "shorter than 16"},
		{"ARI placeholder", "IVRPIN_ARI_PASSWORD", "changeme-changeme-changeme", "placeholder"},
		{"DES weak key as K1", "IVRPIN_NI_ZPK", "0101010101010101FEDCBA9876543210", "weak or semi-weak"},
		{"DES semi-weak key as K2, parity off", "IVRPIN_NI_ZPK", "0123456789ABCDEF1EE01EE00EF00EF0", "weak or semi-weak"},
		{"AES key of one byte", "IVRPIN_NI_ZPK", strings.Repeat("A5", 16), "one byte repeated"},
		{"sixteen spaces", "IVRPIN_ARI_PASSWORD", strings.Repeat(" ", 16), "white space"},
		{"one character repeated", "IVRPIN_ARI_LISTEN_PASSWORD", strings.Repeat("a", 24), "1 different characters"},
		{"a short pattern", "IVRPIN_ARI_PASSWORD", strings.Repeat("abc1", 6), "4 different characters"},
		{"Redis one character repeated", "IVRPIN_REDIS_PASSWORD", strings.Repeat("z", 20), "different characters"},
		{"all-zero limit key", "IVRPIN_LIMIT_KEY", strings.Repeat("00", 32), "fewer than 8 different bytes"},
		{"limit key of a pattern", "IVRPIN_LIMIT_KEY", strings.Repeat("0102", 16), "fewer than 8 different bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(c.variable, c.value)
			if c.variable == "IVRPIN_ARI_LISTEN_PASSWORD" {
				t.Setenv("IVRPIN_ARI_LISTEN", "127.0.0.1:8090")
			}
			_, err := Load()
			if err == nil || !strings.HasPrefix(err.Error(), c.variable+":") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %s … %s", err, c.variable, c.want)
			}
			if len(c.value) > 1 && strings.Contains(err.Error(), c.value) {
				t.Fatalf("the value is in the error: %v", err)
			}
		})
	}
	// The well-known test key has odd parity and distinct halves.
	t.Setenv("IVRPIN_NI_ZPK", zpkHex)
	if _, err := Load(); err != nil {
		t.Fatal(err)
	}
}

func TestTokenKeySettings(t *testing.T) {
	module := writeSecret(t, "not really a library", 0o600)
	cases := []struct {
		env     map[string]string
		wantVar string // "" = accepted
	}{
		{map[string]string{"IVRPIN_NI_ZPK_LABEL": "zpk", "IVRPIN_NI_ZPK": zpkHex}, "IVRPIN_NI_ZPK_LABEL"},
		{map[string]string{"IVRPIN_NI_ZPK_LABEL": "zpk", "IVRPIN_NI_ZPK_KCV": "08D7B4"}, "IVRPIN_PKCS11_MODULE"},
		{map[string]string{"IVRPIN_NI_ZPK_LABEL": "zpk", "IVRPIN_PKCS11_MODULE": module, "IVRPIN_PKCS11_TOKEN_LABEL": "t", "IVRPIN_PKCS11_PIN": "1"}, "IVRPIN_NI_ZPK_KCV"},
		{map[string]string{"IVRPIN_NI_ZPK_LABEL": "zpk", "IVRPIN_NI_ZPK_KCV": "08D7B4", "IVRPIN_PKCS11_MODULE": module}, "IVRPIN_PKCS11_TOKEN_LABEL"},
		{map[string]string{"IVRPIN_NI_ZPK_LABEL": "zpk", "IVRPIN_NI_ZPK_KCV": "08D7B4", "IVRPIN_PKCS11_MODULE": module, "IVRPIN_PKCS11_TOKEN_LABEL": "t"}, "IVRPIN_PKCS11_PIN"},
		{map[string]string{"IVRPIN_NI_ZPK_LABEL": "zpk", "IVRPIN_NI_ZPK_KCV": "08D7B4", "IVRPIN_PKCS11_MODULE": "/nonexistent.so", "IVRPIN_PKCS11_TOKEN_LABEL": "t", "IVRPIN_PKCS11_PIN": "1"}, "IVRPIN_PKCS11_MODULE"},
		{map[string]string{"IVRPIN_NI_ZPK_LABEL": "zpk", "IVRPIN_PKCS11_MODULE": module, "IVRPIN_PKCS11_TOKEN_LABEL": "t", "IVRPIN_PKCS11_PIN": "1",
			"IVRPIN_NI_ZPK_KCV": "08D7"}, "IVRPIN_NI_ZPK_KCV"},
		{map[string]string{"IVRPIN_NI_ZPK": zpkHex, "IVRPIN_NI_ZPK_KCV": "ABCDEF"}, "IVRPIN_NI_ZPK_KCV"},
		{map[string]string{"IVRPIN_NI_ZPK": zpkHex, "IVRPIN_NI_ZPK_KCV": "08d7b4"}, ""},
		{map[string]string{"IVRPIN_NI_ZPK_LABEL": "zpk", "IVRPIN_PKCS11_MODULE": module, "IVRPIN_PKCS11_TOKEN_LABEL": "t", "IVRPIN_PKCS11_PIN": "1",
			"IVRPIN_NI_ZPK_KCV": "08D7B4", "IVRPIN_NI_URL": "https://host.example/pin", "IVRPIN_NI_BANK_ID": "TB01"}, ""},
	}
	for i, c := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := Load()
			switch {
			case c.wantVar == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.wantVar != "" && (err == nil || !strings.HasPrefix(err.Error(), c.wantVar+":")):
				t.Fatalf("error %v, want one naming %s", err, c.wantVar)
			}
		})
	}
}

func TestServeNeedsALimitKey(t *testing.T) {
	t.Setenv("IVRPIN_NI_URL", "https://host.example/pin")
	t.Setenv("IVRPIN_NI_BANK_ID", "TB01")
	t.Setenv("IVRPIN_NI_ZPK", zpkHex)
	t.Setenv("IVRPIN_LAB", "true")
	cfg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateServe(); err == nil || !strings.HasPrefix(err.Error(), "IVRPIN_LIMIT_KEY:") {
		t.Fatalf("serve without a limit key: %v", err)
	}
	cfg.LimitKey = "00112233445566778899aabbccddeeff"
	if err := cfg.ValidateServe(); err != nil {
		t.Fatal(err)
	}
}

// serve takes lab key parts only in a lab: a software zone PIN key is
// refused by name without IVRPIN_LAB, accepted (with a warning) with it.
func TestServeRefusesASoftwareKeyOutsideALab(t *testing.T) {
	t.Setenv("IVRPIN_NI_URL", "https://host.example/pin")
	t.Setenv("IVRPIN_NI_BANK_ID", "TB01")
	t.Setenv("IVRPIN_NI_ZPK", zpkHex)
	t.Setenv("IVRPIN_LIMIT_KEY", "00112233445566778899aabbccddeeff")
	cfg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateServe(); err == nil || !strings.HasPrefix(err.Error(), "IVRPIN_NI_ZPK:") || !strings.Contains(err.Error(), "IVRPIN_LAB") {
		t.Fatalf("a software key outside a lab: %v", err)
	}
	t.Setenv("IVRPIN_LAB", "true")
	if cfg, err = Load(); err != nil || cfg.ValidateServe() != nil {
		t.Fatalf("in a lab: %v %v", err, cfg.ValidateServe())
	}
	var warned bool
	for _, w := range cfg.Warnings() {
		warned = warned || strings.HasPrefix(w.Error(), "IVRPIN_LAB:")
	}
	if !warned {
		t.Fatal("lab mode is not warned of")
	}
}

// An audit file outside a lab needs its chain's key; the key has one
// purpose (not the limit key) and enough of itself to be a key.
func TestAuditKeySettings(t *testing.T) {
	const limitKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	good := "5e7a1c93d04b26f88a11ce7305b9d42e61f0a8c3b7d29e54c18f6a0b3d7e92c4"
	for _, c := range []struct {
		name    string
		lab     bool
		key     string
		wantVar string // "" = accepted
		says    string
	}{
		{"no key outside a lab", false, "", "IVRPIN_AUDIT_KEY", "required with AUDIT_FILE outside a lab"},
		{"no key in a lab", true, "", "", ""},
		{"a key", false, good, "", ""},
		{"too short", false, good[:40], "IVRPIN_AUDIT_KEY", "at least 32 bytes"},
		{"one byte repeated", false, strings.Repeat("ab", 32), "IVRPIN_AUDIT_KEY", "fewer than 12 different bytes"},
		{"the limit key", false, limitKey, "IVRPIN_AUDIT_KEY", "is the LIMIT_KEY"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &Config{}
			cfg.AuditFile, cfg.AuditKey, cfg.Lab, cfg.LimitKey = "/var/lib/ivr-pin/audit.jsonl", c.key, c.lab, limitKey
			errs := append(cfg.Audit.problems(cfg.LimitKey), cfg.ServeProblems()...)
			var got error
			for _, e := range errs {
				if strings.Contains(e.Error(), "AUDIT_KEY") {
					got = e
				}
			}
			switch {
			case c.wantVar == "" && got != nil:
				t.Fatalf("refused: %v", got)
			case c.wantVar != "" && (got == nil || !strings.HasPrefix(got.Error(), c.wantVar+":") || !strings.Contains(got.Error(), c.says)):
				t.Fatalf("got %v, want %s: ...%s", got, c.wantVar, c.says)
			}
			if got != nil && c.key != "" && strings.Contains(got.Error(), c.key) {
				t.Fatal("the error repeats the key")
			}
		})
	}
}
