// Package keysecuresim is a faithful stand-in for the KeySecure open
// platform's merchant token, card list, card detail, private info and
// physical card set-PIN APIs. It checks the documented headers in the order
// the platform does (Api-Key, IP allow-list, Timestamp within 60 s and not in
// the future, Access-Token), the body rules (dates, 90-day windows, page
// size), the set-PIN rules (4017 virtual, 4005 not Activated, 4016 weak or
// malformed PIN after decrypting it with the apiSecret), keeps PINs only as
// keyed hashes, and injects faults through its Faults field. Its wire types
// and crypto are its own (wire.go), not the client's.
package keysecuresim

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

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

	// Dialect: how an independent platform may differ within the docs.
	// TimeAsNumber sends a card's "time" as Unix milliseconds, not text.
	TimeAsNumber bool
	// OmitSetResult answers a PIN set with code 0 and no data.result.
	OmitSetResult bool
	// EndlessList answers every card list page full of look-alike cards
	// (other last four digits), as a platform with a huge card base or a
	// paging bug does.
	EndlessList bool

	Now func() time.Time
}

// Card is the platform's record of a card.
type Card struct {
	CardNo, CardholderNo string
	Type                 string // Physical or Virtual
	Status               string // ToActivate, Activated, Frozen, Delete
	Created              time.Time
	PAN                  string
	Expiry               string // YYMM
	CVV                  string
	pinHash              []byte
}

// Server is the simulated platform; use it as an http.Handler.
type Server struct {
	Faults faults.Injector

	cfg   Config
	key   cipher.Block
	vault *sim.Vault
	mux   *http.ServeMux

	mu       sync.Mutex
	cards    map[string]*Card
	tokens   map[string]time.Time
	pinSets  int
	calls    map[string]int // by route pattern
	second   int64
	inSecond int
	received [][]byte
}

// New makes a platform with no cards. The apiSecret must be 16, 24 or 32
// bytes.
func New(cfg Config) (*Server, error) {
	key, err := aesKey(cfg.APISecret)
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
	s := &Server{cfg: cfg, key: key, cards: map[string]*Card{}, tokens: map[string]time.Time{}, calls: map[string]int{}}
	s.vault = sim.NewVault()
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET "+routeToken, s.guard(routeToken, false, s.token))
	s.mux.HandleFunc("POST "+routeSetPIN, s.guard(routeSetPIN, true, s.setPIN))
	s.mux.HandleFunc("POST "+routeCardList, s.guard(routeCardList, true, s.list))
	s.mux.HandleFunc("GET "+routeCardDetail, s.guard(routeCardDetail, true, s.detail))
	s.mux.HandleFunc("GET "+routePrivateInfo, s.guard(routePrivateInfo, true, s.privateInfo))
	s.mux.Handle("/_sim/fault", faults.AdminHandler(&s.Faults))
	return s, nil
}

// WithTestCards loads sim.TestCards that KeySecure knows.
func (s *Server) WithTestCards() *Server {
	created := time.Date(2026, 5, 22, 10, 0, 0, 0, time.UTC)
	if now := s.cfg.Now(); created.After(now) {
		created = now.Add(-24 * time.Hour)
	}
	for _, c := range sim.TestCards {
		if c.KeySecure == "" {
			continue
		}
		typ, status, _ := strings.Cut(c.KeySecure, "/")
		s.AddCard(Card{CardNo: c.CardNo, CardholderNo: c.CardholderNo, Type: typ, Status: status,
			Created: created, PAN: c.PAN, Expiry: c.Expiry, CVV: c.CVV})
	}
	return s
}

// AddCard adds or replaces a card.
func (s *Server) AddCard(card Card) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := card
	s.cards[card.CardNo] = &c
}

// Calls counts requests to a route by its pattern, for example
// "/open-api/v1/card/list" or "/open-api/v1/card/{card_no}/private/info".
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[route]
}

// Route patterns, for Calls.
const (
	RouteToken       = routeToken
	RouteSetPIN      = routeSetPIN
	RouteCardList    = routeCardList
	RouteCardDetail  = routeCardDetail
	RoutePrivateInfo = routePrivateInfo
)

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
	_ = json.NewEncoder(w).Encode(envelope{Code: code, Msg: msg, Data: data})
}

