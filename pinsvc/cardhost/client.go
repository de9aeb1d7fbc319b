// Package cardhost is the client for the card host's REQ_CARD_PIN_CHANGE
// service (Network International's NISrvRequest family): it builds the
// seed's envelope, encrypts both PINs into PIN blocks, sends it over HTTP
// (optionally with OAuth2 client credentials and a TLS client certificate)
// and turns the answer, or the lack of one, into an outcome.Result.
//
// A PIN change is never resent by this package: once the request may have
// reached the host, a missing answer is reported as outcome.Ambiguous. A
// redirect is never followed (it would carry the PAN and both PIN blocks to
// an address nobody configured, and could apply the change twice).
package cardhost

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/contract"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ivr-pin/ivr-pin/pinsvc/hosturl"
	"github.com/ivr-pin/ivr-pin/pinsvc/internal/hostcall"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// Codes maps the card host's error codes to outcomes. The complete list is
// not public: these defaults are the codes the simulator uses, and each list
// is a setting so the bank's real codes can be configured without a build.
type Codes struct {
	WrongPIN       []string // the current PIN is wrong
	ExpiryMismatch []string // the expiry does not match the card
	UnknownCard    []string // the card number is not known
	NotEligible    []string // blocked, closed, PIN tries exceeded
	NoPINYet       []string // the card has no PIN yet
	WeakPIN        []string // the new PIN is refused
}

// DefaultCodes are the simulator's codes (see package sim/cardhostsim).
func DefaultCodes() Codes {
	return Codes{
		WrongPIN:       []string{"105"},
		ExpiryMismatch: []string{"103"},
		UnknownCard:    []string{"102"},
		NotEligible:    []string{"104", "106"},
		NoPINYet:       []string{"107"},
		WeakPIN:        []string{"110"},
	}
}

// NextKey is a zone PIN key rotation: the key, its id at the card host
// (it must differ from the current key's), and the instant it takes over.
type NextKey struct {
	Encrypter pinblock.Encrypter
	KeyID     string
	From      time.Time
}

// Config is everything the client needs.
type Config struct {
	URL               string        // full URL of the PIN change endpoint
	BankID            string        // at most 4 characters
	EncryptionMethod  string        // SYMMETRIC_ENC or ASYNC_ENC
	EncryptionKeyID   string        // optional
	EncryptionKeyType string        // optional
	Timeout           time.Duration // whole request, connect to last byte
	Encrypter         pinblock.Encrypter
	// Next, when set, is the key that takes over at Next.From: a call
	// that seals its first PIN from then on uses it, and names it by its
	// id; one that began before finishes under Encrypter. Every instance
	// switches at the same instant, by the clock alone.
	Next  *NextKey
	Codes Codes

	// SrcApplication and TargetApplication are the header's routing values
	// (defaults IVR and PCMS, as the seed); TimestampLayout is the header's
	// timestamp form (default the samples' ISO 8601, TimestampLayout).
	SrcApplication, TargetApplication string
	TimestampLayout                   string
	// SequenceByBIN gives the card_sequence_number for cards whose PAN starts
	// with a key (the longest matching prefix wins), for a bank whose cards
	// all carry the same one; a sequence number in the request wins over it.
	SequenceByBIN map[string]string
	// AllowInsecure accepts plain http to a host that is not loopback (a lab).
	AllowInsecure bool

	// OAuth2 client credentials; all three or none.
	TokenURL, ClientID, ClientSecret string
	// TLS client certificate and CA bundle (PEM files); optional.
	TLSCert, TLSKey, TLSCA string

	Now func() time.Time // injectable clock; nil means time.Now
}

// Client sends PIN changes. It is safe for concurrent use and reuses
// connections.
type Client struct {
	cfg  Config
	http *http.Client
	tr   *http.Transport
	ids  *IDGenerator
}

