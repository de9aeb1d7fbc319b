package config

import (
	"strconv"
	"strings"
	"testing"
)

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
