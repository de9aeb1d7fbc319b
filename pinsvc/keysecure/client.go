// Package keysecure is the client for the KeySecure open platform: the
// merchant token (cached, renewed before expiry and once on 1006/1007), the
// card lookup that turns a PAN a caller typed into KeySecure's card_no and
// cardholder_no, and the physical card set-PIN call with the PIN encrypted
// AES/ECB/PKCS5Padding under the merchant's apiSecret. Its rules (6 digits,
// not weak, physical, Activated) are checked before any set-PIN call.
package keysecure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/internal/hostcall"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// Config is everything the client needs.
type Config struct {
	BaseURL   string      // e.g. https://openplatform.keysecure.io
	APIKey    string      // merchant Api-Key
	APISecret *secret.Key // from SecretKey(apiSecret)
	Timeout   time.Duration
	Language  string // optional: zh_CN or en_US
	Timezone  string // optional, platform default UTC+8
	// Lookback is how far back card creation dates are searched when finding
	// a card from its PAN (default two years, in 90-day windows).
	Lookback time.Duration
	// RenewBefore renews the token this long before it expires (default 5 min).
	RenewBefore time.Duration
	Now         func() time.Time
}

// Client talks to KeySecure. Safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client

	mu        sync.Mutex
	token     string
	expiresAt time.Time
}

// New checks cfg.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("KeySecure URL is not set")
	}
	if _, err := url.Parse(cfg.BaseURL); err != nil {
		return nil, errors.New("KeySecure URL is not a URL")
	}
	if cfg.APIKey == "" {
		return nil, errors.New("KeySecure Api-Key is not set")
	}
	if cfg.APISecret == nil || cfg.APISecret.Algorithm() != secret.AES {
		return nil, errors.New("KeySecure apiSecret is not set")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Lookback <= 0 {
		cfg.Lookback = 2 * 365 * 24 * time.Hour
	}
	if cfg.RenewBefore <= 0 {
		cfg.RenewBefore = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	tr := hostcall.NewTransport(cfg.Timeout)
	return &Client{cfg: cfg, http: &http.Client{Transport: tr, Timeout: cfg.Timeout}}, nil
}

// hostError is a KeySecure answer that was not code 0, or a transport
// failure, carried as an outcome.
type hostError struct{ res outcome.Result }

func (e *hostError) Error() string { return e.res.String() }

// AsResult extracts the outcome from an error returned by this package.
func AsResult(err error) (outcome.Result, bool) {
	var he *hostError
	if errors.As(err, &he) {
		return he.res, true
	}
	return outcome.Result{}, false
}

func failure(kind outcome.Kind, code int, desc string) error {
	c := ""
	if code != 0 {
		c = strconv.Itoa(code)
	}
	return &hostError{outcome.Result{Kind: kind, Host: outcome.KeySecure, Code: c, Description: desc}}
}

// kindFor maps a documented code to an outcome. mayHaveActed is true for the
// set-PIN call, where a system error leaves the result unknown.
func kindFor(code int, mayHaveActed bool) outcome.Kind {
	switch {
	case code == CodeNotActivated, code == CodeNotPhysical, code >= 2001 && code <= 2007:
		return outcome.NotEligible
	case code == CodeWeakPIN:
		return outcome.WeakPIN
	case code == CodeInvalidParam:
		return outcome.Rejected
	case code == CodeSystem && mayHaveActed:
		return outcome.Ambiguous
	}
	// Credentials, IP allow-list, clock, rate limit, merchant state, PCI
	// display: the platform refused before acting; the line is unavailable.
	return outcome.Unavailable
}

// Token returns a valid access token, fetching one when none is cached or
// the cached one is about to expire.
func (c *Client) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.cfg.Now().Add(c.cfg.RenewBefore).Before(c.expiresAt) {
		return c.token, nil
	}
	var td TokenData
	if err := c.call(ctx, http.MethodGet, PathToken, nil, "", &td, false); err != nil {
		return "", err
	}
	if td.AccessToken == "" {
		return "", failure(outcome.Unavailable, 0, "token answer without a token")
	}
	c.token, c.expiresAt = td.AccessToken, time.UnixMilli(td.ExpiredTime)
	return c.token, nil
}

func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

