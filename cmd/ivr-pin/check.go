package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
)

const checkSummary = `Checks everything serve checks at start-up, and what it needs around it, all at once:
the settings and their combinations (unknown IVRPIN_* variables with the closest name),
secrets and their files' modes, the zone PIN key (opened in its PKCS#11 token), the attempt
store's directory (or Redis), the audit file, the metrics and listener addresses, ARI with
its credentials (inbound), and each host's TCP and TLS handshake (no PIN traffic).
Prints each problem naming its variable; exits 0 only when serve would start.`

// checkCmd runs `ivr-pin check`.
func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin check", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 5*time.Second, "bound on each network check")
	if code, done := parseFlags(fs, args, checkSummary, stdout, stderr); done {
		return code
	}
	problems := config.Unknown(os.Environ())
	cfg, settings := config.LoadAll()
	problems = append(problems, settings...)
	problems = append(problems, surroundings(cfg, *timeout)...)
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "ivr-pin check: %d problems: serve would not start as configured\n", len(problems))
		return 1
	}
	fmt.Fprintln(stdout, "ivr-pin check: serve would start with this configuration")
	return 0
}

// surroundings checks what serve meets outside its settings: files,
// addresses, the token, Asterisk and the hosts.
func surroundings(c *config.Config, timeout time.Duration) []error {
	var out []error
	add := func(v string, err error) {
		if err != nil {
			out = append(out, &config.Problem{Var: v, Reason: err.Error()})
		}
	}
	switch {
	case len(c.RedisSentinels) > 0:
		for _, s := range c.RedisSentinels {
			add("REDIS_SENTINELS", dialURL("redis://"+s, "26379", timeout))
		}
	case c.RedisURL != "":
		add("REDIS_URL", dialURL(c.RedisURL, "6379", timeout))
	case c.LimitStore != "":
		add("LIMIT_STORE", writableDir(filepath.Dir(c.LimitStore)))
	}
	if c.AuditFile != "" {
		add("AUDIT_FILE", writableDir(filepath.Dir(c.AuditFile)))
	}
	if c.MetricsAddr != "" {
		add("METRICS_ADDR", bindable(c.MetricsAddr))
	}
	if c.ARIListen != "" {
		add("ARI_LISTEN", bindable(c.ARIListen))
		if c.ARIListenTLSCert != "" {
			if _, err := tls.LoadX509KeyPair(c.ARIListenTLSCert, c.ARIListenTLSKey); err != nil {
				add("ARI_LISTEN_TLS_CERT", err)
			}
		}
	} else if c.ARIURL != "" {
		add("ARI_URL", ariReachable(c, timeout))
	}
	if c.TokenKey() {
		add("NI_ZPK_LABEL", tokenKey(c))
	}
	for _, h := range []struct{ name, url, ca string }{{"NI_URL", c.NIURL, c.NITLSCA}, {"NI_TOKEN_URL", c.NITokenURL, c.NITLSCA}, {"KEYSECURE_URL", c.KeySecureURL, ""}} {
		if h.url != "" {
			add(h.name, handshake(h.url, h.ca, timeout))
		}
	}
	return out
}

// writableDir: the directory exists and this user can create a file in it.
func writableDir(dir string) error {
	f, err := os.CreateTemp(dir, ".ivr-pin-check-*")
	if err != nil {
		return fmt.Errorf("cannot create a file in %s (create it, owned by the service's user): %v", dir, errors.Unwrap(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func bindable(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %v", addr, err)
	}
	return ln.Close()
}

func dialURL(raw, defaultPort string, timeout time.Duration) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), defaultPort)
	}
	conn, err := net.DialTimeout("tcp", host, timeout)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %v", host, err)
	}
	return conn.Close()
}

// tlsTrusting trusts the system's roots, or the CA file when given.
func tlsTrusting(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return &tls.Config{MinVersion: tls.VersionTLS12}, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// ariReachable asks Asterisk for its info with serve's credentials.
func ariReachable(c *config.Config, timeout time.Duration) error {
	tc, err := tlsTrusting(c.ARITLSCA)
	if err != nil {
		return fmt.Errorf("IVRPIN_ARI_TLS_CA: %v", err)
	}
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tc}}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", c.ARIURL+"/asterisk/info", nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.ARIUsername, c.ARIPassword)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("Asterisk's ARI is not reachable (serve waits for it; check http.conf and the address): %v", err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return errors.New("Asterisk refused IVRPIN_ARI_USERNAME / IVRPIN_ARI_PASSWORD (ari.conf)")
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("Asterisk answered /asterisk/info with HTTP %d (is ARI enabled in ari.conf?)", resp.StatusCode)
	}
	return nil
}

// tokenKey opens the token and finds the zone PIN key, as serve does.
func tokenKey(c *config.Config) error {
	tok, err := hsm.Open(c.PKCS11())
	if err != nil {
		return fmt.Errorf("the PKCS#11 token: %v", err)
	}
	defer tok.Close()
	if _, err := tok.Key(c.NIZPKLabel, c.ZPKAlgorithm(), c.NIZPKKCV); err != nil {
		return err
	}
	return nil
}

// handshake dials a host and, for https, completes a TLS handshake that
// verifies its certificate. Nothing is sent.
func handshake(raw, caFile string, timeout time.Duration) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %v", addr, err)
	}
	defer conn.Close()
	if u.Scheme != "https" {
		return nil
	}
	tc, err := tlsTrusting(caFile)
	if err != nil {
		return err
	}
	tc.ServerName = u.Hostname()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if err := tls.Client(conn, tc).Handshake(); err != nil {
		return fmt.Errorf("TLS handshake with %s: %v", addr, err)
	}
	return nil
}
