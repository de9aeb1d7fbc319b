package ivr

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// rest is how a call's REST requests reach Asterisk: over HTTP (inbound
// transport) or as RESTRequest messages on the call's own websocket
// (outbound transport). Every request carries the caller's context and a
// deadline of its own; out, if non-nil, receives the JSON answer.
type rest interface {
	do(ctx context.Context, method, path string, q url.Values, out any) error
	// doJSON sends body as the request's JSON body (the parameters ARI
	// takes only there, such as an application's event filter).
	doJSON(ctx context.Context, method, path string, body []byte) error
}

// RESTError is an answer from Asterisk outside 2xx.
type RESTError struct {
	Method, Path string // Path is the ARI resource, e.g. channels/<id>/play/<playback id>
	Status       int
	Message      string // Asterisk's "message" field, if any
}

func (e *RESTError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("ARI %s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
	}
	return fmt.Sprintf("ARI %s %s: %d", e.Method, e.Path, e.Status)
}

// StatusOf is the HTTP status of a RESTError in err's chain, or 0.
func StatusOf(err error) int {
	var re *RESTError
	if errors.As(err, &re) {
		return re.Status
	}
	return 0
}

// answerError makes a RESTError of a non-2xx answer, reading Asterisk's
// {"message": ...} body when there is one.
func answerError(method, path string, status int, body []byte) error {
	var m struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &m)
	if len(m.Message) > 200 {
		m.Message = m.Message[:200]
	}
	return &RESTError{Method: method, Path: path, Status: status, Message: m.Message}
}

// httpREST is ARI's REST over HTTP, with the request's context and a
// deadline on every request (ari/v5's native client has neither).
type httpREST struct {
	base, username, password string // base: http://host:8088/ari
	timeout                  time.Duration
	client                   *http.Client
}

func newHTTPREST(base, username, password string, timeout time.Duration, tlsCfg *tls.Config) *httpREST {
	host := ""
	if u, err := url.Parse(base); err == nil {
		host = u.Hostname()
	}
	return &httpREST{
		base: strings.TrimSuffix(base, "/"), username: username, password: password, timeout: timeout,
		client: &http.Client{
			// ARI never redirects; a redirect is a misconfigured URL.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{
				DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConns:          256,
				MaxIdleConnsPerHost:   256,
				IdleConnTimeout:       90 * time.Second,
				ResponseHeaderTimeout: timeout,
				TLSClientConfig:       tlsFor(tlsCfg, host),
			},
		},
	}
}

func (h *httpREST) do(ctx context.Context, method, path string, q url.Values, out any) error {
	return h.request(ctx, method, path, q, nil, out)
}

func (h *httpREST) doJSON(ctx context.Context, method, path string, body []byte) error {
	return h.request(ctx, method, path, nil, body, nil)
}

func (h *httpREST) request(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	u := h.base + "/" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(h.username, h.password)
	resp, err := h.client.Do(req)
	if err != nil {
		// The URL error names the URL, and a query can hold a variable's
		// value: report the resource and the cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("ARI %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("ARI %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(method, path, resp.StatusCode, answer)
	}
	defer wipeFrame(answer) // an answer can hold a variable (a transferred card number)
	if out != nil && len(answer) > 0 {
		return json.Unmarshal(answer, out)
	}
	return nil
}

func (h *httpREST) close() { h.client.CloseIdleConnections() }

// tlsFor is the client TLS configuration for Asterisk at host: the given
// roots (or the system's), TLS 1.2 at least, the certificate verified
// against host.
func tlsFor(base *tls.Config, host string) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		c = base.Clone()
		if c.MinVersion < tls.VersionTLS12 {
			c.MinVersion = tls.VersionTLS12
		}
	}
	if c.ServerName == "" {
		c.ServerName = host
	}
	return c
}