// authed calls an API that needs the token, renewing it once when the
// platform says it is missing or invalid (1006/1007): the platform refused
// before acting, so the retry cannot apply anything twice.
func (c *Client) authed(ctx context.Context, method, path string, body, out any, mayHaveActed bool) error {
	for attempt := 0; ; attempt++ {
		tok, err := c.Token(ctx)
		if err != nil {
			return err
		}
		err = c.call(ctx, method, path, body, tok, out, mayHaveActed)
		res, ok := AsResult(err)
		if attempt == 0 && ok && (res.Code == strconv.Itoa(CodeTokenMissing) || res.Code == strconv.Itoa(CodeTokenInvalid)) {
			c.dropToken(tok)
			continue
		}
		return err
	}
}

// call sends one request and decodes data into out.
func (c *Client) call(ctx context.Context, method, path string, body any, token string, out any, mayHaveActed bool) error {
	var rdr *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rdr = bytes.NewReader(b)
	} else {
		rdr = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.BaseURL+path, rdr)
	if err != nil {
		return failure(outcome.Unavailable, 0, "bad request URL")
	}
	req.Header.Set(HeaderAPIKey, c.cfg.APIKey)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(c.cfg.Now().UnixMilli(), 10))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set(HeaderToken, token)
	}
	if c.cfg.Language != "" {
		req.Header.Set(HeaderLanguage, c.cfg.Language)
	}
	if c.cfg.Timezone != "" {
		req.Header.Set(HeaderTimezone, c.cfg.Timezone)
	}
	a := hostcall.Do(c.http, req)
	unsure := outcome.Unavailable
	if mayHaveActed {
		unsure = outcome.Ambiguous
	}
	switch {
	case a.Err != nil && !a.Wrote:
		return failure(outcome.Unavailable, 0, hostcall.Reason(a.Err))
	case a.Err != nil:
		return failure(unsure, 0, hostcall.Reason(a.Err))
	case a.Status == http.StatusServiceUnavailable || a.Status == http.StatusTooManyRequests:
		return failure(outcome.Unavailable, 0, fmt.Sprintf("HTTP %d", a.Status))
	case a.Status >= 500:
		return failure(unsure, 0, fmt.Sprintf("HTTP %d", a.Status))
	case a.Status != http.StatusOK:
		return failure(outcome.Rejected, 0, fmt.Sprintf("HTTP %d", a.Status))
	}
	var env Envelope
	if err := json.Unmarshal(a.Body, &env); err != nil {
		return failure(unsure, 0, "malformed answer")
	}
	if env.Code != CodeOK {
		return failure(kindFor(env.Code, mayHaveActed), env.Code, truncate(env.Msg, 100))
	}
	if out != nil && len(env.Data) > 0 {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return failure(unsure, 0, "malformed data")
		}
	}
	return nil
}

// CardDetail returns one card.
func (c *Client) CardDetail(ctx context.Context, cardNo string) (Card, error) {
	var card Card
	err := c.authed(ctx, http.MethodGet, PathCardPrefix+url.PathEscape(cardNo)+"/detail", nil, &card, false)
	return card, err
}

// PrivateInfo returns a card's decrypted private info. Callers Wipe it.
func (c *Client) PrivateInfo(ctx context.Context, cardNo string) (PrivateInfo, error) {
	var enc string
	if err := c.authed(ctx, http.MethodGet, PathCardPrefix+url.PathEscape(cardNo)+"/private/info", nil, &enc, false); err != nil {
		return PrivateInfo{}, err
	}
	plain, err := DecryptECB(c.cfg.APISecret, enc)
	if err != nil {
		return PrivateInfo{}, failure(outcome.Unavailable, 0, "private info does not decrypt under the apiSecret")
	}
	defer secret.Zero(plain)
	var pi PrivateInfo
	if err := json.Unmarshal(plain, &pi); err != nil {
		return PrivateInfo{}, failure(outcome.Unavailable, 0, "private info is not JSON")
	}
	return pi, nil
}

// CardRef is how KeySecure identifies a card.
type CardRef struct {
	CardNo, CardholderNo string
}

