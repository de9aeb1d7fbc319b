// Package hosturl decides whether a PIN host's URL may be used: it must
// parse as an absolute URL and use https, or plain http to this machine
// only (the simulators). A lab may allow plain http elsewhere explicitly.
// Start-up (internal/config) and both host clients apply the same rule.
package hosturl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

// ErrPlainHTTP is a plain http URL to another machine, which a lab may
// allow explicitly (the caller names how).
var ErrPlainHTTP = errors.New("is plain http to a host that is not loopback; use https")

// Check returns why raw may not be used, or nil. The error never repeats
// the URL: it could carry credentials.
func Check(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("is not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowInsecure || IsLoopback(u.Hostname()) {
			return nil
		}
		return ErrPlainHTTP
	}
	return fmt.Errorf("has scheme %q; want https", u.Scheme)
}

// IsLoopback reports whether host (a name or an address, without a port) is
// this machine: localhost, 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
