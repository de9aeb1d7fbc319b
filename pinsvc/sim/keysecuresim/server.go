// Package keysecuresim is a faithful stand-in for the KeySecure open
// platform's merchant token, card list, card detail, private info and
// physical card set-PIN APIs. It checks the documented headers in the order
// the platform does (Api-Key, IP allow-list, Timestamp within 60 s and not in
// the future, Access-Token), the body rules (dates, 90-day windows, page
// size), the set-PIN rules (4017 virtual, 4005 not Activated, 4016 weak or
// malformed PIN after decrypting it with the apiSecret), keeps PINs only as
// keyed hashes, and injects faults through its Faults field.
package keysecuresim

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/faults"
)

// Config sets up the simulated platform.
type Config struct {
	APIKey    string
	APISecret string // its UTF-8 bytes are the AES key
	// AllowedIPs is the Api-Key's IP allow-list (default 127.0.0.1 and ::1).
	AllowedIPs []string
	TokenTTL   time.Duration // default 2 h
	// PCIDisplay enables private info (otherwise 1013).
	PCIDisplay bool
	// MaxPerSecond limits calls per second (1009); 0 means no limit.
	MaxPerSecond int
	Now          func() time.Time
}

// Card is the platform's record of a card.
type Card struct {
	keysecure.Card
	PAN            string
	ExpYear, ExpMo string
	pinHash        []byte
}

// Server is the simulated platform; use it as an http.Handler.
type Server struct {
	Faults faults.Injector

	cfg   Config
	key   *secret.Key
	vault *sim.Vault
	mux   *http.ServeMux

	mu       sync.Mutex
	cards    map[string]*Card
	tokens   map[string]time.Time
	pinSets  int
	second   int64
	inSecond int
	received [][]byte
}

// New makes a platform with no cards. The apiSecret must be 16, 24 or 32
// bytes.
func New(cfg Config) (*Server, error) {
	key, err := keysecure.SecretKey(cfg.APISecret)
	if err != nil {
		return nil, err
	}
	if cfg.AllowedIPs == nil {
		cfg.AllowedIPs = []string{"127.0.0.1", "::1"}
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 2 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, key: key, cards: map[string]*Card{}, tokens: map[string]time.Time{}}
	s.vault = sim.NewVault()
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET "+keysecure.PathToken, s.guard(false, s.token))
	s.mux.HandleFunc("POST "+keysecure.PathSetPIN, s.guard(true, s.setPIN))
	s.mux.HandleFunc("POST "+keysecure.PathCardList, s.guard(true, s.list))
	s.mux.HandleFunc("GET "+keysecure.PathCardPrefix+"{card_no}/detail", s.guard(true, s.detail))
	s.mux.HandleFunc("GET "+keysecure.PathCardPrefix+"{card_no}/private/info", s.guard(true, s.privateInfo))
	s.mux.Handle("/_sim/fault", faults.AdminHandler(&s.Faults))
	return s, nil
}

// WithTestCards loads sim.TestCards that KeySecure knows.
func (s *Server) WithTestCards() *Server {
	for _, c := range sim.TestCards {
		if c.KeySecure == "" {
			continue
		}
		typ, status, _ := strings.Cut(c.KeySecure, "/")
		s.AddCard(keysecure.Card{CardNo: c.CardNo, CardholderNo: c.CardholderNo, CardType: typ, Status: status,
			Time: "2026-05-22 10:00:00"}, c.PAN, c.Expiry)
	}
	return s
}

// AddCard adds a card; expiry is YYMM. card.Time ("yyyy-MM-dd HH:mm:ss") is
// its creation time, which the card list filters on.
func (s *Server) AddCard(card keysecure.Card, pan, expiry string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	card.CardLastNo = pan[len(pan)-4:]
	s.cards[card.CardNo] = &Card{Card: card, PAN: pan, ExpYear: "20" + expiry[:2], ExpMo: expiry[2:]}
}

// PINIs reports whether a card's PIN is pin (for tests).
func (s *Server) PINIs(cardNo, pin string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cards[cardNo]
	return c != nil && s.vault.Matches(c.pinHash, cardNo, []byte(pin))
}

