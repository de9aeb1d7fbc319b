package config

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ivr-pin/ivr-pin/ivr"
	"github.com/ivr-pin/ivr-pin/pinsvc/hosturl"
)

// ARI is how the line and Asterisk reach each other: inbound, the line
// dials ARI_URL's events websocket; outbound (ARI_LISTEN set), Asterisk 22
// dials the line's listener, one websocket per call.
type ARI struct {
	ARIURL         string        `envconfig:"ARI_URL" default:"http://127.0.0.1:8088/ari" secret:"url" desc:"ARI base URL"`
	ARIWSURL       string        `envconfig:"ARI_WS_URL" secret:"url" desc:"ARI events WebSocket URL (derived from ARI_URL when unset)"`
	ARIUsername    string        `envconfig:"ARI_USERNAME" default:"ivr-pin" desc:"ARI user (ari.conf)"`
	ARIPassword    string        `envconfig:"ARI_PASSWORD" secret:"true" desc:"ARI password"`
	ARIApplication string        `envconfig:"ARI_APPLICATION" default:"ivr-pin" desc:"Stasis application name"`
	ARITimeout     time.Duration `envconfig:"ARI_TIMEOUT" default:"5s" desc:"timeout of each ARI REST call and of connecting"`
	ARITLSCA       string        `envconfig:"ARI_TLS_CA" desc:"PEM CA bundle that signed Asterisk's certificate (https/wss ARI_URL); unset: the system's roots"`
	// Outbound ARI (Asterisk 22 dials us): set ARI_LISTEN to use it.
	ARIListen         string `envconfig:"ARI_LISTEN" desc:"host:port to accept Asterisk 22's outbound ARI websockets on (path /ari); unset: dial ARI_URL (inbound)"`
	ARIListenUsername string `envconfig:"ARI_LISTEN_USERNAME" default:"asterisk" desc:"username Asterisk must send (websocket_client.conf username)"`
	ARIListenPassword string `envconfig:"ARI_LISTEN_PASSWORD" secret:"true" desc:"password Asterisk must send (websocket_client.conf password); required with ARI_LISTEN"`
	ARIListenTLSCert  string `envconfig:"ARI_LISTEN_TLS_CERT" desc:"PEM certificate file: serve wss (with ARI_LISTEN_TLS_KEY)"`
	ARIListenTLSKey   string `envconfig:"ARI_LISTEN_TLS_KEY" desc:"PEM private key file for ARI_LISTEN_TLS_CERT"`
	// What the listener holds: every link that carries a caller's digits is
	// bounded, and password guessing costs time.
	ARIListenMaxConnections    int           `envconfig:"ARI_LISTEN_MAX_CONNECTIONS" default:"10000" desc:"open connections the listener holds; past it a new one is closed at once and counted (keep it under the process's descriptor limit)"`
	ARIListenMaxCallsPerSocket int           `envconfig:"ARI_LISTEN_MAX_CALLS_PER_SOCKET" default:"1000" desc:"calls one persistent websocket may carry at once (a per-call websocket carries one)"`
	ARIListenMaxFailures       int           `envconfig:"ARI_LISTEN_MAX_FAILURES" default:"20" desc:"failed logins from one source in a minute before it is answered 429 until the minute ends"`
	ARIListenTrustedProxies    []string      `envconfig:"ARI_LISTEN_TRUSTED_PROXIES" desc:"addresses or CIDRs of load balancers whose PROXY protocol v2 header names the real source (HAProxy send-proxy-v2); comma separated"`
	ARIListenReserved          int           `envconfig:"ARI_LISTEN_RESERVED_CONNECTIONS" default:"-1" desc:"of ARI_LISTEN_MAX_CONNECTIONS, the slots kept for sources that logged in within ARI_LISTEN_KNOWN_FOR (Asterisk), so a flood without the password cannot take them; -1: half, 0: none"`
	ARIListenPerSource         int           `envconfig:"ARI_LISTEN_MAX_PER_SOURCE" default:"0" desc:"open connections one source that has not logged in lately may hold; 0: a quarter of the unreserved slots, at most 100"`
	ARIListenKnownFor          time.Duration `envconfig:"ARI_LISTEN_KNOWN_FOR" default:"10m" desc:"how long a successful login makes its source known (reserved slots, no global slow-down)"`
	ARIListenFailuresPerSecond int           `envconfig:"ARI_LISTEN_MAX_FAILURES_PER_SECOND" default:"50" desc:"failed logins across all sources in a second past which every source not known is answered 429 for the rest of that second"`
	ARIListenIPv6Prefix        int           `envconfig:"ARI_LISTEN_IPV6_PREFIX" default:"64" desc:"IPv6 sources are counted by their network of this many bits (one host commonly holds a whole /64)"`
	ARIListenMaxSources        int           `envconfig:"ARI_LISTEN_MAX_SOURCES" default:"100000" desc:"sources the failed-login table holds; past it the oldest is dropped (ivrpin_ari_listener_sources_evicted_total)"`
	ARIPersistentMax           int           `envconfig:"ARI_PERSISTENT_MAX" default:"4" desc:"websockets registered as persistent (connection_type = persistent) held at once; one more is closed"`
	ARIPersistentSources       []string      `envconfig:"ARI_PERSISTENT_SOURCES" desc:"addresses or CIDRs allowed a persistent websocket (unset: any source with the password); comma separated"`
	ARIPersistentPing          time.Duration `envconfig:"ARI_PERSISTENT_PING" default:"20s" desc:"how often a persistent websocket must answer ARI's ping (GET /asterisk/ping) within ARI_TIMEOUT, or be closed"`
}