// guard checks the common headers, then applies faults around h.
func (s *Server) guard(route string, needToken bool, h func(http.ResponseWriter, *http.Request, []byte) (int, string, any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			answer(w, codeInvalidParam, "body too large", nil)
			return
		}
		s.mu.Lock()
		s.calls[route]++
		if len(body) > 0 {
			s.received = append(s.received, body)
		}
		s.mu.Unlock()
		f, answered := s.Faults.Before(w, r)
		if answered {
			return
		}
		code, msg, data := s.check(r, needToken)
		if code == codeOK {
			code, msg, data = h(w, r, body)
		}
		if faults.AnswerBroken(w, f, `{"code":0,"msg":"Succ`) {
			return
		}
		answer(w, code, msg, data)
	}
}

func (s *Server) check(r *http.Request, needToken bool) (int, string, any) {
	key := r.Header.Get(headerAPIKey)
	if key == "" {
		return codeAPIKeyMissing, "Api-Key is missing", nil
	}
	if !hmac.Equal([]byte(key), []byte(s.cfg.APIKey)) {
		return codeAPIKeyUnknown, "Api-Key does not exist", nil
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	allowed := false
	for _, ip := range s.cfg.AllowedIPs {
		allowed = allowed || ip == host
	}
	if !allowed {
		return codeIPNotAllowed, "IP not in whitelist", nil
	}
	ts := r.Header.Get(headerTimestamp)
	ms, err := strconv.ParseInt(ts, 10, 64)
	now := s.cfg.Now().UnixMilli()
	if len(ts) != 13 || err != nil || ms > now || now-ms > 60_000 {
		return codeTimestamp, "Timestamp invalid or expired", nil
	}
	if r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), contentTypeJSONPfx) {
		return codeInvalidParam, "Content-Type must be application/json", nil
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
			return codeTooFrequent, "Requests too frequent", nil
		}
	}
	if needToken {
		tok := r.Header.Get(headerAccessToken)
		if tok == "" {
			return codeTokenMissing, "Access-Token is missing", nil
		}
		exp, ok := s.tokens[tok]
		if !ok || !s.cfg.Now().Before(exp) {
			return codeTokenInvalid, "Access-Token invalid or expired", nil
		}
	}
	return codeOK, "Success", nil
}

func (s *Server) token(_ http.ResponseWriter, _ *http.Request, _ []byte) (int, string, any) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	exp := s.cfg.Now().Add(s.cfg.TokenTTL)
	s.mu.Lock()
	s.tokens[tok] = exp
	s.mu.Unlock()
	return codeOK, "Success", tokenAnswer{AccessToken: tok, ExpiredTime: exp.UnixMilli()}
}