// New checks cfg and builds the HTTP stack.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("card host URL is not set")
	}
	if err := hosturl.Check(cfg.URL, cfg.AllowInsecure); err != nil {
		return nil, errors.New("card host URL " + err.Error())
	}
	if cfg.TokenURL != "" {
		if err := hosturl.Check(cfg.TokenURL, cfg.AllowInsecure); err != nil {
			return nil, errors.New("card host token URL " + err.Error())
		}
	}
	cfg.SrcApplication = cmp.Or(cfg.SrcApplication, SrcApplicationIVR)
	cfg.TargetApplication = cmp.Or(cfg.TargetApplication, TargetApplicationPCM)
	if len(cfg.SrcApplication) > MaxApplication || len(cfg.TargetApplication) > MaxApplication {
		return nil, fmt.Errorf("src and target application are at most %d characters", MaxApplication)
	}
	cfg.TimestampLayout = cmp.Or(cfg.TimestampLayout, TimestampLayout)
	if _, err := ParseTimestamp(time.Now().Format(cfg.TimestampLayout)); err != nil {
		return nil, errors.New("timestamp layout gives neither documented form")
	}
	for bin, seq := range cfg.SequenceByBIN {
		if bin == "" || digits("bin", bin) != nil || len(bin) > 11 || len(seq) != 2 || digits("seq", seq) != nil {
			return nil, errors.New("sequence numbers by BIN must map 1 to 11 digits to two digits")
		}
	}
	if cfg.BankID == "" || len(cfg.BankID) > MaxBankID {
		return nil, fmt.Errorf("bank id must be 1 to %d characters", MaxBankID)
	}
	switch cfg.EncryptionMethod {
	case MethodSymmetric, MethodAsymmetric:
	default:
		return nil, fmt.Errorf("encryption method must be %s or %s", MethodSymmetric, MethodAsymmetric)
	}
	if len(cfg.EncryptionKeyID) > MaxKeyField || len(cfg.EncryptionKeyType) > MaxKeyField {
		return nil, fmt.Errorf("encryption key id and type are at most %d characters", MaxKeyField)
	}
	if cfg.Encrypter == nil {
		return nil, errors.New("no PIN block encrypter configured")
	}
	if n := cfg.Next; n != nil {
		switch {
		case n.Encrypter == nil || n.From.IsZero():
			return nil, errors.New("the next key needs its encrypter and the instant it takes over")
		case n.KeyID == "" || n.KeyID == cfg.EncryptionKeyID || len(n.KeyID) > MaxKeyField:
			return nil, fmt.Errorf("the next key needs an encryption key id of its own, at most %d characters, other than the current key's", MaxKeyField)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Codes.WrongPIN == nil && cfg.Codes.NotEligible == nil && cfg.Codes.NoPINYet == nil {
		cfg.Codes = DefaultCodes()
	}
	hc, tr, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, http: hc, tr: tr, ids: NewIDGenerator()}, nil
}

// Reach checks that the card host, and its token URL when set, can be
// reached with the client's own TLS settings; nothing is sent
// (hostcall.Reach).
func (c *Client) Reach(ctx context.Context) error { return reach(ctx, c.tr, c.cfg) }

// Reach is Client.Reach for a configuration not (yet) made into a client:
// only its URLs and TLS settings are used.
func Reach(ctx context.Context, cfg Config) error {
	_, tr, err := httpClient(cfg)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	return reach(ctx, tr, cfg)
}

func reach(ctx context.Context, tr *http.Transport, cfg Config) error {
	if err := hostcall.Reach(ctx, tr, cfg.URL); err != nil {
		return err
	}
	if cfg.TokenURL != "" {
		if err := hostcall.Reach(ctx, tr, cfg.TokenURL); err != nil {
			return fmt.Errorf("token URL: %w", err)
		}
	}
	return nil
}

func httpClient(cfg Config) (*http.Client, *http.Transport, error) {
	tr := hostcall.NewTransport(cfg.Timeout)
	if cfg.TLSCert != "" || cfg.TLSCA != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
			if err != nil {
				return nil, nil, fmt.Errorf("card host TLS client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if cfg.TLSCA != "" {
			pem, err := os.ReadFile(cfg.TLSCA)
			if err != nil {
				return nil, nil, fmt.Errorf("card host CA bundle: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, errors.New("card host CA bundle holds no certificate")
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	hc := hostcall.NewClient(tr, cfg.Timeout)
	if cfg.TokenURL != "" {
		if cfg.ClientID == "" || cfg.ClientSecret == "" {
			return nil, nil, errors.New("OAuth2 needs the token URL, client id and client secret together")
		}
		cc := clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: cfg.TokenURL}
		// The token call rides the same TLS transport; ReuseTokenSource caches
		// the token until shortly before it expires.
		// Neither call follows a redirect: the client secret must not go
		// anywhere but the token URL either.
		tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient, hostcall.NewClient(tr, cfg.Timeout))
		hc = hostcall.NewClient(&oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, cc.TokenSource(tokenCtx)), Base: tr}, cfg.Timeout)
	}
	return hc, tr, nil
}

