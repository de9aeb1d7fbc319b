package config

import (
	"strings"
	"testing"
)

// A Redis or Sentinel password never crosses the network in clear: a
// redis:// URL or sentinels without REDIS_TLS, to a host that is not
// loopback, with a password, are refused by name; TLS, loopback, no
// password, or a lab's IVRPIN_ALLOW_INSECURE_HOSTS pass.
func TestRedisPasswordsNeverTravelInClear(t *testing.T) {
	const key = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	const pw = "a-long-redis-password-4u"
	cases := []struct {
		name    string
		env     map[string]string
		wantVar string // "" means accepted
	}{
		{"password in a redis:// URL to another host", map[string]string{"IVRPIN_REDIS_URL": "redis://:" + pw + "@10.1.2.3:6379/0"}, "IVRPIN_REDIS_URL"},
		{"REDIS_PASSWORD with a redis:// URL to another host", map[string]string{"IVRPIN_REDIS_URL": "redis://10.1.2.3:6379/0", "IVRPIN_REDIS_PASSWORD": pw}, "IVRPIN_REDIS_URL"},
		{"rediss:// to another host", map[string]string{"IVRPIN_REDIS_URL": "rediss://10.1.2.3:6380/0", "IVRPIN_REDIS_PASSWORD": pw}, ""},
		{"redis:// on loopback", map[string]string{"IVRPIN_REDIS_URL": "redis://127.0.0.1:6379/0", "IVRPIN_REDIS_PASSWORD": pw}, ""},
		{"redis:// to another host without a password", map[string]string{"IVRPIN_REDIS_URL": "redis://10.1.2.3:6379/0"}, ""},
		{"a lab allows it", map[string]string{"IVRPIN_REDIS_URL": "redis://10.1.2.3:6379/0", "IVRPIN_REDIS_PASSWORD": pw, "IVRPIN_ALLOW_INSECURE_HOSTS": "true"}, ""},
		{"sentinels elsewhere with a password, no TLS", map[string]string{"IVRPIN_REDIS_SENTINELS": "10.1.2.3:26379,10.1.2.4:26379", "IVRPIN_REDIS_MASTER": "m", "IVRPIN_REDIS_PASSWORD": pw}, "IVRPIN_REDIS_SENTINELS"},
		{"sentinels elsewhere with TLS", map[string]string{"IVRPIN_REDIS_SENTINELS": "10.1.2.3:26379", "IVRPIN_REDIS_MASTER": "m", "IVRPIN_REDIS_PASSWORD": pw, "IVRPIN_REDIS_TLS": "true"}, ""},
		{"sentinels on loopback", map[string]string{"IVRPIN_REDIS_SENTINELS": "127.0.0.1:26379", "IVRPIN_REDIS_MASTER": "m", "IVRPIN_REDIS_SENTINEL_PASSWORD": pw}, ""},
		{"a CA file that is not PEM", map[string]string{"IVRPIN_REDIS_URL": "rediss://10.1.2.3:6380/0", "IVRPIN_REDIS_TLS_CA": "/dev/null"}, "IVRPIN_REDIS_TLS_CA"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("IVRPIN_LIMIT_KEY", key)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := Load()
			switch {
			case c.wantVar == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.wantVar != "" && err == nil:
				t.Fatal("accepted")
			case c.wantVar != "" && !strings.HasPrefix(err.Error(), c.wantVar+":"):
				t.Fatalf("error does not name %s: %v", c.wantVar, err)
			case err != nil && strings.Contains(err.Error(), pw):
				t.Fatalf("the password is in the error: %v", err)
			}
		})
	}
}