// problems checks the URLs, the password, the links' encryption and the
// listener, every problem once.
func (a *ARI) problems(allowInsecure bool) []error {
	var out []error
	add := func(v, reason string) { out = append(out, problem(v, reason)) }
	if u, err := url.Parse(a.ARIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("ARI_URL", "must be an http or https URL")
	}
	if a.ARIWSURL != "" {
		if u, err := url.Parse(a.ARIWSURL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			add("ARI_WS_URL", "must be a ws or wss URL")
		}
	}
	if a.ARIApplication == "" {
		add("ARI_APPLICATION", "must not be empty")
	}
	if a.ARIPassword != "" {
		if w := weakPassword(a.ARIPassword); w != "" {
			add("ARI_PASSWORD", w)
		}
	}
	if links := a.clearLinks(); len(links) > 0 && !allowInsecure {
		add(links[0].name, links[0].fix+", or IVRPIN_ALLOW_INSECURE_HOSTS=true in a lab")
	}
	if a.ARITLSCA != "" {
		if _, err := os.Stat(a.ARITLSCA); err != nil {
			add("ARI_TLS_CA", "cannot read "+a.ARITLSCA)
		}
	}
	for _, b := range []struct {
		name  string
		value int
	}{{"ARI_LISTEN_MAX_CONNECTIONS", a.ARIListenMaxConnections}, {"ARI_LISTEN_MAX_CALLS_PER_SOCKET", a.ARIListenMaxCallsPerSocket},
		{"ARI_LISTEN_MAX_FAILURES", a.ARIListenMaxFailures}} {
		if b.value < 1 {
			add(b.name, "must be at least 1")
		}
	}
	for _, p := range a.ARIListenTrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			add("ARI_LISTEN_TRUSTED_PROXIES", "must be addresses or CIDRs, comma separated")
			break
		}
	}
	if a.ARITimeout <= 0 {
		add("ARI_TIMEOUT", "must be a positive duration")
	}
	return append(out, a.listenerProblems()...)
}

