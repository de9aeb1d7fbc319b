package asterisktest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/asterisktest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/redistest"
	"github.com/ivr-pin/ivr-pin/internal/testkit/testpki"
)

// TestRealAsteriskARIOverTLS: the ARI link encrypted with certificates of
// the tests' own CA, verified at each end, in both directions; a PIN change
// passes each way.
func TestRealAsteriskARIOverTLS(t *testing.T) {
	t.Parallel()
	t.Run("serve dials Asterisk's TLS HTTP server", func(t *testing.T) {
		t.Parallel()
		l := startLineWith(t, lineOptions{pki: testpki.New(t)})
		if !strings.Contains(strings.Join(l.env, " "), "IVRPIN_ARI_URL=https://") {
			t.Fatalf("serve is not on https: %v", l.env)
		}
		t.Run("change", scenarioChange(l, l.ast.NewDriver(t)))
	})
	t.Run("Asterisk's websocket client dials serve over wss", func(t *testing.T) {
		t.Parallel()
		l := startLineWith(t, lineOptions{outbound: true, pki: testpki.New(t)})
		t.Run("change", scenarioChange(l, l.ast.NewDriver(t)))
	})
	t.Run("Asterisk refuses a certificate from another CA", func(t *testing.T) {
		t.Parallel()
		// Asterisk trusts one CA; serve shows a certificate of another.
		trusted, other := testpki.New(t), testpki.New(t)
		l := startLineWith(t, lineOptions{outbound: true, pki: trusted, noCalls: true, env: []string{
			"IVRPIN_ARI_LISTEN_TLS_CERT=" + other.ServerCert, "IVRPIN_ARI_LISTEN_TLS_KEY=" + other.ServerKey}})
		pan, _ := l.changeCard("7392")
		c := l.ast.NewDriver(t).Call(t, asterisktest.CallOptions{})
		// The websocket cannot connect: Stasis() fails at once and the
		// dialplan hangs up; nothing reaches serve, no digit is asked.
		if err := c.WaitGone(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		if len(c.Played()) > 0 || !l.sims.CardHost.PINIs(pan, "7392") {
			t.Fatalf("a call went through an unverified link: played %v", c.Played())
		}
	})
}

// TestRealAsteriskOutboundThroughHAProxyOverTLS is the shipped
// deploy/haproxy.cfg as it stands (both legs encrypted, the backends'
// certificates verified, the PROXY protocol header naming the caller's
// source): Asterisk dials HAProxy over wss, HAProxy re-encrypts to two
// serve instances, and changes pass on both.
func TestRealAsteriskOutboundThroughHAProxyOverTLS(t *testing.T) {
	t.Parallel()
	needHAProxy(t)
	pki := testpki.New(t)
	redisURL, _ := redistest.Start(t) // the instances share their limits
	front, stats := testkit.FreeAddr(t), testkit.FreeAddr(t)
	listens, metrics := []string{testkit.FreeAddr(t), testkit.FreeAddr(t)}, []string{testkit.FreeAddr(t), testkit.FreeAddr(t)}
	l := startLineWith(t, lineOptions{outbound: true, front: front, pki: pki, env: []string{"IVRPIN_REDIS_URL=" + redisURL}})
	d := l.ast.NewDriver(t)
	serves := startTLSFleet(t, l, pki, front, stats, listens, metrics)
	served := map[int]bool{}
	for i := 0; i < 4; i++ {
		pan, exp := l.changeCard("7392")
		l.typed("", "4829")
		c := d.Call(t, asterisktest.CallOptions{CallerID: fmt.Sprintf("1555200%04d", i)})
		run(t, c, append(changeSteps(pan, exp, "7392", "4829"), step{media: "result-changed"})...)
		if err := c.WaitGone(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		if !l.sims.CardHost.PINIs(pan, "4829") {
			t.Fatal("the card host does not hold the new PIN")
		}
		for j, p := range serves {
			if _, ok := auditRecords(p.out.String())[c.ID]; ok {
				served[j] = true
			}
		}
	}
	if len(served) != 2 {
		t.Fatalf("calls reached instances %v; leastconn should use both", served)
	}
}

// startTLSFleet starts serve instances on listens with TLS listeners that
// trust HAProxy's PROXY header, and HAProxy on front with the shipped TLS
// configuration: both legs encrypted, the backends verified.
func startTLSFleet(t *testing.T, l *line, pki *testpki.PKI, front, stats string, listens, metrics []string) []*proc {
	t.Helper()
	serves := startInstances(t, l, listens, metrics, func(int) []string {
		return []string{"IVRPIN_ARI_LISTEN_TLS_CERT=" + pki.ServerCert, "IVRPIN_ARI_LISTEN_TLS_KEY=" + pki.ServerKey,
			"IVRPIN_ARI_LISTEN_TRUSTED_PROXIES=127.0.0.1"}
	})
	// HAProxy's certificate and key in one file, as its crt wants.
	pem := filepath.Join(t.TempDir(), "front.pem")
	cert, _ := os.ReadFile(pki.ServerCert)
	key, _ := os.ReadFile(pki.ServerKey)
	if err := os.WriteFile(pem, append(cert, key...), 0o600); err != nil {
		t.Fatal(err)
	}
	startHAProxy(t, l, haproxyTLSConfig(t, front, stats, pem, pki.CAFile, listens, metrics), stats, len(listens))
	return serves
}

// haproxyTLSConfig is deploy/haproxy.cfg with this test's addresses and
// files, its TLS and PROXY settings kept as shipped.
func haproxyTLSConfig(t *testing.T, front, stats, pem, ca string, backends, checks []string) string {
	b, err := os.ReadFile(filepath.Join(asterisktest.ConfDir(), "..", "..", "deploy", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	replace := func(pattern, with string) {
		re := regexp.MustCompile(pattern)
		if !re.MatchString(cfg) {
			t.Fatalf("deploy/haproxy.cfg: nothing matches %s", pattern)
		}
		cfg = re.ReplaceAllLiteralString(cfg, with)
	}
	replace(`(?m)^    bind :8443 ssl crt \S+ `, "    bind "+front+" ssl crt "+pem+" ")
	replace(` ca-file \S+ `, " ca-file "+ca+" ")
	replace(`(?m)^    bind 127\.0\.0\.1:8404$`, "    bind "+stats)
	servers := ""
	for i := range backends {
		// The test certificate names localhost (and 127.0.0.1).
		servers += fmt.Sprintf("    server ivr-pin-%d %s check port %s sni str(localhost)\n", i+1, backends[i], checks[i][strings.LastIndex(checks[i], ":")+1:])
	}
	replace(`(?m)(^    server ivr-pin-\d .*\n)+`, servers)
	return cfg
}