func (s *Server) setPIN(_ http.ResponseWriter, _ *http.Request, body []byte) (int, string, any) {
	var b setPINRequest
	if err := json.Unmarshal(body, &b); err != nil || b.CardNo == "" || b.CardholderNo == "" || b.PIN == "" {
		return codeInvalidParam, "card_no, cardholder_no and pin are required", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cards[b.CardNo]
	if c == nil {
		return codeInvalidParam, "card does not exist", nil
	}
	if c.CardholderNo != b.CardholderNo {
		return codeNoCardholder, "cardholder does not exist", nil
	}
	if c.Type != typePhysical {
		return codeNotPhysical, "Only physical cards are supported", nil
	}
	if c.Status != statusActivated {
		return codeNotActivated, "Card status is not Activated", nil
	}
	pin, err := decryptECB(s.key, b.PIN)
	if err != nil {
		return codeWeakPIN, "PIN is invalid", nil
	}
	defer secret.Zero(pin)
	if !sixDigitsNotWeak(pin) {
		return codeWeakPIN, "PIN must be 6 digits without three identical or sequential digits", nil
	}
	c.pinHash = s.vault.Seal(c.CardNo, pin)
	s.pinSets++
	if s.cfg.OmitSetResult {
		return codeOK, "Success", nil
	}
	return codeOK, "Success", setPINAnswer{Result: true}
}

// sixDigitsNotWeak is the platform's PIN rule: exactly 6 digits, no run of
// three identical, ascending or descending digits.
func sixDigitsNotWeak(pin []byte) bool {
	if len(pin) != 6 {
		return false
	}
	for _, c := range pin {
		if c < '0' || c > '9' {
			return false
		}
	}
	for i := 2; i < len(pin); i++ {
		a, b, c := int(pin[i-2]), int(pin[i-1]), int(pin[i])
		if (a == b && b == c) || (b-a == 1 && c-b == 1) || (a-b == 1 && b-c == 1) {
			return false
		}
	}
	return true
}

func (s *Server) list(_ http.ResponseWriter, _ *http.Request, body []byte) (int, string, any) {
	var b listRequest
	if err := json.Unmarshal(body, &b); err != nil {
		return codeInvalidParam, "invalid body", nil
	}
	start, err1 := time.Parse(listDateLayout, b.StartTime)
	end, err2 := time.Parse(listDateLayout, b.EndTime)
	switch {
	case err1 != nil || err2 != nil:
		return codeInvalidParam, "start_time and end_time are required (yyyy-MM-dd)", nil
	case end.Before(start):
		return codeInvalidParam, "end_time is before start_time", nil
	case end.Sub(start) > (maxListWindowDays-1)*24*time.Hour:
		return codeInvalidParam, "time range exceeds 90 days", nil
	case b.Page == nil || b.Size == nil || *b.Page < 0 || *b.Size < 1 || *b.Size > maxListPageSize:
		return codeInvalidParam, "page from 0, size 1 to 100", nil
	}
	page, size := *b.Page, *b.Size
	if s.cfg.EndlessList {
		return codeOK, "Success", s.endlessPage(page, size)
	}
	s.mu.Lock()
	var matched []cardAnswer
	for _, c := range s.cards {
		if c.Created.Before(start) || !c.Created.Before(end.AddDate(0, 0, 1)) {
			continue
		}
		if (b.CardNo != "" && b.CardNo != c.CardNo) || (b.CardholderNo != "" && b.CardholderNo != c.CardholderNo) {
			continue
		}
		matched = append(matched, s.show(c))
	}
	s.mu.Unlock()
	sort.Slice(matched, func(i, j int) bool { return matched[i].CardNo < matched[j].CardNo })
	from := min(page*size, len(matched))
	to := min(from+size, len(matched))
	return codeOK, "Success", listAnswer{List: matched[from:to], Total: len(matched), Page: page, Size: size}
}

// endlessPage is a full page of look-alike physical cards ending in 0000.
func (s *Server) endlessPage(page, size int) listAnswer {
	out := listAnswer{List: make([]cardAnswer, size), Total: 1 << 30, Page: page, Size: size}
	for i := range out.List {
		n := page*size + i
		out.List[i] = s.show(&Card{CardNo: fmt.Sprintf("C9%011d", n), CardholderNo: fmt.Sprintf("U9%011d", n),
			Type: typePhysical, Status: statusActivated, Created: s.cfg.Now(), PAN: "4000000000000000"})
	}
	return out
}

// show is a card as the list and detail answers present it.
func (s *Server) show(c *Card) cardAnswer {
	a := cardAnswer{CardNo: c.CardNo, CardholderNo: c.CardholderNo, CardUniqueNo: "UQ" + c.CardNo, CardType: c.Type,
		Status: c.Status, Time: c.Created.UTC().Format(createdTimeLayout)}
	if len(c.PAN) >= 4 {
		a.CardLastNo = c.PAN[len(c.PAN)-4:]
	}
	if s.cfg.TimeAsNumber {
		a.Time = c.Created.UnixMilli()
	}
	return a
}

func (s *Server) detail(_ http.ResponseWriter, r *http.Request, _ []byte) (int, string, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cards[r.PathValue("card_no")]
	if c == nil {
		return codeInvalidParam, "card does not exist", nil
	}
	return codeOK, "Success", s.show(c)
}

func (s *Server) privateInfo(_ http.ResponseWriter, r *http.Request, _ []byte) (int, string, any) {
	if !s.cfg.PCIDisplay {
		return codePCINotEnabled, "PCI display is not enabled", nil
	}
	s.mu.Lock()
	c := s.cards[r.PathValue("card_no")]
	s.mu.Unlock()
	if c == nil {
		return codeInvalidParam, "card does not exist", nil
	}
	year, month := "", ""
	if len(c.Expiry) == 4 {
		year, month = "20"+c.Expiry[:2], c.Expiry[2:]
	}
	plain, _ := json.Marshal(privateInfoPlain{PAN: c.PAN, ExpYear: year, ExpMonth: month, CVV: c.CVV})
	defer secret.Zero(plain)
	return codeOK, "Success", encryptECB(s.key, plain)
}