// ChangeRequest is one PIN change, both PINs already sealed (Seal): a
// caller who retries the current PIN sends the new PIN's sealed block again
// rather than keeping its digits.
type ChangeRequest struct {
	PAN                  secret.PAN
	Expiry               string // YYMM
	SequenceNumber       string // "01".."99" where the card needs one
	OldSealed, NewSealed *contract.SealedPIN
	TrackingID           string // optional, at most 15 characters; defaults to the msg_id
	// BeforeSend, when set, is called with the msg_id once the request is
	// built and before it is sent; an error leaves it unsent (Unavailable).
	BeforeSend func(msgID string) error
}

// Seal encrypts pin into its PIN block for pan and wipes pin, under the
// key in force at since (the call's first seal): the current key, or the
// next one from its instant on.
func (c *Client) Seal(pan secret.PAN, pin *secret.PIN, since time.Time) (contract.SealedPIN, error) {
	defer pin.Wipe()
	enc, id := c.cfg.Encrypter, c.cfg.EncryptionKeyID
	if n := c.cfg.Next; n != nil && !since.Before(n.From) {
		enc, id = n.Encrypter, n.KeyID
	}
	b, err := enc.Encrypt(pin.Bytes(), pan.Digits())
	if err != nil {
		return contract.SealedPIN{}, fmt.Errorf("%w: PIN block: %w", ErrLocal, err)
	}
	return contract.Seal(b, pan, id), nil
}

// ErrLocal marks failures on our side before anything was sent (a PIN that
// will not encode, a field over its documented length).
var ErrLocal = errors.New("card host request could not be built")

// ChangePIN submits the change and classifies the answer. The error is
// non-nil only for ErrLocal problems; host refusals and transport failures
// are outcomes, not errors.
func (c *Client) ChangePIN(ctx context.Context, req ChangeRequest) (outcome.Result, error) {
	msgID := c.ids.Next()
	res := outcome.Result{Host: outcome.CardHost, MsgID: msgID, Kind: outcome.Unavailable}
	body, err := c.build(msgID, req)
	if err != nil {
		return res, err
	}
	if req.BeforeSend != nil {
		if err := req.BeforeSend(msgID); err != nil {
			res.MsgID, res.Description = "", "not sent: its audit attempt could not be recorded"
			return res, nil
		}
	}
	return c.send(ctx, msgID, body), nil
}

func (c *Client) build(msgID string, req ChangeRequest) ([]byte, error) {
	pan := req.PAN.Digits()
	oldBlock, err := c.block(req.PAN, req.OldSealed)
	if err != nil {
		return nil, fmt.Errorf("%w: current PIN block: %w", ErrLocal, err)
	}
	newBlock, err := c.block(req.PAN, req.NewSealed)
	if err != nil {
		return nil, fmt.Errorf("%w: new PIN block: %w", ErrLocal, err)
	}
	// One request, one key: a call seals both PINs under the key it began
	// with, so this holds unless a caller mixed calls' blocks.
	keyID := req.OldSealed.KeyID()
	if req.NewSealed.KeyID() != keyID {
		return nil, fmt.Errorf("%w: the two PIN blocks were made under different keys", ErrLocal)
	}
	tracking := req.TrackingID
	tracking = cmp.Or(tracking, msgID)
	seq := req.SequenceNumber
	seq = cmp.Or(seq, c.sequenceFor(pan))
	r := Request{NISrvRequest: RequestEnvelope{RequestCardPINChange: &PINChangeRequest{
		Header: Header{
			MsgID:             msgID,
			MsgType:           MsgTypeTransaction,
			MsgFunction:       FunctionRequest,
			SrcApplication:    c.cfg.SrcApplication,
			TargetApplication: c.cfg.TargetApplication,
			Timestamp:         c.cfg.Now().Format(c.cfg.TimestampLayout),
			TrackingID:        tracking,
			BankID:            c.cfg.BankID,
		},
		Body: PINChangeBody{
			CardNumber:         pan,
			CardSequenceNumber: seq,
			CardExpiryDate:     req.Expiry,
			EncryptedOldPIN:    oldBlock,
			EncryptedNewPIN:    newBlock,
			EncryptionMethod:   c.cfg.EncryptionMethod,
			EncryptionKeyID:    keyID,
			EncryptionKeyType:  c.cfg.EncryptionKeyType,
		},
	}}}
	if err := r.NISrvRequest.RequestCardPINChange.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLocal, err)
	}
	return json.Marshal(r)
}

// block is a sealed PIN's block. One sealed for another card is refused:
// formats 0, 3 and 4 bind the block to the PAN.
func (c *Client) block(pan secret.PAN, sealed *contract.SealedPIN) (string, error) {
	b, ok := sealed.BlockFor(pan)
	if !ok {
		return "", errors.New("not sealed for this card")
	}
	return b, nil
}

