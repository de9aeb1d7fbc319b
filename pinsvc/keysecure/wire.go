package keysecure

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/ivr-pin/ivr-pin/pinsvc/internal/hostcall"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// The KeySecure open API's routes, headers and codes as the client uses them.
const (
	PathToken       = "/open-api/v1/merchant/token"
	PathSetPIN      = "/open-api/v1/card/pin/set"
	PathCardList    = "/open-api/v1/card/list"
	PathCardPrefix  = "/open-api/v1/card/" // + {card_no}/detail or /private/info
	HeaderAPIKey    = "Api-Key"
	HeaderTimestamp = "Timestamp"
	HeaderToken     = "Access-Token"
	HeaderLanguage  = "Language"
	HeaderTimezone  = "Timezone"
	DateLayout      = "2006-01-02"
	MaxWindowDays   = 90
	MaxPageSize     = 100
)

// The documented codes the client acts on. The others of the documented
// table fall to Rejected: 1002 Api-Key missing, 1003 IP not allowed, 1005
// timestamp out of range, 1008 Api-Key unknown, 1009 too frequent, 1010
// Api-Key disabled, 1011 Api-Key expired, 1021 merchant unknown, 1022
// merchant status, 2001-2007 cardholder errors.
const (
	CodeOK            = 0
	CodeSystem        = 1001
	CodeInvalidParam  = 1004
	CodeTokenMissing  = 1006
	CodeTokenInvalid  = 1007
	CodePCINotEnabled = 1013
	CodeNotActivated  = 4005
	CodeWeakPIN       = 4016
	CodeNotPhysical   = 4017
)

// Card types and statuses: the client sets PINs on physical cards that
// are Activated only (the others: Virtual; ToActivate, Frozen, Delete).
const (
	TypePhysical    = "Physical"
	TypeVirtual     = "Virtual"
	StatusActivated = "Activated"
)

// The types below are the client's reading of the platform's answers:
// lenient where the client does not act on a field (unknown fields, or a
// field such as the card list's "time" whose type is not documented, never
// fail an answer), strict where it does (the code, the token, the card's
// identifiers, type and status are checked). The simulator has wire types of
// its own, so a misreading here is caught by the tests rather than mirrored.