// PINSets counts PINs set.
func (s *Server) PINSets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pinSets
}

// ExpireTokens makes every issued token invalid, as a platform restart or an
// expiry mid-run does.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
}

// Received returns every request body received.
func (s *Server) Received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.received...)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func answer(w http.ResponseWriter, code int, msg string, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "msg": msg, "data": data})
}

// guard checks the common headers, then applies faults around h.
func (s *Server) guard(needToken bool, h func(http.ResponseWriter, *http.Request, []byte) (int, string, any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			answer(w, keysecure.CodeInvalidParam, "body too large", nil)
			return
		}
		s.mu.Lock()
		if len(body) > 0 {
			s.received = append(s.received, body)
		}
		s.mu.Unlock()
		f, answered := s.Faults.Before(w, r)
		if answered {
			return
		}
		code, msg, data := s.check(r, needToken)
		if code == keysecure.CodeOK {
			code, msg, data = h(w, r, body)
		}
		switch f.Kind {
		case faults.Reset:
			faults.ResetConnection(w)
			return
		case faults.Malformed:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"code":0,"msg":"Succ`)
			return
		}
		answer(w, code, msg, data)
	}
}

func (s *Server) check(r *http.Request, needToken bool) (int, string, any) {
	key := r.Header.Get(keysecure.HeaderAPIKey)
	if key == "" {
		return keysecure.CodeAPIKeyMissing, "Api-Key is missing", nil
	}
	if !hmac.Equal([]byte(key), []byte(s.cfg.APIKey)) {
		return keysecure.CodeAPIKeyUnknown, "Api-Key does not exist", nil
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	allowed := false
	for _, ip := range s.cfg.AllowedIPs {
		allowed = allowed || ip == host
	}
	if !allowed {
		return keysecure.CodeIPNotAllowed, "IP not in whitelist", nil
	}
	ts := r.Header.Get(keysecure.HeaderTimestamp)
	ms, err := strconv.ParseInt(ts, 10, 64)
	now := s.cfg.Now().UnixMilli()
	if len(ts) != 13 || err != nil || ms > now || now-ms > 60_000 {
		return keysecure.CodeTimestamp, "Timestamp invalid or expired", nil
	}
	if r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return keysecure.CodeInvalidParam, "Content-Type must be application/json", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.MaxPerSecond > 0 {
		sec := now / 1000
		if sec != s.second {
			s.second, s.inSecond = sec, 0
		}
		s.inSecond++
		if s.inSecond > s.cfg.MaxPerSecond {
			return keysecure.CodeTooFrequent, "Requests too frequent", nil
		}
	}
	if needToken {
		tok := r.Header.Get(keysecure.HeaderToken)
		if tok == "" {
			return keysecure.CodeTokenMissing, "Access-Token is missing", nil
		}
		exp, ok := s.tokens[tok]
		if !ok || !s.cfg.Now().Before(exp) {
			return keysecure.CodeTokenInvalid, "Access-Token invalid or expired", nil
		}
	}
	return keysecure.CodeOK, "Success", nil
}

func (s *Server) token(_ http.ResponseWriter, _ *http.Request, _ []byte) (int, string, any) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	exp := s.cfg.Now().Add(s.cfg.TokenTTL)
	s.mu.Lock()
	s.tokens[tok] = exp
	s.mu.Unlock()
	return keysecure.CodeOK, "Success", keysecure.TokenData{AccessToken: tok, ExpiredTime: exp.UnixMilli()}
}

func (s *Server) setPIN(_ http.ResponseWriter, _ *http.Request, body []byte) (int, string, any) {
	var b keysecure.SetPINBody
	if err := json.Unmarshal(body, &b); err != nil || b.CardNo == "" || b.CardholderNo == "" || b.PIN == "" {
		return keysecure.CodeInvalidParam, "card_no, cardholder_no and pin are required", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cards[b.CardNo]
	if c == nil {
		return keysecure.CodeInvalidParam, "card does not exist", nil
	}
	if c.CardholderNo != b.CardholderNo {
		return keysecure.CodeCardholder, "cardholder does not exist", nil
	}
	if c.CardType != keysecure.TypePhysical {
		return keysecure.CodeNotPhysical, "Only physical cards are supported", nil
	}
	if c.Status != keysecure.StatusActivated {
		return keysecure.CodeNotActivated, "Card status is not Activated", nil
	}
	pin, err := keysecure.DecryptECB(s.key, b.PIN)
	if err != nil {
		return keysecure.CodeWeakPIN, "PIN is invalid", nil
	}
	defer secret.Zero(pin)
	if err := policy.KeySecurePINPolicy.CheckNew(secret.NewPIN(pin), nil); err != nil {
		return keysecure.CodeWeakPIN, "PIN must be 6 digits without three identical or sequential digits", nil
	}
	c.pinHash = s.vault.Seal(c.CardNo, pin)
	s.pinSets++
	return keysecure.CodeOK, "Success", keysecure.SetPINData{Result: true}
}

func (s *Server) list(_ http.ResponseWriter, _ *http.Request, body []byte) (int, string, any) {
	var b keysecure.CardListBody
	if err := json.Unmarshal(body, &b); err != nil {
		return keysecure.CodeInvalidParam, "invalid body", nil
	}
	start, err1 := time.Parse(keysecure.DateLayout, b.StartTime)
	end, err2 := time.Parse(keysecure.DateLayout, b.EndTime)
	switch {
	case err1 != nil || err2 != nil:
		return keysecure.CodeInvalidParam, "start_time and end_time are required (yyyy-MM-dd)", nil
	case end.Before(start):
		return keysecure.CodeInvalidParam, "end_time is before start_time", nil
	case end.Sub(start) > (keysecure.MaxWindowDays-1)*24*time.Hour:
		return keysecure.CodeInvalidParam, "time range exceeds 90 days", nil
	case b.Page < 0 || b.Size < 1 || b.Size > keysecure.MaxPageSize:
		return keysecure.CodeInvalidParam, "page from 0, size 1 to 100", nil
	}
	s.mu.Lock()
	var matched []keysecure.Card
	for _, c := range s.cards {
		created, err := time.Parse("2006-01-02 15:04:05", c.Time)
		if err != nil || created.Before(start) || !created.Before(end.AddDate(0, 0, 1)) {
			continue
		}
		if (b.CardNo != "" && b.CardNo != c.CardNo) || (b.CardholderNo != "" && b.CardholderNo != c.CardholderNo) {
			continue
		}
		matched = append(matched, c.Card)
	}
	s.mu.Unlock()
	sort.Slice(matched, func(i, j int) bool { return matched[i].CardNo < matched[j].CardNo })
	from := min(b.Page*b.Size, len(matched))
	to := min(from+b.Size, len(matched))
	return keysecure.CodeOK, "Success", keysecure.CardListData{List: matched[from:to], Total: len(matched)}
}

func (s *Server) detail(_ http.ResponseWriter, r *http.Request, _ []byte) (int, string, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cards[r.PathValue("card_no")]
	if c == nil {
		return keysecure.CodeInvalidParam, "card does not exist", nil
	}
	return keysecure.CodeOK, "Success", c.Card
}

func (s *Server) privateInfo(_ http.ResponseWriter, r *http.Request, _ []byte) (int, string, any) {
	if !s.cfg.PCIDisplay {
		return keysecure.CodePCINotEnabled, "PCI display is not enabled", nil
	}
	s.mu.Lock()
	c := s.cards[r.PathValue("card_no")]
	s.mu.Unlock()
	if c == nil {
		return keysecure.CodeInvalidParam, "card does not exist", nil
	}
	plain, _ := json.Marshal(keysecure.PrivateInfo{PAN: c.PAN, ExpYear: c.ExpYear, ExpMonth: c.ExpMo, CVV: "123"})
	defer secret.Zero(plain)
	enc, err := keysecure.EncryptECB(s.key, plain)
	if err != nil {
		return keysecure.CodeSystem, "System error", nil
	}
	return keysecure.CodeOK, "Success", enc
}