// listenerProblems checks the outbound listener: its address, its login and
// its TLS pair.
func (a *ARI) listenerProblems() []error {
	if a.ARIListen == "" {
		return nil
	}
	var out []error
	if _, port, err := net.SplitHostPort(a.ARIListen); err != nil || port == "" {
		out = append(out, problem("ARI_LISTEN", "must be host:port"))
	}
	if a.ARIListenPassword == "" {
		out = append(out, problem("ARI_LISTEN_PASSWORD", "required with ARI_LISTEN: Asterisk must authenticate"))
	} else if w := weakPassword(a.ARIListenPassword); w != "" {
		out = append(out, problem("ARI_LISTEN_PASSWORD", w))
	}
	if a.ARIListenUsername == "" {
		out = append(out, problem("ARI_LISTEN_USERNAME", "must not be empty"))
	}
	if (a.ARIListenTLSCert == "") != (a.ARIListenTLSKey == "") {
		out = append(out, problem("ARI_LISTEN_TLS_CERT", "set both ARI_LISTEN_TLS_CERT and ARI_LISTEN_TLS_KEY, or neither"))
	}
	if a.ARIListenMaxConnections < 1 {
		out = append(out, problem("ARI_LISTEN_MAX_CONNECTIONS", "must be at least 1"))
	}
	if a.ARIListenReserved < -1 || a.ARIListenReserved >= a.ARIListenMaxConnections {
		out = append(out, problem("ARI_LISTEN_RESERVED_CONNECTIONS", "must be -1 (half), 0 (none) or fewer than ARI_LISTEN_MAX_CONNECTIONS"))
	}
	if a.ARIListenPerSource < 0 {
		out = append(out, problem("ARI_LISTEN_MAX_PER_SOURCE", "cannot be negative"))
	}
	if a.ARIListenFailuresPerSecond < 1 || a.ARIListenMaxFailures < 1 || a.ARIListenMaxSources < 1000 {
		out = append(out, problem("ARI_LISTEN_MAX_FAILURES_PER_SECOND", "ARI_LISTEN_MAX_FAILURES and ARI_LISTEN_MAX_FAILURES_PER_SECOND must be at least 1, ARI_LISTEN_MAX_SOURCES at least 1000"))
	}
	if a.ARIListenIPv6Prefix < 32 || a.ARIListenIPv6Prefix > 128 {
		out = append(out, problem("ARI_LISTEN_IPV6_PREFIX", "must be 32 to 128"))
	}
	if a.ARIPersistentMax < 1 {
		out = append(out, problem("ARI_PERSISTENT_MAX", "must be at least 1"))
	}
	for _, p := range append(slices.Clone(a.ARIPersistentSources), a.ARIListenTrustedProxies...) {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				out = append(out, problem("ARI_PERSISTENT_SOURCES", "and ARI_LISTEN_TRUSTED_PROXIES must be addresses or CIDRs, comma separated"))
				break
			}
		}
	}
	out = append(out, positive([]namedDuration{{"ARI_LISTEN_KNOWN_FOR", a.ARIListenKnownFor}, {"ARI_PERSISTENT_PING", a.ARIPersistentPing}})...)
	return out
}

// clearLink is an ARI link that would travel in clear beyond loopback.
type clearLink struct{ name, fix string }

// clearLinks lists them: an inbound URL that is not https/wss to a host
// that is not loopback, a listener off loopback without TLS.
func (a *ARI) clearLinks() []clearLink {
	var out []clearLink
	if a.ARIListen == "" {
		for _, u := range []struct{ name, value, secure string }{{"ARI_URL", a.ARIURL, "https"}, {"ARI_WS_URL", a.ARIWSURL, "wss"}} {
			if p, err := url.Parse(u.value); u.value != "" && err == nil && p.Scheme != u.secure && !hosturl.IsLoopback(p.Hostname()) {
				out = append(out, clearLink{u.name, "is in clear to a host that is not loopback: it carries every digit a caller types; use " +
					u.secure + " (Asterisk's http.conf tlsenable)"})
			}
		}
	} else if a.ARIListenTLSCert == "" {
		if host, _, err := net.SplitHostPort(a.ARIListen); err == nil && !hosturl.IsLoopback(host) {
			out = append(out, clearLink{"ARI_LISTEN", "listens beyond loopback without TLS: set ARI_LISTEN_TLS_CERT and ARI_LISTEN_TLS_KEY (Asterisk dials wss with tls_enabled = yes)"})
		}
	}
	return out
}