// Envelope is every answer: code 0 on success, msg says why otherwise.
type Envelope struct {
	Code Number          `json:"code"`
	Msg  Text            `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// Number is a JSON integer that a platform may also send as a numeric string.
type Number int64

// UnmarshalJSON accepts 42 and "42".
func (n *Number) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return errors.New("not a number")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("not a number")
	}
	*n = Number(v)
	return nil
}

// Text is a JSON value read as text for logs (see hostcall.Text).
type Text = hostcall.Text

// TokenData is the token call's data.
type TokenData struct {
	AccessToken string `json:"access_token"`
	ExpiredTime Number `json:"expired_time"` // Unix milliseconds
}

// SetPINBody is the set-PIN request body.
type SetPINBody struct {
	CardNo       string `json:"card_no"`
	CardholderNo string `json:"cardholder_no"`
	PIN          string `json:"pin"`
}

// SetPINData is the set-PIN answer's data. Result is a pointer: the seed
// documents code 0 as success, so only an explicit false is a refusal.
type SetPINData struct {
	Result *bool `json:"result"`
}

// CardListBody is the card list request body.
type CardListBody struct {
	StartTime    string `json:"start_time"`
	EndTime      string `json:"end_time"`
	Page         int    `json:"page"`
	Size         int    `json:"size"`
	CardNo       string `json:"card_no,omitempty"`
	CardholderNo string `json:"cardholder_no,omitempty"`
	CardUniqueNo string `json:"card_unique_no,omitempty"`
}

// Card is what the client reads of one card in a list or a detail answer:
// the fields it acts on, nothing else (the creation "time" is left out: its
// type is not documented and the client never uses it).
type Card struct {
	CardNo       string `json:"card_no"`
	CardholderNo string `json:"cardholder_no"`
	CardType     string `json:"card_type"`
	CardLastNo   string `json:"card_last_no"`
	Status       string `json:"status"`
}

// CardListData is the card list answer's data.
type CardListData struct {
	List []Card `json:"list"`
}

// privateInfo is a card's decrypted private info, kept out of Go strings:
// the PAN and the security code are sub-slices of one buffer that wipe()
// zeroes, so neither outlives the comparison.
type privateInfo struct {
	buf           []byte
	pan, cvv      []byte
	year, month   int
	expiryPresent bool
}

// wipe zeroes the decrypted buffer.
func (p *privateInfo) wipe() {
	secret.Zero(p.buf)
	*p = privateInfo{}
}

// parsePrivateInfo reads {"pan":..,"exp_year":..,"exp_month":..,"cvv":..}
// from plain (which it takes ownership of and the result's wipe zeroes).
// Each value may be a JSON string or number of digits.
func parsePrivateInfo(plain []byte) (privateInfo, error) {
	var raw struct {
		PAN      json.RawMessage `json:"pan"`
		ExpYear  json.RawMessage `json:"exp_year"`
		ExpMonth json.RawMessage `json:"exp_month"`
		CVV      json.RawMessage `json:"cvv"`
	}
	pi := privateInfo{buf: plain}
	if err := json.Unmarshal(plain, &raw); err != nil {
		pi.wipe()
		return privateInfo{}, errors.New("private info is not JSON")
	}
	// RawMessage values are copies: gather them into one owned buffer and
	// zero the copies at once.
	defer func() {
		secret.Zero(raw.PAN)
		secret.Zero(raw.CVV)
	}()
	pan, ok1 := digitsOf(raw.PAN)
	cvv, ok2 := digitsOf(raw.CVV)
	if !ok1 || !ok2 {
		pi.wipe()
		return privateInfo{}, errors.New("private info has no PAN or security code")
	}
	own := make([]byte, 0, len(pan)+len(cvv))
	own = append(own, pan...)
	own = append(own, cvv...)
	secret.Zero(plain)
	pi = privateInfo{buf: own, pan: own[:len(pan)], cvv: own[len(pan):]}
	y, oky := digitsOf(raw.ExpYear)
	m, okm := digitsOf(raw.ExpMonth)
	if oky && okm {
		pi.year, _ = strconv.Atoi(string(y))
		pi.month, _ = strconv.Atoi(string(m))
		pi.expiryPresent = true
	}
	return pi, nil
}

// digitsOf returns the digits of a JSON string or number of digits, as a
// sub-slice of raw (no copy).
func digitsOf(raw json.RawMessage) ([]byte, bool) {
	b := bytes.TrimSpace(raw)
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	if len(b) == 0 {
		return nil, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return nil, false
		}
	}
	return b, true
}

// SecretKey turns the merchant's apiSecret into its AES key: the UTF-8 bytes
// of the secret, 16, 24 or 32 of them.
func SecretKey(apiSecret string) (*secret.Key, error) {
	k, err := secret.NewKey(secret.AES, []byte(apiSecret))
	if err != nil {
		return nil, errors.New("KeySecure apiSecret must be 16, 24 or 32 bytes")
	}
	return k, nil
}

// Secret is the merchant's apiSecret as an AES key: in software
// (*secret.Key, from SecretKey) or in a PKCS#11 token (hsm.Key with the
// KeySecureSecret purpose), where it never leaves the token.
type Secret interface {
	Algorithm() secret.Algorithm
	BlockSize() int
	EncryptBlock(dst, src []byte) error
	DecryptBlock(dst, src []byte) error
}

// EncryptECB is AES/ECB/PKCS5Padding then Base64, as the open API's code
// utilities do. ECB is the platform's choice, not ours; each PIN is a single
// block, so ECB's pattern leak does not apply.
func EncryptECB(key Secret, plain []byte) (string, error) {
	bs := key.BlockSize()
	padded := pkcs5Pad(plain, bs)
	defer secret.Zero(padded)
	out := make([]byte, len(padded))
	for i := 0; i < len(padded); i += bs {
		if err := key.EncryptBlock(out[i:i+bs], padded[i:i+bs]); err != nil {
			return "", err
		}
	}
	return base64.StdEncoding.EncodeToString(out), nil
}

// DecryptECB reverses EncryptECB. The result is the caller's to wipe.
func DecryptECB(key Secret, b64 string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("not Base64")
	}
	bs := key.BlockSize()
	if len(raw) == 0 || len(raw)%bs != 0 {
		return nil, errors.New("ciphertext is not whole blocks")
	}
	out := make([]byte, len(raw))
	for i := 0; i < len(raw); i += bs {
		if err := key.DecryptBlock(out[i:i+bs], raw[i:i+bs]); err != nil {
			secret.Zero(out)
			return nil, err
		}
	}
	n := int(out[len(out)-1])
	if n == 0 || n > bs || !bytes.Equal(out[len(out)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		secret.Zero(out)
		return nil, errors.New("bad padding")
	}
	return out[:len(out)-n], nil
}

func pkcs5Pad(plain []byte, bs int) []byte {
	n := bs - len(plain)%bs
	out := make([]byte, len(plain)+n)
	copy(out, plain)
	for i := len(plain); i < len(out); i++ {
		out[i] = byte(n)
	}
	return out
}
