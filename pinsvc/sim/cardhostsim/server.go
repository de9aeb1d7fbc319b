// Package cardhostsim is a faithful stand-in for the card host's
// REQ_CARD_PIN_CHANGE service. It checks every documented field, keeps card
// state (the current PIN only as a keyed hash), decrypts the PIN blocks with
// its own copy of the zone PIN key (or RSA private key), counts wrong PINs,
// refuses a repeated msg_id, and answers with the documented envelope. Faults
// are injected through its Faults field. Its wire types and validation are
// its own (wire.go), not the client's.
//
// The card host's error code list is not public. The simulator's codes, which
// cardhost.DefaultCodes mirrors:
//
//	000 success                      106 PIN tries exceeded
//	101 invalid or missing field     107 no PIN set on the card yet
//	102 card not found               108 duplicate msg_id
//	103 expiry date does not match   109 PIN block cannot be decrypted
//	104 card not active              110 new PIN refused as weak
//	105 current PIN incorrect        111 unknown bank_id
package cardhostsim

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/faults"
)

// Config sets up the simulated host.
type Config struct {
	BankID string
	// ZPK decrypts SYMMETRIC_ENC blocks.
	ZPK *pinblock.ZPK
	// ZPKs, when set, are the keys by encryption_key_id (a key rotation:
	// the host holds both keys and decodes each request with the key its
	// id names); a request naming none of them cannot be decrypted.
	ZPKs map[string]*pinblock.ZPK
	// RSAKey decrypts ASYNC_ENC blocks with RSAFormat, RSAPadding, RSAMGF1 (the
	// MGF1 hash, "" for the OAEP hash) and RSAEncoding.
	RSAKey                           *rsa.PrivateKey
	RSAFormat                        pinblock.Format
	RSAPadding, RSAMGF1, RSAEncoding string
	// MaxTries wrong current PINs block the card (default 3).
	MaxTries int
	// OAuth2 client credentials; when ClientID is set the service requires a
	// bearer token from the /token route.
	ClientID, ClientSecret string
	// SrcApplication and TargetApplication the host expects (defaults IVR
	// and PCMS, the seed's values).
	SrcApplication, TargetApplication string

	// Dialect: how an independent host may answer within the docs.
	// FailureStatus answers a refusal (status F) with this HTTP status and
	// the NI body, as some gateways do (0: 200).
	FailureStatus int
	// RefAsNumber sends transaction_ref_id as a JSON number.
	RefAsNumber bool

	Now func() time.Time
}

// Card is the host's record of a card.
type Card struct {
	PAN    string
	Expiry string
	SeqNo  string
	Status string // "active", "blocked", "closed"
	hash   []byte // HMAC of PAN and PIN; nil when no PIN is set
	tries  int
}

// Server is the simulated host. Use it as an http.Handler.
type Server struct {
	Faults faults.Injector

	cfg   Config
	vault *sim.Vault
	mux   *http.ServeMux

	mu       sync.Mutex
	cards    map[string]*Card
	seen     map[string]bool
	tokens   map[string]time.Time
	applied  int
	received [][]byte
	observer func(cardNumber string)
	refs     int64
	slow     map[string]time.Duration // card number -> delay for its next request
	decoded  map[string]int           // encryption_key_id -> requests whose blocks it decrypted
}

// Decoded counts, by encryption_key_id, the requests whose two PIN blocks
// were decrypted under the key that id names.
func (s *Server) Decoded() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for id, n := range s.decoded {
		out[id] = n
	}
	return out
}

// SlowCard delays the answer to the next request for one card by d (the
// request is still processed), for tests that run many calls at once and
// want one of them slow.
func (s *Server) SlowCard(pan string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.slow == nil {
		s.slow = map[string]time.Duration{}
	}
	s.slow[pan] = d
}

// Observe calls f with the card number of every well-formed request as it
// arrives (the load driver times host latency with it).
func (s *Server) Observe(f func(cardNumber string)) {
	s.mu.Lock()
	s.observer = f
	s.mu.Unlock()
}

// Route is where the PIN change service listens.
const Route = "/PCServices/CardPinChange"

// TokenRoute is where the OAuth2 token endpoint listens.
const TokenRoute = "/PCServices/Token"

// New makes a simulator with no cards.
func New(cfg Config) *Server {
	if cfg.MaxTries == 0 {
		cfg.MaxTries = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.SrcApplication = cmp.Or(cfg.SrcApplication, "IVR")
	cfg.TargetApplication = cmp.Or(cfg.TargetApplication, "PCMS")
	s := &Server{cfg: cfg, cards: map[string]*Card{}, seen: map[string]bool{}, tokens: map[string]time.Time{}}
	s.vault = sim.NewVault()
	s.mux = http.NewServeMux()
	s.mux.HandleFunc(Route, s.pinChange)
	s.mux.HandleFunc(TokenRoute, s.token)
	s.mux.Handle("/_sim/fault", faults.AdminHandler(&s.Faults))
	return s
}

// WithTestCards loads sim.TestCards that the card host knows.
func (s *Server) WithTestCards() *Server {
	for _, c := range sim.TestCards {
		if c.CardHost == "" {
			continue
		}
		s.AddCard(c.PAN, c.Expiry, c.SeqNo, c.CardHost, c.PIN)
	}
	return s
}

// AddCard adds or replaces a card. pin "" means no PIN set yet.
func (s *Server) AddCard(pan, expiry, seq, status, pin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &Card{PAN: pan, Expiry: expiry, SeqNo: seq, Status: status}
	if pin != "" {
		c.hash = s.vault.Seal(pan, []byte(pin))
	}
	s.cards[pan] = c
}

// PINIs reports whether the card's current PIN is pin (for tests).
func (s *Server) PINIs(pan, pin string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cards[pan]
	return c != nil && s.vault.Matches(c.hash, pan, []byte(pin))
}

// Status returns a card's status and wrong-PIN count (for tests).
func (s *Server) Status(pan string) (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cards[pan]; c != nil {
		return c.Status, c.tries
	}
	return "", 0
}

// Applied counts PIN changes applied.
func (s *Server) Applied() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

// Received returns every request body received, for scans of what went over
// the wire.
func (s *Server) Received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.received...)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	_ = r.ParseForm()
	id, sec, ok := r.BasicAuth()
	if !ok {
		id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("grant_type") != "client_credentials" || s.cfg.ClientID == "" ||
		!hmac.Equal([]byte(id), []byte(s.cfg.ClientID)) || !hmac.Equal([]byte(sec), []byte(s.cfg.ClientSecret)) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
		return
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := strings.ToUpper(hexString(b))
	s.mu.Lock()
	s.tokens[tok] = s.cfg.Now().Add(time.Hour)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": 3600})
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

func (s *Server) authorised(r *http.Request) bool {
	if s.cfg.ClientID == "" {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && s.cfg.Now().Before(exp)
}

func (s *Server) pinChange(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		http.Error(w, "content type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	if !s.authorised(r) {
		http.Error(w, "unauthorised", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	s.mu.Lock()
	s.received = append(s.received, body)
	s.mu.Unlock()

	f, answered := s.Faults.Before(w, r)
	if answered {
		return
	}

	var req request
	if err := json.Unmarshal(body, &req); err != nil || req.NISrvRequest.RequestCardPINChange == nil {
		http.Error(w, "malformed request", http.StatusBadRequest)
		return
	}
	in := req.NISrvRequest.RequestCardPINChange
	s.mu.Lock()
	obs := s.observer
	s.refs++
	ref := s.refs
	s.mu.Unlock()
	if obs != nil {
		obs(in.Body.CardNumber)
	}
	code, desc := s.process(in)
	s.mu.Lock()
	delay := s.slow[in.Body.CardNumber]
	delete(s.slow, in.Body.CardNumber)
	s.mu.Unlock()
	if delay > 0 {
		faults.Sleep(r, delay)
	}
	status := statusFailure
	if code == codeOK {
		status = statusSuccess
	}

	hdr := in.Header
	if faults.AnswerBroken(w, f, faults.MalformedBody) {
		return
	}
	if f.Kind == faults.WrongMsgID {
		hdr.MsgID = "X" + hdr.MsgID[1:]
	}
	now := s.cfg.Now().Format(responseTimeLayout)
	hdr.MsgFunction = responseFunction
	hdr.Timestamp = now
	var resp response
	resp.NISrvResponse.ResponseCardPINChange = changeResponse{
		Header: hdr,
		ExceptionDetails: exceptionDetails{
			ApplicationName: "NITIBCO", DateTime: now, Status: status,
			ErrorCode: code, ErrorDescription: desc, TransactionRefID: fmt.Sprintf("TRN%012d", ref),
		},
	}
	if s.cfg.RefAsNumber {
		resp.NISrvResponse.ResponseCardPINChange.ExceptionDetails.TransactionRefID = 700000000000 + ref
	}
	w.Header().Set("Content-Type", "application/json")
	if status == statusFailure && s.cfg.FailureStatus != 0 {
		w.WriteHeader(s.cfg.FailureStatus)
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// process applies the host's rules in the order a host checks them and
// returns the error code and description.
func (s *Server) process(in *changeRequest) (string, string) {
	if err := in.validate(s.cfg.SrcApplication, s.cfg.TargetApplication); err != nil {
		return "101", "Invalid field " + err.Error()
	}
	if s.cfg.BankID != "" && in.Header.BankID != s.cfg.BankID {
		return "111", "Unknown bank"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[in.Header.MsgID] {
		return "108", "Duplicate message id"
	}
	s.seen[in.Header.MsgID] = true
	b := in.Body
	c := s.cards[b.CardNumber]
	if c == nil {
		return "102", "Card not found"
	}
	if c.Expiry != b.CardExpiryDate {
		return "103", "Card expiry date mismatch"
	}
	if c.SeqNo != "" && b.CardSequenceNumber != "" && c.SeqNo != b.CardSequenceNumber {
		return "102", "Card not found"
	}
	if c.Status != "active" {
		if c.Status == "blocked" && c.tries >= s.cfg.MaxTries {
			return "106", "PIN tries exceeded"
		}
		return "104", "Card not active"
	}
	if c.hash == nil {
		return "107", "No PIN set for card"
	}
	oldPIN, err := s.decrypt(b.EncryptionMethod, b.EncryptionKeyID, b.EncryptedOldPIN, b.CardNumber)
	if err != nil {
		return "109", "Unable to decrypt PIN block"
	}
	defer secret.Zero(oldPIN)
	newPIN, err := s.decrypt(b.EncryptionMethod, b.EncryptionKeyID, b.EncryptedNewPIN, b.CardNumber)
	if err != nil {
		return "109", "Unable to decrypt PIN block"
	}
	defer secret.Zero(newPIN)
	if s.decoded == nil {
		s.decoded = map[string]int{}
	}
	s.decoded[b.EncryptionKeyID]++
	if !s.vault.Matches(c.hash, c.PAN, oldPIN) {
		c.tries++
		if c.tries >= s.cfg.MaxTries {
			c.Status = "blocked"
			return "106", "PIN tries exceeded"
		}
		return "105", "Incorrect PIN"
	}
	if weakPIN(newPIN) || len(newPIN) < 4 || len(newPIN) > 6 {
		return "110", "PIN does not meet policy"
	}
	c.hash = s.vault.Seal(c.PAN, newPIN)
	c.tries = 0
	s.applied++
	return codeOK, "Success"
}

// weakPIN is the host's own rule: three identical, ascending or descending
// digits in a row.
func weakPIN(pin []byte) bool {
	for i := 2; i < len(pin); i++ {
		a, b, c := int(pin[i-2]), int(pin[i-1]), int(pin[i])
		if (a == b && b == c) || (b-a == 1 && c-b == 1) || (a-b == 1 && b-c == 1) {
			return true
		}
	}
	return false
}

func (s *Server) decrypt(method, keyID, block, pan string) ([]byte, error) {
	if method == methodAsymmetric {
		if s.cfg.RSAKey == nil {
			return nil, pinblock.ErrBlock
		}
		return pinblock.RSADecrypt(s.cfg.RSAKey, s.cfg.RSAFormat, s.cfg.RSAPadding, s.cfg.RSAMGF1, s.cfg.RSAEncoding, block, pan)
	}
	zpk := s.cfg.ZPK
	if s.cfg.ZPKs != nil {
		zpk = s.cfg.ZPKs[keyID]
	}
	if zpk == nil {
		return nil, pinblock.ErrBlock
	}
	return zpk.Decrypt(block, pan)
}
