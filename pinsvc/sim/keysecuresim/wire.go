package keysecuresim

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
)

// The platform's side of the wire, written from the seed and the public
// docs, independent of the client's types in package keysecure: were the
// two to share types, a misreading in one would be mirrored in the other and
// no test could catch it.

// Routes.
const (
	routeToken       = "/open-api/v1/merchant/token"
	routeSetPIN      = "/open-api/v1/card/pin/set"
	routeCardList    = "/open-api/v1/card/list"
	routeCardDetail  = "/open-api/v1/card/{card_no}/detail"
	routePrivateInfo = "/open-api/v1/card/{card_no}/private/info"
)

// Documented codes.
const (
	codeOK             = 0
	codeSystem         = 1001
	codeAPIKeyMissing  = 1002
	codeIPNotAllowed   = 1003
	codeInvalidParam   = 1004
	codeTimestamp      = 1005
	codeTokenMissing   = 1006
	codeTokenInvalid   = 1007
	codeAPIKeyUnknown  = 1008
	codeTooFrequent    = 1009
	codePCINotEnabled  = 1013
	codeNoCardholder   = 2001
	codeNotActivated   = 4005
	codeWeakPIN        = 4016
	codeNotPhysical    = 4017
	listDateLayout     = "2006-01-02"
	createdTimeLayout  = "2006-01-02 15:04:05"
	maxListWindowDays  = 90
	maxListPageSize    = 100
	typePhysical       = "Physical"
	statusActivated    = "Activated"
	headerAPIKey       = "Api-Key"
	headerTimestamp    = "Timestamp"
	headerAccessToken  = "Access-Token"
	contentTypeJSONPfx = "application/json"
)

type envelope struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
	Data any    `json:"data"`
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiredTime int64  `json:"expired_time"`
}

type setPINRequest struct {
	CardNo       string `json:"card_no"`
	CardholderNo string `json:"cardholder_no"`
	PIN          string `json:"pin"`
}

type setPINAnswer struct {
	Result bool `json:"result"`
}

type listRequest struct {
	StartTime    string `json:"start_time"`
	EndTime      string `json:"end_time"`
	Page         *int   `json:"page"`
	Size         *int   `json:"size"`
	CardNo       string `json:"card_no"`
	CardholderNo string `json:"cardholder_no"`
	CardUniqueNo string `json:"card_unique_no"`
}

// cardAnswer is one card as the platform shows it. Time is a string
// ("yyyy-MM-dd HH:mm:ss") or, with Config.TimeAsNumber, Unix milliseconds:
// its type is not documented, so a client must not depend on it.
type cardAnswer struct {
	CardNo       string `json:"card_no"`
	CardholderNo string `json:"cardholder_no"`
	CardUniqueNo string `json:"card_unique_no"`
	CardType     string `json:"card_type"`
	CardLastNo   string `json:"card_last_no"`
	Status       string `json:"status"`
	Time         any    `json:"time"`
}

type listAnswer struct {
	List  []cardAnswer `json:"list"`
	Total int          `json:"total"`
	Page  int          `json:"page"`
	Size  int          `json:"size"`
}

// privateInfoPlain is what private info encrypts.
type privateInfoPlain struct {
	PAN      string `json:"pan"`
	ExpYear  string `json:"exp_year"`
	ExpMonth string `json:"exp_month"`
	CVV      string `json:"cvv"`
}

// The platform's "Code Utilities": AES/ECB/PKCS5Padding under the UTF-8
// bytes of the apiSecret, then Base64.

func aesKey(apiSecret string) (cipher.Block, error) {
	switch len(apiSecret) {
	case 16, 24, 32:
		return aes.NewCipher([]byte(apiSecret))
	}
	return nil, errors.New("apiSecret must be 16, 24 or 32 bytes")
}

func encryptECB(b cipher.Block, plain []byte) string {
	n := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append(append([]byte(nil), plain...), bytes.Repeat([]byte{byte(n)}, n)...)
	for i := 0; i < len(buf); i += aes.BlockSize {
		b.Encrypt(buf[i:i+aes.BlockSize], buf[i:i+aes.BlockSize])
	}
	return base64.StdEncoding.EncodeToString(buf)
}

func decryptECB(b cipher.Block, enc string) ([]byte, error) {
	buf, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(buf) == 0 || len(buf)%aes.BlockSize != 0 {
		return nil, errors.New("not AES-ECB ciphertext")
	}
	for i := 0; i < len(buf); i += aes.BlockSize {
		b.Decrypt(buf[i:i+aes.BlockSize], buf[i:i+aes.BlockSize])
	}
	n := int(buf[len(buf)-1])
	if n < 1 || n > aes.BlockSize || !bytes.Equal(buf[len(buf)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		return nil, errors.New("bad padding")
	}
	return buf[:len(buf)-n], nil
}