// sequenceFor is the configured sequence number of the longest BIN prefix
// of pan, or "".
func (c *Client) sequenceFor(pan string) string {
	best, seq := 0, ""
	for bin, s := range c.cfg.SequenceByBIN {
		if len(bin) > best && strings.HasPrefix(pan, bin) {
			best, seq = len(bin), s
		}
	}
	return seq
}

// send posts body once and classifies what came back.
func (c *Client) send(ctx context.Context, msgID string, body []byte) outcome.Result {
	res := outcome.Result{Host: outcome.CardHost, MsgID: msgID}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		res.Kind, res.Description = outcome.Unavailable, "bad request URL"
		return res
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	a := hostcall.Do(c.http, hreq)
	switch {
	case a.Err != nil && !a.Wrote:
		res.Kind, res.Description = outcome.Unavailable, hostcall.Reason(a.Err)
		return res
	case a.Err != nil:
		res.Kind, res.Description = outcome.Ambiguous, hostcall.Reason(a.Err)
		return res
	case hostcall.IsRedirect(a.Status):
		// Not followed, and the host did not process the request here.
		res.Kind, res.Description = outcome.Unavailable, fmt.Sprintf("HTTP %d redirect not followed", a.Status)
		return res
	case a.Status != http.StatusOK:
		// A gateway may put the host's own answer behind an error status:
		// when the body is a well-formed answer to this request, it rules.
		if answered, ok := c.classifyNI(msgID, a.Body); ok {
			answered.Description = fmt.Sprintf("HTTP %d: %s", a.Status, answered.Description)
			return answered
		}
		res.Description = fmt.Sprintf("HTTP %d", a.Status)
		// 503, 429 and auth refusals say the service did not take the request;
		// other 5xx after the request was written leave us unsure.
		switch {
		case a.Status == http.StatusServiceUnavailable, a.Status == http.StatusTooManyRequests,
			a.Status == http.StatusUnauthorized, a.Status == http.StatusForbidden:
			res.Kind = outcome.Unavailable
		case a.Status >= 500:
			res.Kind = outcome.Ambiguous
		default:
			res.Kind = outcome.Rejected
		}
		return res
	}
	return c.classify(msgID, a.Body)
}

// classify reads a 200 answer; anything short of a well-formed answer to
// this msg_id leaves the outcome ambiguous (the host may have acted).
func (c *Client) classify(msgID string, data []byte) outcome.Result {
	res, _ := c.classifyNI(msgID, data)
	return res
}

// classifyNI reads an answer body. ok is false when the body is not a
// well-formed answer to msgID with status S or F; res is then Ambiguous
// with the reason.
func (c *Client) classifyNI(msgID string, data []byte) (res outcome.Result, ok bool) {
	res = outcome.Result{Host: outcome.CardHost, MsgID: msgID, Kind: outcome.Ambiguous}
	var r Response
	if err := json.Unmarshal(data, &r); err != nil || r.NISrvResponse.ResponseCardPINChange == nil {
		res.Description = "malformed answer"
		return res, false
	}
	a := r.NISrvResponse.ResponseCardPINChange
	if a.Header.MsgID != msgID {
		// An answer to some other request tells us nothing about ours.
		res.Description = "answer for another msg_id"
		return res, false
	}
	if fn := strings.ReplaceAll(a.Header.MsgFunction, " ", ""); fn != FunctionResponse {
		res.Description = "unexpected msg_function"
		return res, false
	}
	e := a.ExceptionDetails
	res.Code, res.Description = hostcall.Clip(string(e.ErrorCode), 20), hostcall.Clip(string(e.ErrorDescription), 100)
	res.Reference = hostcall.Clip(string(e.TransactionRefID), 64)
	switch e.Status {
	case StatusSuccess:
		res.Kind = outcome.Changed
	case StatusFailure:
		res.Kind = c.kindFor(res.Code)
	default:
		res.Description = "unknown status"
		return res, false
	}
	return res, true
}

func (c *Client) kindFor(code string) outcome.Kind {
	for _, m := range []struct {
		codes []string
		kind  outcome.Kind
	}{
		{c.cfg.Codes.WrongPIN, outcome.WrongPIN}, {c.cfg.Codes.NoPINYet, outcome.NoPINYet},
		{c.cfg.Codes.ExpiryMismatch, outcome.ExpiryMismatch}, {c.cfg.Codes.UnknownCard, outcome.UnknownCard},
		{c.cfg.Codes.NotEligible, outcome.NotEligible}, {c.cfg.Codes.WeakPIN, outcome.WeakPIN},
	} {
		if slices.Contains(m.codes, code) {
			return m.kind
		}
	}
	return outcome.Rejected
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }
