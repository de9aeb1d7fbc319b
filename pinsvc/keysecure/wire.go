package keysecure

import (
	"bytes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// The KeySecure open API's routes, headers and shapes, shared by the client
// and the simulator.
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

// Documented codes.
const (
	CodeOK              = 0
	CodeSystem          = 1001
	CodeAPIKeyMissing   = 1002
	CodeIPNotAllowed    = 1003
	CodeInvalidParam    = 1004
	CodeTimestamp       = 1005
	CodeTokenMissing    = 1006
	CodeTokenInvalid    = 1007
	CodeAPIKeyUnknown   = 1008
	CodeTooFrequent     = 1009
	CodeAPIKeyDisabled  = 1010
	CodeAPIKeyExpired   = 1011
	CodePCINotEnabled   = 1013
	CodeMerchantUnknown = 1021
	CodeMerchantStatus  = 1022
	CodeCardholder      = 2001 // 2001-2007: cardholder errors
	CodeNotActivated    = 4005
	CodeWeakPIN         = 4016
	CodeNotPhysical     = 4017
)

// Card types and statuses.
const (
	TypePhysical     = "Physical"
	TypeVirtual      = "Virtual"
	StatusActivated  = "Activated"
	StatusToActivate = "ToActivate"
	StatusFrozen     = "Frozen"
	StatusDelete     = "Delete"
)

// Envelope is every answer: code 0 on success, msg says why otherwise.
type Envelope struct {
	Code int             `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// TokenData is the token call's data.
type TokenData struct {
	AccessToken string `json:"access_token"`
	ExpiredTime int64  `json:"expired_time"` // Unix milliseconds
}

// SetPINBody is the set-PIN request body.
type SetPINBody struct {
	CardNo       string `json:"card_no"`
	CardholderNo string `json:"cardholder_no"`
	PIN          string `json:"pin"`
}

// SetPINData is the set-PIN answer's data.
type SetPINData struct {
	Result bool `json:"result"`
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

// Card is one card of a list or a detail answer.
type Card struct {
	CardNo       string `json:"card_no"`
	CardholderNo string `json:"cardholder_no"`
	CardType     string `json:"card_type"`
	CardLastNo   string `json:"card_last_no"`
	Status       string `json:"status"`
	Time         string `json:"time"`
}

// CardListData is the card list answer's data.
type CardListData struct {
	List  []Card `json:"list"`
	Total int    `json:"total"`
}

// PrivateInfo is the decrypted private info of a card.
type PrivateInfo struct {
	PAN      string `json:"pan"`
	ExpYear  string `json:"exp_year"`
	ExpMonth string `json:"exp_month"`
	CVV      string `json:"cvv"`
}

// Wipe clears what can be cleared of private info held as strings: the
// references, so the values become garbage as soon as possible.
func (p *PrivateInfo) Wipe() { *p = PrivateInfo{} }

// SecretKey turns the merchant's apiSecret into its AES key: the UTF-8 bytes
// of the secret, 16, 24 or 32 of them.
func SecretKey(apiSecret string) (*secret.Key, error) {
	k, err := secret.NewKey(secret.AES, []byte(apiSecret))
	if err != nil {
		return nil, errors.New("KeySecure apiSecret must be 16, 24 or 32 bytes")
	}
	return k, nil
}

// EncryptECB is AES/ECB/PKCS5Padding then Base64, as the open API's code
// utilities do. ECB is the platform's choice, not ours; each PIN is a single
// block, so ECB's pattern leak does not apply.
func EncryptECB(key *secret.Key, plain []byte) (string, error) {
	blk, err := key.Block()
	if err != nil {
		return "", err
	}
	padded := pkcs5Pad(plain, blk)
	defer secret.Zero(padded)
	out := make([]byte, len(padded))
	ecb(blk, out, padded, true)
	return base64.StdEncoding.EncodeToString(out), nil
}

// DecryptECB reverses EncryptECB. The result is the caller's to wipe.
func DecryptECB(key *secret.Key, b64 string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("not Base64")
	}
	blk, err := key.Block()
	if err != nil {
		return nil, err
	}
	bs := blk.BlockSize()
	if len(raw) == 0 || len(raw)%bs != 0 {
		return nil, errors.New("ciphertext is not whole blocks")
	}
	out := make([]byte, len(raw))
	ecb(blk, out, raw, false)
	n := int(out[len(out)-1])
	if n == 0 || n > bs || !bytes.Equal(out[len(out)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		secret.Zero(out)
		return nil, errors.New("bad padding")
	}
	return out[:len(out)-n], nil
}

func pkcs5Pad(plain []byte, blk cipher.Block) []byte {
	bs := blk.BlockSize()
	n := bs - len(plain)%bs
	out := make([]byte, len(plain)+n)
	copy(out, plain)
	for i := len(plain); i < len(out); i++ {
		out[i] = byte(n)
	}
	return out
}

func ecb(blk cipher.Block, dst, src []byte, encrypt bool) {
	bs := blk.BlockSize()
	for i := 0; i < len(src); i += bs {
		if encrypt {
			blk.Encrypt(dst[i:i+bs], src[i:i+bs])
		} else {
			blk.Decrypt(dst[i:i+bs], src[i:i+bs])
		}
	}
}