// InsecureARILinks lists the ARI links that IVRPIN_ALLOW_INSECURE_HOSTS lets
// travel in clear beyond loopback (serve warns of each).
func (a *ARI) InsecureARILinks() []string {
	var out []string
	for _, l := range a.clearLinks() {
		out = append(out, Prefix+"_"+l.name)
	}
	return out
}

// WebsocketURL is ARI_WS_URL or the events URL derived from ARI_URL.
func (a *ARI) WebsocketURL() string {
	if a.ARIWSURL != "" {
		return a.ARIWSURL
	}
	u, _ := url.Parse(a.ARIURL)
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/events"
	return u.String()
}

// Outbound reports whether Asterisk dials the line (ARI_LISTEN).
func (a *ARI) Outbound() bool { return a.ARIListen != "" }

// OutboundConfig is the listener's configuration (the caller sets Log).
func (a *ARI) OutboundConfig() ivr.OutboundConfig {
	return ivr.OutboundConfig{Listen: a.ARIListen, Username: a.ARIListenUsername,
		Password: a.ARIListenPassword, TLSCert: a.ARIListenTLSCert, TLSKey: a.ARIListenTLSKey,
		Application: a.ARIApplication, Timeout: a.ARITimeout,
		MaxConnections: a.ARIListenMaxConnections, MaxCallsPerSocket: a.ARIListenMaxCallsPerSocket,
		MaxFailures: a.ARIListenMaxFailures, TrustedProxies: a.ARIListenTrustedProxies,
		ReservedConnections:     reservedConnections(a.ARIListenReserved),
		MaxConnectionsPerSource: a.ARIListenPerSource, KnownFor: a.ARIListenKnownFor,
		MaxFailuresPerSecond: a.ARIListenFailuresPerSecond, IPv6Prefix: a.ARIListenIPv6Prefix, MaxSources: a.ARIListenMaxSources,
		MaxPersistent: a.ARIPersistentMax, PersistentSources: a.ARIPersistentSources, PingInterval: a.ARIPersistentPing}
}

// reservedConnections turns ARI_LISTEN_RESERVED_CONNECTIONS (-1 half, 0
// none) into ivr's terms (0 half, negative none).
func reservedConnections(v int) int {
	switch v {
	case -1:
		return 0
	case 0:
		return -1
	}
	return v
}

// InboundConfig is the events websocket's and REST's configuration, with
// ARI_TLS_CA read into the roots Asterisk's certificate must chain to (the
// caller sets Log, backoff and whether to wait for Asterisk).
func (a *ARI) InboundConfig() (ivr.InboundConfig, error) {
	tlsCfg, err := TLSTrusting("ARI_TLS_CA", a.ARITLSCA)
	if err != nil {
		return ivr.InboundConfig{}, err
	}
	return ivr.InboundConfig{URL: a.ARIURL, WSURL: a.WebsocketURL(), Username: a.ARIUsername,
		Password: a.ARIPassword, Application: a.ARIApplication, Timeout: a.ARITimeout, TLS: tlsCfg}, nil
}

// TLSTrusting is a TLS client configuration that trusts the PEM bundle in
// caFile (the setting v names it), or the system's roots when caFile is ""
// (then nil: the default).
func TLSTrusting(v, caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, problem(v, "cannot read "+caFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, problem(v, caFile+" holds no PEM certificate")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
