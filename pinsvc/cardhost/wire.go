package cardhost

import (
	"errors"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/internal/hostcall"
)

// The envelope of seeds/ni-card-pin-change.txt as the client writes and
// reads it. The request is field for field; the response types are lenient
// where the client does not act (any JSON type for informational fields) and
// strict where it does (msg_id, msg_function, status, error_code). The
// simulator has wire types of its own, so a misreading here is caught by the
// tests rather than mirrored.

// Request is the top-level request document.
type Request struct {
	NISrvRequest RequestEnvelope `json:"NISrvRequest"`
}

// RequestEnvelope holds the single operation.
type RequestEnvelope struct {
	RequestCardPINChange *PINChangeRequest `json:"request_card_pin_change"`
}

// PINChangeRequest is the operation.
type PINChangeRequest struct {
	Header Header        `json:"header"`
	Body   PINChangeBody `json:"body"`
}

// Header is common to requests and responses.
type Header struct {
	MsgID             string  `json:"msg_id"`
	MsgType           string  `json:"msg_type"`
	MsgFunction       string  `json:"msg_function"`
	SrcApplication    string  `json:"src_application"`
	TargetApplication string  `json:"target_application"`
	Timestamp         string  `json:"timestamp"`
	TrackingID        string  `json:"tracking_id,omitempty"`
	BankID            string  `json:"bank_id"`
	InstanceID        *string `json:"instance_id"`
}

// PINChangeBody carries the card and the two encrypted PIN blocks. The
// seed's descriptions of the two PIN fields are swapped; the names rule:
// the current PIN goes in EncryptedOldPIN.
type PINChangeBody struct {
	CardNumber         string `json:"card_number"`
	CardSequenceNumber string `json:"card_sequence_number,omitempty"`
	CardExpiryDate     string `json:"card_expiry_date"`
	EncryptedOldPIN    string `json:"encrypted_old_pin"`
	EncryptedNewPIN    string `json:"encrypted_new_pin"`
	EncryptionMethod   string `json:"encryption_method"`
	EncryptionKeyID    string `json:"encryption_key_id,omitempty"`
	EncryptionKeyType  string `json:"encryption_key_type,omitempty"`
}

// Response is the top-level response document.
type Response struct {
	NISrvResponse ResponseEnvelope `json:"NISrvResponse"`
}

// ResponseEnvelope holds the single operation's answer.
type ResponseEnvelope struct {
	ResponseCardPINChange *PINChangeResponse `json:"response_card_pin_change"`
}

// PINChangeResponse is the answer.
type PINChangeResponse struct {
	Header           ResponseHeader   `json:"header"`
	ExceptionDetails ExceptionDetails `json:"exception_details"`
}

// ResponseHeader is what the client reads of the answer's header.
type ResponseHeader struct {
	MsgID       string `json:"msg_id"`
	MsgFunction string `json:"msg_function"`
}

// ExceptionDetails carries the status. The seed's table capitalises it
// "Exception_details" while its sample uses "exception_details"; Go's JSON
// decoder matches either.
type ExceptionDetails struct {
	Status           string        `json:"status"`
	ErrorCode        hostcall.Text `json:"error_code"`
	ErrorDescription hostcall.Text `json:"error_description"`
	TransactionRefID hostcall.Text `json:"transaction_ref_id"`
}

// Documented constants.
const (
	MsgTypeTransaction   = "TRANSACTION"
	FunctionRequest      = "REQ_CARD_PIN_CHANGE"
	FunctionResponse     = "REP_CARD_PIN_CHANGE"
	SrcApplicationIVR    = "IVR"
	TargetApplicationPCM = "PCMS"
	MethodSymmetric      = "SYMMETRIC_ENC"
	MethodAsymmetric     = "ASYNC_ENC"
	StatusSuccess        = "S"
	StatusFailure        = "F" // its error_code says why (000 with S)
)

// Field limits from the seed's tables.
const (
	MaxMsgID       = 12
	MaxMsgType     = 12
	MaxMsgFunction = 50
	MaxApplication = 10
	MaxTimestamp   = 30
	MaxTrackingID  = 15
	MaxBankID      = 4
	MaxInstanceID  = 10
	MaxSequenceNo  = 2
	MaxEncPIN      = 20
	MaxMethod      = 20
	MaxKeyField    = 20
)

// TimestampLayout is the form every sample sends: ISO 8601 with milliseconds
// and an offset (2020-05-21T15:13:18.853+04:00).
const TimestampLayout = "2006-01-02T15:04:05.000-07:00"

// LegacyTimestampLayout is the form the seed's text describes.
const LegacyTimestampLayout = "02/01/2006 15:04:05"

// ParseTimestamp accepts both documented forms.
func ParseTimestamp(s string) (time.Time, error) {
	if t, err := time.Parse(TimestampLayout, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(LegacyTimestampLayout, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("timestamp is neither ISO 8601 nor DD/MM/YYYY HH:MM:SS")
}