// FindCard finds the physical card whose PAN and expiry the caller typed:
// it lists cards by creation date in 90-day windows going back Lookback,
// keeps physical cards with the same last four digits, and confirms each
// candidate through its private info (PAN and expiry must both match). A
// card that is not found is outcome.NotEligible.
func (c *Client) FindCard(ctx context.Context, pan secret.PAN, exp policy.Expiry) (CardRef, error) {
	last4 := pan.Last4()
	end := c.cfg.Now()
	oldest := end.Add(-c.cfg.Lookback)
	for end.After(oldest) {
		start := end.AddDate(0, 0, -(MaxWindowDays - 1))
		if start.Before(oldest) {
			start = oldest
		}
		for page := 0; ; page++ {
			var data CardListData
			body := CardListBody{StartTime: start.Format(DateLayout), EndTime: end.Format(DateLayout), Page: page, Size: MaxPageSize}
			if err := c.authed(ctx, http.MethodPost, PathCardList, body, &data, false); err != nil {
				return CardRef{}, err
			}
			for _, card := range data.List {
				if card.CardLastNo != last4 || card.CardType != TypePhysical {
					continue
				}
				ok, err := c.confirm(ctx, card.CardNo, pan, exp)
				if err != nil {
					return CardRef{}, err
				}
				if ok {
					return CardRef{CardNo: card.CardNo, CardholderNo: card.CardholderNo}, nil
				}
			}
			if len(data.List) < MaxPageSize {
				break
			}
		}
		end = start.AddDate(0, 0, -1)
	}
	return CardRef{}, failure(outcome.NotEligible, 0, "no physical card matches")
}

func (c *Client) confirm(ctx context.Context, cardNo string, pan secret.PAN, exp policy.Expiry) (bool, error) {
	pi, err := c.PrivateInfo(ctx, cardNo)
	if err != nil {
		return false, err
	}
	defer pi.Wipe()
	y, _ := strconv.Atoi(pi.ExpYear)
	m, _ := strconv.Atoi(pi.ExpMonth)
	return pi.PAN == pan.Digits() && y%100 == exp.Year%100 && m == int(exp.Month), nil
}

// SetRequest is a first PIN setup. CardNo and CardholderNo come from an
// agent transfer or from FindCard. The client wipes PIN whatever happens.
type SetRequest struct {
	CardNo, CardholderNo string
	PIN                  *secret.PIN
}

// SetPIN checks KeySecure's rules, then sets the PIN. Host refusals and
// transport failures come back as the Result; the error is for local faults.
func (c *Client) SetPIN(ctx context.Context, req SetRequest) (outcome.Result, error) {
	defer req.PIN.Wipe()
	res := outcome.Result{Host: outcome.KeySecure}
	if err := policy.KeySecurePINPolicy.CheckNew(req.PIN, nil); err != nil {
		res.Kind, res.Code, res.Description = outcome.WeakPIN, strconv.Itoa(CodeWeakPIN), "refused before sending: "+string(policy.ReasonOf(err))
		return res, nil
	}
	card, err := c.CardDetail(ctx, req.CardNo)
	if err != nil {
		return resultOf(err), nil
	}
	switch {
	case card.CardType != TypePhysical:
		res.Kind, res.Code, res.Description = outcome.NotEligible, strconv.Itoa(CodeNotPhysical), "not a physical card"
		return res, nil
	case card.Status != StatusActivated:
		res.Kind, res.Code, res.Description = outcome.NotEligible, strconv.Itoa(CodeNotActivated), "card status "+card.Status
		return res, nil
	case card.CardholderNo != req.CardholderNo:
		res.Kind, res.Description = outcome.NotEligible, "cardholder does not own the card"
		return res, nil
	}
	enc, err := EncryptECB(c.cfg.APISecret, req.PIN.Bytes())
	req.PIN.Wipe()
	if err != nil {
		return res, err
	}
	var data SetPINData
	err = c.authed(ctx, http.MethodPost, PathSetPIN, SetPINBody{CardNo: req.CardNo, CardholderNo: req.CardholderNo, PIN: enc}, &data, true)
	if err != nil {
		return resultOf(err), nil
	}
	if !data.Result {
		res.Kind, res.Code, res.Description = outcome.Rejected, "0", "result false"
		return res, nil
	}
	res.Kind, res.Code, res.Description = outcome.Changed, "0", "Success"
	return res, nil
}

func resultOf(err error) outcome.Result {
	if r, ok := AsResult(err); ok {
		return r
	}
	return outcome.Result{Kind: outcome.Unavailable, Host: outcome.KeySecure, Description: "local error"}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }
