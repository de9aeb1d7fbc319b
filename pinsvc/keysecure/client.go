// Package keysecure is the client for the KeySecure open platform: the
// merchant token (cached, renewed before expiry and once on 1006/1007), the
// card check that proves a first-setup caller holds the card (the card is
// found from the PAN typed, or named by an agent, and its security code is
// compared with the one in the card's private info), and the physical card
// set-PIN call with the PIN encrypted AES/ECB/PKCS5Padding under the
// merchant's apiSecret. Its rules (6 digits, not weak, physical, Activated)
// are checked before any set-PIN call. Redirects are never followed.
package keysecure

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/hosturl"
	"github.com/ivr-pin/ivr-pin/pinsvc/internal/hostcall"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// Config is everything the client needs.
type Config struct {
	BaseURL   string // e.g. https://openplatform.keysecure.io
	APIKey    string // merchant Api-Key
	APISecret Secret // SecretKey(apiSecret), or the token's key
	Timeout   time.Duration
	Language  string // optional: zh_CN or en_US
	Timezone  string // optional, platform default UTC+8
	// Lookback is how far back card creation dates are searched when finding
	// a card from its PAN (default two years, in 90-day windows).
	Lookback time.Duration
	// RenewBefore renews the token this long before it expires (default 5 min).
	RenewBefore time.Duration
	// ClockSkew is taken off the Timestamp header (default 2 s): the platform
	// refuses a timestamp in the future (1005), so a local clock running a
	// little fast must not fail every call. It stays well inside the 60 s the
	// platform accepts.
	ClockSkew time.Duration
	// MaxListRequests bounds the card list calls of one card search (default
	// 40); MaxCandidates bounds the private-info fetches (default 3). Both
	// keep one call from sweeping a merchant's whole card base.
	MaxListRequests int
	MaxCandidates   int
	// AllowInsecure accepts plain http to a host that is not loopback (a lab).
	AllowInsecure bool
	Now           func() time.Time
	// OnRequest, when set, hears the kind (RequestKinds) of every request
	// sent, so an operator sees what each first setup costs.
	OnRequest func(kind string)
	// Budget, when set, is asked before every request: false (or an
	// error) and the request is not sent; the check ends "unavailable".
	// It bounds what guessing spread over many calls costs the platform.
	Budget func(ctx context.Context) (bool, error)
}

// The kinds of request sent to KeySecure.
const (
	RequestToken       = "token"
	RequestList        = "list"
	RequestDetail      = "detail"
	RequestPrivateInfo = "private_info"
	RequestSet         = "set"
	RequestOther       = "other"
)

// RequestKinds lists every kind, for metrics that exist from start-up.
var RequestKinds = []string{RequestToken, RequestList, RequestDetail, RequestPrivateInfo, RequestSet, RequestOther}

// requestKind names the kind of a request path.
func requestKind(path string) string {
	switch {
	case path == PathToken:
		return RequestToken
	case path == PathCardList:
		return RequestList
	case path == PathSetPIN:
		return RequestSet
	case strings.HasPrefix(path, PathCardPrefix) && strings.HasSuffix(path, "/private/info"):
		return RequestPrivateInfo
	case strings.HasPrefix(path, PathCardPrefix) && strings.HasSuffix(path, "/detail"):
		return RequestDetail
	}
	return RequestOther
}

// Client talks to KeySecure. Safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	tr   *http.Transport

	mu        sync.Mutex
	token     string
	expiresAt time.Time
}

// New checks cfg.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("KeySecure URL is not set")
	}
	if err := hosturl.Check(cfg.BaseURL, cfg.AllowInsecure); err != nil {
		return nil, errors.New("KeySecure URL " + err.Error())
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
	if cfg.ClockSkew < 0 || cfg.ClockSkew > 30*time.Second {
		return nil, errors.New("KeySecure clock skew must be 0 to 30 s")
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = 2 * time.Second
	}
	if cfg.MaxListRequests <= 0 {
		cfg.MaxListRequests = 40
	}
	if cfg.MaxCandidates <= 0 {
		cfg.MaxCandidates = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	tr := hostcall.NewTransport(cfg.Timeout)
	return &Client{cfg: cfg, http: hostcall.NewClient(tr, cfg.Timeout), tr: tr}, nil
}

// Reach checks that KeySecure can be reached with the client's own TLS
// settings; nothing is sent (hostcall.Reach).
func (c *Client) Reach(ctx context.Context) error { return hostcall.Reach(ctx, c.tr, c.cfg.BaseURL) }

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
		c = codeText(code)
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
	c.token, c.expiresAt = td.AccessToken, time.UnixMilli(int64(td.ExpiredTime))
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
		if attempt == 0 && ok && (res.Code == codeText(CodeTokenMissing) || res.Code == codeText(CodeTokenInvalid)) {
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
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(c.cfg.Now().Add(-c.cfg.ClockSkew).UnixMilli(), 10))
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
	if c.cfg.Budget != nil {
		switch ok, err := c.cfg.Budget(ctx); {
		case err != nil:
			return failure(outcome.Unavailable, 0, "request budget cannot be read")
		case !ok:
			return failure(outcome.Unavailable, 0, "request budget spent")
		}
	}
	if c.cfg.OnRequest != nil {
		c.cfg.OnRequest(requestKind(path))
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
	case hostcall.IsRedirect(a.Status):
		// Never followed: the token and the PIN would go to an address
		// nobody configured. The platform did not act on this request.
		return failure(outcome.Unavailable, 0, fmt.Sprintf("HTTP %d redirect not followed", a.Status))
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
		return failure(kindFor(int(env.Code), mayHaveActed), int(env.Code), hostcall.Clip(string(env.Msg), 100))
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

// privateInfo returns a card's decrypted private info. Callers wipe it.
func (c *Client) privateInfo(ctx context.Context, cardNo string) (privateInfo, error) {
	var enc string
	if err := c.authed(ctx, http.MethodGet, PathCardPrefix+url.PathEscape(cardNo)+"/private/info", nil, &enc, false); err != nil {
		if res, ok := AsResult(err); ok && res.Code == codeText(CodePCINotEnabled) {
			// Without the card's details the line cannot prove the caller
			// holds the card, so it sets nothing.
			res.Kind = outcome.CannotVerify
			return privateInfo{}, &hostError{res}
		}
		return privateInfo{}, err
	}
	plain, err := DecryptECB(c.cfg.APISecret, enc)
	if err != nil {
		return privateInfo{}, failure(outcome.CannotVerify, 0, "private info does not decrypt under the apiSecret")
	}
	pi, err := parsePrivateInfo(plain)
	if err != nil {
		return privateInfo{}, failure(outcome.CannotVerify, 0, err.Error())
	}
	return pi, nil
}

// CardRef is how KeySecure identifies a card.
type CardRef struct {
	CardNo, CardholderNo string
}

// CardCheck is what a first-setup caller typed to prove they hold the card.
// A card named by an agent (CardNo, and CardholderNo when known) is checked
// by its security code alone; otherwise the card is found from PAN and
// Expiry. VerifyCard wipes Code whatever happens.
type CardCheck struct {
	PAN                  secret.PAN
	Expiry               policy.Expiry // zero when not typed
	CardNo, CardholderNo string
	Code                 *secret.SecurityCode // the 3 digits on the back (CVV2/CVC2)
}

// VerifyCard proves the caller holds the card before any PIN is sent: the
// card's private info must hold the same PAN, expiry and security code as
// typed (compared in constant time). The answer never says which of them
// differed: outcome.DetailsMismatch, which is also the answer when no
// physical card has the typed last four digits; a platform that will not
// show private info (1013) or a search past its bounds is
// outcome.CannotVerify (the line says both the same way). Only a card the
// caller has proved to hold is refused as outcome.NotEligible. The search
// runs on ctx: a hang-up stops it.
func (c *Client) VerifyCard(ctx context.Context, chk CardCheck) (CardRef, error) {
	defer chk.Code.Wipe()
	if chk.Code.Len() == 0 {
		return CardRef{}, failure(outcome.DetailsMismatch, 0, "no security code")
	}
	var ref CardRef
	if chk.CardNo != "" {
		ok, err := c.matches(ctx, chk.CardNo, chk)
		if err != nil {
			return CardRef{}, err
		}
		if !ok {
			return CardRef{}, failure(outcome.DetailsMismatch, 0, "card details do not match")
		}
		ref = CardRef{CardNo: chk.CardNo, CardholderNo: chk.CardholderNo}
	} else {
		found, err := c.search(ctx, chk)
		if err != nil {
			return CardRef{}, err
		}
		ref = found
	}
	// The caller has proved they hold the card: now it is safe to say
	// whether it can take a PIN, before they type one.
	card, err := c.CardDetail(ctx, ref.CardNo)
	if err != nil {
		return CardRef{}, err
	}
	if ref.CardholderNo == "" {
		ref.CardholderNo = card.CardholderNo
	}
	if err := eligible(card, ref.CardholderNo); err != nil {
		return CardRef{}, err
	}
	return ref, nil
}

// eligible applies the set-PIN rules that depend on the card: physical
// (4017), Activated (4005), and owned by the cardholder named.
func eligible(card Card, cardholderNo string) error {
	switch {
	case card.CardType != TypePhysical:
		return failure(outcome.NotEligible, CodeNotPhysical, "not a physical card")
	case card.Status != StatusActivated:
		return failure(outcome.NotEligible, CodeNotActivated, "card status "+hostcall.Clip(card.Status, 20))
	case card.CardholderNo != cardholderNo:
		return failure(outcome.NotEligible, 0, "cardholder does not own the card")
	}
	return nil
}

// search walks the card list by creation date in 90-day windows going back
// Lookback, newest first, and checks each physical card with the typed last
// four digits, until one matches or a bound is reached.
func (c *Client) search(ctx context.Context, chk CardCheck) (CardRef, error) {
	last4 := chk.PAN.Last4()
	end := c.cfg.Now()
	oldest := end.Add(-c.cfg.Lookback)
	requests, checked := 0, 0
	for end.After(oldest) {
		start := end.AddDate(0, 0, -(MaxWindowDays - 1))
		if start.Before(oldest) {
			start = oldest
		}
		for page := 0; ; page++ {
			if requests >= c.cfg.MaxListRequests {
				return CardRef{}, failure(outcome.CannotVerify, 0, "card search reached its request bound")
			}
			if err := ctx.Err(); err != nil {
				return CardRef{}, failure(outcome.Unavailable, 0, hostcall.Reason(err))
			}
			requests++
			var data CardListData
			body := CardListBody{StartTime: start.Format(DateLayout), EndTime: end.Format(DateLayout), Page: page, Size: MaxPageSize}
			if err := c.authed(ctx, http.MethodPost, PathCardList, body, &data, false); err != nil {
				return CardRef{}, err
			}
			for _, card := range data.List {
				if card.CardLastNo != last4 || card.CardType != TypePhysical || card.CardNo == "" {
					continue
				}
				if checked >= c.cfg.MaxCandidates {
					return CardRef{}, failure(outcome.DetailsMismatch, 0, "card details do not match")
				}
				checked++
				ok, err := c.matches(ctx, card.CardNo, chk)
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
	if checked > 0 {
		return CardRef{}, failure(outcome.DetailsMismatch, 0, "card details do not match")
	}
	// Said as a mismatch: "no such card" would tell a guesser which cards
	// exist. The description keeps what happened for the audit.
	return CardRef{}, failure(outcome.DetailsMismatch, 0, "no physical card with these last four digits")
}

// matches compares a card's private info with what the caller typed, every
// part in constant time and all parts always (no early exit that would time
// which one differed).
func (c *Client) matches(ctx context.Context, cardNo string, chk CardCheck) (bool, error) {
	pi, err := c.privateInfo(ctx, cardNo)
	if err != nil {
		return false, err
	}
	defer pi.wipe()
	ok := subtle.ConstantTimeCompare(pi.cvv, chk.Code.Bytes())
	if chk.PAN != "" {
		typed := []byte(chk.PAN.Digits())
		ok &= subtle.ConstantTimeCompare(pi.pan, typed)
		secret.Zero(typed)
	}
	if chk.Expiry.Year != 0 {
		same := pi.expiryPresent && pi.year%100 == chk.Expiry.Year%100 && pi.month == int(chk.Expiry.Month)
		ok &= subtle.ConstantTimeEq(b2i(same), 1)
	}
	return ok == 1, nil
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

func codeText(code int) string { return strconv.Itoa(code) }

// SetRequest is a first PIN setup of a card VerifyCard accepted. The client
// wipes PIN whatever happens.
type SetRequest struct {
	CardNo, CardholderNo string
	PIN                  *secret.PIN
	// BeforeSend, when set, is called with the line's reference for the set
	// (KeySecure's set request carries none of its own: the Result's MsgID
	// is this reference) once the card is found eligible and before the set
	// is sent; an error leaves it unsent (Unavailable).
	BeforeSend func(ref string) error
}

// SetPIN checks KeySecure's rules, then sets the PIN. Host refusals and
// transport failures come back as the Result; the error is for local faults.
func (c *Client) SetPIN(ctx context.Context, req SetRequest) (outcome.Result, error) {
	defer req.PIN.Wipe()
	res := outcome.Result{Host: outcome.KeySecure}
	if err := policy.KeySecurePINPolicy.CheckNew(req.PIN, policy.PINFacts{}); err != nil {
		res.Kind, res.Code, res.Description = outcome.WeakPIN, codeText(CodeWeakPIN), "refused before sending: "+string(policy.ReasonOf(err))
		return res, nil
	}
	card, err := c.CardDetail(ctx, req.CardNo)
	if err != nil {
		return resultOf(err), nil
	}
	if err := eligible(card, req.CardholderNo); err != nil {
		return resultOf(err), nil
	}
	enc, err := EncryptECB(c.cfg.APISecret, req.PIN.Bytes())
	req.PIN.Wipe()
	if err != nil {
		return res, err
	}
	res.MsgID = newReference()
	if req.BeforeSend != nil {
		if err := req.BeforeSend(res.MsgID); err != nil {
			res.MsgID, res.Kind, res.Description = "", outcome.Unavailable, "not sent: its audit attempt could not be recorded"
			return res, nil
		}
	}
	var data SetPINData
	err = c.authed(ctx, http.MethodPost, PathSetPIN, SetPINBody{CardNo: req.CardNo, CardholderNo: req.CardholderNo, PIN: enc}, &data, true)
	if err != nil {
		r := resultOf(err)
		r.MsgID = res.MsgID
		return r, nil
	}
	if data.Result != nil && !*data.Result {
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

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// newReference is the line's reference for one set request: "ks-" and 16
// random hex digits.
func newReference() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "ks-" + hex.EncodeToString(b)
}
