// Package kamailiotest gives a test Debian's Kamailio with the shipped
// configuration (deploy/kamailio/kamailio.cfg), its addresses rewritten
// and nothing else.
package kamailiotest

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// Files are the addresses a test gives the shipped configuration.
type Files struct {
	Listen         string // host:port, UDP
	DispatcherList string // the Asterisk servers (dispatcher.list's format)
	SBCList        string // the SBCs new calls may come from (sbc.list's format)
}

// Config is deploy/kamailio/kamailio.cfg with f's addresses; a
// substitution that matches nothing fails the test (the shipped file
// changed under it).
func Config(t testing.TB, f Files) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "..", "deploy", "kamailio", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, r := range []struct{ pattern, with string }{
		{`!LISTEN!udp:127\.0\.0\.1:5060!g`, "!LISTEN!udp:" + f.Listen + "!g"},
		{`!DISPATCHER_LIST!/etc/kamailio/dispatcher\.list!g`, "!DISPATCHER_LIST!" + f.DispatcherList + "!g"},
		{`!SBC_LIST!/etc/kamailio/sbc\.list!g`, "!SBC_LIST!" + f.SBCList + "!g"},
	} {
		re := regexp.MustCompile(r.pattern)
		if !re.MatchString(cfg) {
			t.Fatalf("deploy/kamailio/kamailio.cfg: nothing matches %s", r.pattern)
		}
		cfg = re.ReplaceAllLiteralString(cfg, r.with)
	}
	return cfg
}

// Write writes Config into dir as kamailio.cfg, with a run directory
// beside it, and returns the arguments that run it in the foreground:
// kamailio -DD -E -f <cfg> -Y <run>.
func Write(t testing.TB, dir string, f Files) []string {
	t.Helper()
	cfg := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfg, []byte(Config(t, f)), 0o600); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"-DD", "-E", "-f", cfg, "-Y", run}
}
