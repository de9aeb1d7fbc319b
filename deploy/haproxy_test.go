package deploy

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
	"github.com/ivr-pin/ivr-pin/internal/testkit/testpki"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
	"github.com/ivr-pin/ivr-pin/prompts"
)

type proc struct {
	cmd *exec.Cmd
	out *syncbuf.Buffer
}

func start(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), out: &syncbuf.Buffer{}}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := testkit.Start(t, p.cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-exited
		}
	})
	return p
}

// haproxyConfig is haproxy.cfg with this test's addresses and certificate
// paths: nothing else is changed.
func haproxyConfig(t *testing.T, front, stats, pem, ca string, listens, metrics []string) string {
	t.Helper()
	cfg := read(t, "haproxy.cfg")
	replace := func(pattern, with string) {
		re := regexp.MustCompile(pattern)
		if !re.MatchString(cfg) {
			t.Fatalf("haproxy.cfg: nothing matches %s", pattern)
		}
		cfg = re.ReplaceAllLiteralString(cfg, with)
	}
	replace(`(?m)^    bind :8443 ssl crt /etc/haproxy/ivr-pin\.pem`, "    bind "+front+" ssl crt "+pem)
	replace(`ca-file /etc/haproxy/ivr-pin-ca\.pem`, "ca-file "+ca)
	replace(`(?m)^    bind 127\.0\.0\.1:8404$`, "    bind "+stats)
	servers := ""
	for i := range listens {
		servers += fmt.Sprintf("    server ivr-pin-%d %s check port %s sni str(localhost)\n", i+1, listens[i], metrics[i][strings.LastIndex(metrics[i], ":")+1:])
	}
	replace(`(?m)(^    server ivr-pin-\d .*\n)+`, servers)
	return cfg
}

func serversUp(stats string) int {
	resp, err := http.Get("http://" + stats + "/stats;csv")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	up := 0
	for _, ln := range strings.Split(string(b), "\n") {
		f := strings.Split(ln, ",")
		if len(f) > 17 && f[0] == "ivr_pin" && strings.HasPrefix(f[1], "ivr-pin-") && strings.HasPrefix(f[17], "UP") {
			up++
		}
	}
	return up
}

