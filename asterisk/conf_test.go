package asterisk

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/config"
)

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("conf/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// settings returns the non-comment lines.
func settings(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, ";") {
			out = append(out, l)
		}
	}
	return out
}

func TestDialplanMatchesTheApp(t *testing.T) {
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ARIApplication != Application {
		t.Fatalf("default app %q, dialplan uses %q", cfg.ARIApplication, Application)
	}
	stasis := regexp.MustCompile(`Stasis\(([^)]*)\)`)
	known := map[string]bool{}
	for _, a := range StasisArgs {
		known[a] = true
	}
	found := 0
	for _, l := range settings(read(t, "extensions.conf")) {
		m := stasis.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		found++
		args := strings.Split(m[1], ",")
		if args[0] != Application {
			t.Errorf("Stasis app %q in %q", args[0], l)
		}
		for _, a := range args[1:] {
			k, v, _ := strings.Cut(a, "=")
			if !known[k] {
				t.Errorf("argument %q is not one the app understands (%q)", k, l)
			}
			if k == "pan" {
				t.Errorf("a PAN in the dialplan would reach Asterisk's verbose log: %q", l)
			}
			if k == "return" && len(strings.Split(v, "/")) != 3 {
				t.Errorf("return must be context/extension/priority: %q", l)
			}
		}
	}
	if found < 3 {
		t.Fatalf("only %d Stasis() calls found", found)
	}
}

func TestLoggerKeepsDTMFOut(t *testing.T) {
	for _, l := range settings(read(t, "logger.conf")) {
		if strings.Contains(l, "=>") && strings.Contains(strings.ToLower(l), "dtmf") {
			t.Fatalf("logger.conf logs DTMF: %q", l)
		}
	}
}

func TestARIConfIsLockedDown(t *testing.T) {
	s := settings(read(t, "ari.conf"))
	joined := strings.Join(s, "\n")
	if strings.Contains(joined, "allowed_origins = *") || strings.Contains(joined, "allowed_origins=*") {
		t.Fatal("wildcard origins")
	}
	if !strings.Contains(joined, "password_format = crypt") {
		t.Fatal("ARI password is not crypted")
	}
	if !strings.Contains(joined, "[ivr-pin]") {
		t.Fatal("no ivr-pin user")
	}
	if !strings.Contains(read(t, "http.conf"), "bindaddr = 127.0.0.1") {
		t.Fatal("ARI HTTP not on loopback")
	}
	if !regexp.MustCompile(`(?m)^entityid = [0-9a-f:]{17}$`).MatchString(read(t, "asterisk.conf")) {
		t.Fatal("no fixed entityid")
	}
}

func TestPJSIPUsesRFC4733DTMF(t *testing.T) {
	for _, l := range settings(read(t, "pjsip.conf")) {
		if strings.HasPrefix(l, "dtmf_mode") && !strings.HasSuffix(l, "rfc4733") {
			t.Fatalf("%q: DTMF must arrive as RFC 4733 events", l)
		}
	}
}

// The outbound sample serves the same app as the dialplan, dials ivr-pin's
// listener path with the ari subprotocol, and its client id exists.
func TestOutboundSampleMatchesTheApp(t *testing.T) {
	ws := strings.Join(settings(read(t, "websocket_client.conf")), "\n")
	for _, want := range []string{"[ivr-pin]", "type = websocket_client", "connection_type = per_call_config", "protocols = ari"} {
		if !strings.Contains(ws, want) {
			t.Errorf("websocket_client.conf lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^uri = wss?://[^/\s]+/ari$`).MatchString(ws) {
		t.Errorf("websocket_client.conf uri must end in /ari (IVRPIN_ARI_LISTEN's path)")
	}
	ari := read(t, "ari.conf")
	i := strings.Index(ari, "[ivr-pin-outbound]")
	if i < 0 {
		t.Fatal("ari.conf has no [ivr-pin-outbound] section")
	}
	section := strings.Join(settings(ari[i:]), "\n")
	for _, want := range []string{"type = outbound_websocket", "websocket_client_id = ivr-pin", "apps = " + Application, "local_ari_user = ivr-pin"} {
		if !strings.Contains(section, want) {
			t.Errorf("ari.conf [ivr-pin-outbound] lacks %q", want)
		}
	}
}
