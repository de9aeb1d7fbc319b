// Package hostcall sends one HTTP request to a PIN host and says whether the
// request reached the wire, which is what separates "the host never saw it"
// (safe to tell the caller to try again) from "the host may have acted"
// (ambiguous, never resent). Both host clients use it.
package hostcall

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// NoRedirects is every host client's CheckRedirect: a redirect is never
// followed. Following one would re-send the PAN, both PIN blocks, tokens and
// keys to an address nobody configured, and could apply a PIN change twice;
// the 3xx comes back to the client as an answer it refuses.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// NewClient is an HTTP client over tr that follows no redirects.
func NewClient(tr http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: NoRedirects}
}

// IsRedirect reports a 3xx status.
func IsRedirect(status int) bool { return status >= 300 && status < 400 }

// NewTransport is the connection pool both host clients use: every phase
// bounded by timeout, connections kept alive and reused.
func NewTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
}

// Reach dials the host of rawURL as tr would, and for https completes a TLS
// handshake with tr's TLS settings (its roots and client certificate), so a
// host that is down, a certificate that does not verify, or a client
// certificate it refuses is found before a caller's request meets it.
// Nothing is sent over the connection.
func Reach(ctx context.Context, tr *http.Transport, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return errors.New("not a URL with a host")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	conn, err := tr.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", addr, err)
	}
	defer conn.Close()
	if u.Scheme != "https" {
		return nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if tr.TLSClientConfig != nil {
		tc = tr.TLSClientConfig.Clone()
	}
	tc.ServerName = u.Hostname()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	if err := tls.Client(conn, tc).HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return nil
}

// MaxBody bounds what is read of an answer.
const MaxBody = 1 << 20

// Answer is what came back from one request.
type Answer struct {
	Status int
	Body   []byte
	// Wrote is true once the whole request was written to the connection.
	Wrote bool
	// Err is a transport failure (no answer, or an answer cut off).
	Err error
}

// Do sends req once on hc and reads the whole answer.
func Do(hc *http.Client, req *http.Request) Answer {
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{Wrote: wrote.Load(), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	return Answer{Status: resp.StatusCode, Body: body, Wrote: true, Err: err}
}

// Reason names a transport failure in a few words, without the URL (which
// could carry credentials) or any payload.
func Reason(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "network: " + oe.Op
	}
	return "transport error"
}

// Text is a JSON value a client reads as text: a string, or any other value
// (a number, say) as its JSON form. It never fails a decode, so a field whose
// type a host does not document cannot fail a whole answer.
type Text string

// UnmarshalJSON accepts any JSON value; null is "".
func (t *Text) UnmarshalJSON(b []byte) error {
	var s string
	switch {
	case string(b) == "null":
		*t = ""
	case json.Unmarshal(b, &s) == nil:
		*t = Text(s)
	default:
		*t = Text(b)
	}
	return nil
}

// Clip makes a host's text safe to log and audit: at most n bytes (cut on
// a rune boundary), and any run of digits that could be a card number a
// host echoed back (13 to 19 digits passing Luhn, or longer than 19) masked
// to its first six and last four. Shorter numbers (codes, references) stay.
func Clip(s string, n int) string {
	var b []byte
	run := -1
	flush := func(end int) {
		if run >= 0 {
			digits := s[run:end]
			if n := len(digits); n > 19 || n >= 13 && policy.Luhn(digits) {
				digits = secret.MaskPAN(digits)
			}
			b = append(b, digits...)
			run = -1
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			if run < 0 {
				run = i
			}
			continue
		}
		flush(i)
		b = append(b, c)
	}
	flush(len(s))
	if len(b) > n {
		b = b[:n]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return string(b)
}