// fleetParts is what a fleet behind HAProxy needs: HAProxy itself, a
// directory, serve's binary, the test CA's certificates, and HAProxy's
// certificate and key in one file.
func fleetParts(t *testing.T) (dir, bin string, pki *testpki.PKI, pem string) {
	t.Helper()
	testkit.Program(t, "haproxy", "haproxy")
	dir = t.TempDir()
	bin = filepath.Join(dir, "ivr-pin")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/ivr-pin").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	pki = testpki.New(t)
	pem = filepath.Join(dir, "haproxy.pem")
	if err := os.WriteFile(pem, []byte(read(t, pki.ServerCert)+read(t, pki.ServerKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, bin, pki, pem
}

// fleet is two serve instances behind the shipped HAProxy, as started by
// startFleet: front is HAProxy's wss address.
type fleet struct {
	front  string
	serves []*proc
}

// startFleet starts two serve instances (outbound over TLS behind HAProxy,
// each with its own state directory under dir, the common settings and
// env), then HAProxy with the shipped configuration (checked with -c), and
// waits until HAProxy sees both up.
func startFleet(t *testing.T, dir, bin, pem, password string, pki *testpki.PKI, env ...string) fleet {
	t.Helper()
	front, stats := testkit.FreeAddr(t), testkit.FreeAddr(t)
	listens, metrics := []string{testkit.FreeAddr(t), testkit.FreeAddr(t)}, []string{testkit.FreeAddr(t), testkit.FreeAddr(t)}
	var serves []*proc
	for i := range listens {
		sub := filepath.Join(dir, fmt.Sprint(i))
		_ = os.Mkdir(sub, 0o700)
		serves = append(serves, start(t, append([]string{
			"IVRPIN_ARI_LISTEN=" + listens[i], "IVRPIN_ARI_LISTEN_PASSWORD=" + password,
			"IVRPIN_ARI_LISTEN_TLS_CERT=" + pki.ServerCert, "IVRPIN_ARI_LISTEN_TLS_KEY=" + pki.ServerKey,
			"IVRPIN_ARI_LISTEN_TRUSTED_PROXIES=127.0.0.1", "IVRPIN_METRICS_ADDR=" + metrics[i], "IVRPIN_LAB=true",
			"IVRPIN_LIMIT_KEY=686170726f78792d746573742d6c696d69742d6b6579", "IVRPIN_LIMIT_STORE=" + filepath.Join(sub, "attempts.db"),
			"IVRPIN_AUDIT_FILE=" + filepath.Join(sub, "audit.jsonl"),
		}, env...), bin, "serve"))
	}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(haproxyConfig(t, front, stats, pem, pki.CAFile, listens, metrics)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("haproxy", "-c", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	hap := start(t, nil, "haproxy", "-db", "-f", cfgPath)
	deadline := time.Now().Add(20 * time.Second)
	for serversUp(stats) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy never saw both instances up:\n%s\n%s\n%s", hap.out.String(), serves[0].out.String(), serves[1].out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fleet{front: front, serves: serves}
}

// TestHAProxyConfiguration runs the shipped haproxy.cfg with Debian's
// HAProxy in front of two serve instances: the ARI test server, standing in
// for Asterisk, dials wss:// and verifies HAProxy's certificate; HAProxy
// re-encrypts to each instance and verifies its certificate; the PROXY
// protocol header makes a guesser's own address the one counted, so it is
// throttled while the calls go on.
func TestHAProxyConfiguration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs HAProxy")
	}
	dir, bin, pki, pem := fleetParts(t)
	raw := []byte("haproxy-test-zpk")
	secret.SetOddParity(raw)
	key, _ := secret.NewKey(secret.TDES, raw)
	zpk, _ := pinblock.NewZPK(key, pinblock.ISO0)
	sims, err := simrun.Start(simrun.Options{BankID: "TB01", ZPK: zpk})
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	zpkFile := filepath.Join(dir, "zpk")
	if err := os.WriteFile(zpkFile, []byte(fmt.Sprintf("%X\n", raw)), 0o600); err != nil {
		t.Fatal(err)
	}
	const password = "haproxy-test-listen-password"
	f := startFleet(t, dir, bin, pem, password, pki,
		"IVRPIN_NI_URL="+sims.CardHostURL, "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK_FILE="+zpkFile, "IVRPIN_FIRST_DIGIT_TIMEOUT=3s")
	front, serves := f.front, f.serves

	// A guesser on its own address: every instance counts it by the PROXY
	// header's source, so after both have seen their share it is refused.
	guess := func(pass string) int {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", front, &tls.Config{RootCAs: pki.CAPool, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /ari HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nConnection: close\r\n\r\n",
			base64.StdEncoding.EncodeToString([]byte("asterisk:"+pass)))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	codes := map[int]int{}
	for i := 0; i < 50; i++ {
		codes[guess(fmt.Sprintf("guess-%d", i))]++
	}
	if codes[401] != 40 || codes[429] != 10 {
		t.Fatalf("50 guesses through HAProxy: %v, want 40 refused (20 per instance) then 429", codes)
	}
	if code := guess(password); code != 429 {
		t.Fatalf("the guesser's right password: %d, want 429", code)
	}
	for _, s := range serves {
		if !strings.Contains(s.out.String(), `"source":"127.0.0.2"`) {
			t.Fatalf("an instance did not see the guesser's own address:\n%s", s.out.String())
		}
	}

	// Asterisk (the test server, from 127.0.0.1) over wss: every call is
	// changed, on both instances.
	ari.SetOutbound(&aritest.Outbound{URL: "wss://" + front + "/ari", Username: "asterisk", Password: password,
		TLS: &tls.Config{RootCAs: pki.CAPool, ServerName: "localhost"}})
	pans := []string{"4111111111111111", "4000000000000002", "4242424242424242", "5555555555554444"}
	for i, pan := range pans {
		if i > 0 {
			sims.CardHost.AddCard(pan, "2812", "", "active", "7392")
		}
		ch, err := ari.PlaceCall(aritest.CallOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.PressEachWhenAsked(prompts.AsksMedia, 20*time.Second, "1", pan+"#", "1228", "7392#", "4829#", "4829#"); err != nil {
			t.Logf("call %d: the caller stopped typing: %v", i, err)
		}
		if _, err := ch.WaitEnded(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		if !sims.CardHost.PINIs(pan, "4829") {
			t.Fatalf("call %d: PIN not changed\n%s\n%s", i, serves[0].out.String(), serves[1].out.String())
		}
	}
	for i := range serves {
		audit := read(t, filepath.Join(dir, fmt.Sprint(i), "audit.jsonl"))
		if !strings.Contains(audit, `"outcome":"changed"`) {
			t.Errorf("instance %d took no call through HAProxy", i+1)
		}
	}
}
