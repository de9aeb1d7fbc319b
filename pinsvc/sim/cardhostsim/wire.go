package cardhostsim

import (
	"fmt"
	"strconv"
	"time"
)

// The host's side of seeds/ni-card-pin-change.txt, written from the seed
// independently of the client's types in package cardhost: were the two to
// share types or validation, a misreading in one would be mirrored in the
// other and no test could catch it.

type request struct {
	NISrvRequest struct {
		RequestCardPINChange *changeRequest `json:"request_card_pin_change"`
	} `json:"NISrvRequest"`
}

type changeRequest struct {
	Header header     `json:"header"`
	Body   changeBody `json:"body"`
}

type header struct {
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

type changeBody struct {
	CardNumber         string `json:"card_number"`
	CardSequenceNumber string `json:"card_sequence_number"`
	CardExpiryDate     string `json:"card_expiry_date"`
	EncryptedOldPIN    string `json:"encrypted_old_pin"`
	EncryptedNewPIN    string `json:"encrypted_new_pin"`
	EncryptionMethod   string `json:"encryption_method"`
	EncryptionKeyID    string `json:"encryption_key_id"`
	EncryptionKeyType  string `json:"encryption_key_type"`
}

type response struct {
	NISrvResponse struct {
		ResponseCardPINChange changeResponse `json:"response_card_pin_change"`
	} `json:"NISrvResponse"`
}

type changeResponse struct {
	Header           header           `json:"header"`
	ExceptionDetails exceptionDetails `json:"exception_details"`
}

// exceptionDetails as the seed's sample shows it. TransactionRefID is a
// string, or with Config.RefAsNumber a number: the seed gives no type.
type exceptionDetails struct {
	ApplicationName  string `json:"application_name"`
	DateTime         string `json:"date_time"`
	Status           string `json:"status"`
	ErrorCode        string `json:"error_code"`
	ErrorDescription string `json:"error_description"`
	TransactionRefID any    `json:"transaction_ref_id"`
}

const (
	wantMsgType          = "TRANSACTION"
	wantRequestFunction  = "REQ_CARD_PIN_CHANGE"
	responseFunction     = "REP_CARD_PIN_CHANGE"
	methodSymmetric      = "SYMMETRIC_ENC"
	methodAsymmetric     = "ASYNC_ENC"
	codeOK               = "000"
	statusSuccess        = "S"
	statusFailure        = "F"
	responseTimeLayout   = "2006-01-02T15:04:05.000-07:00"
	encryptedPINMax      = 20
	encryptedPINMaxAsync = 1024 // an RSA result cannot fit the seed's 20
)

// The seed's request tables: field, whether mandatory, maximum length.
type rule struct {
	name      string
	value     func(*changeRequest) string
	mandatory bool
	max       int
}

var rules = []rule{
	{"header.msg_id", func(r *changeRequest) string { return r.Header.MsgID }, true, 12},
	{"header.msg_type", func(r *changeRequest) string { return r.Header.MsgType }, true, 12},
	{"header.msg_function", func(r *changeRequest) string { return r.Header.MsgFunction }, true, 50},
	{"header.src_application", func(r *changeRequest) string { return r.Header.SrcApplication }, true, 10},
	{"header.target_application", func(r *changeRequest) string { return r.Header.TargetApplication }, true, 10},
	{"header.timestamp", func(r *changeRequest) string { return r.Header.Timestamp }, true, 30},
	{"header.tracking_id", func(r *changeRequest) string { return r.Header.TrackingID }, false, 15},
	{"header.bank_id", func(r *changeRequest) string { return r.Header.BankID }, true, 4},
	{"body.card_number", func(r *changeRequest) string { return r.Body.CardNumber }, true, 19},
	{"body.card_sequence_number", func(r *changeRequest) string { return r.Body.CardSequenceNumber }, false, 2},
	{"body.card_expiry_date", func(r *changeRequest) string { return r.Body.CardExpiryDate }, true, 4},
	{"body.encryption_method", func(r *changeRequest) string { return r.Body.EncryptionMethod }, true, 20},
	{"body.encryption_key_id", func(r *changeRequest) string { return r.Body.EncryptionKeyID }, false, 20},
	{"body.encryption_key_type", func(r *changeRequest) string { return r.Body.EncryptionKeyType }, false, 20},
}

// validate applies the seed's tables and fixed values; the error names the
// field (the host's error_description does the same).
func (r *changeRequest) validate(src, target string) error {
	for _, f := range rules {
		v := f.value(r)
		if f.mandatory && v == "" {
			return fmt.Errorf("%s missing", f.name)
		}
		if len(v) > f.max {
			return fmt.Errorf("%s longer than %d", f.name, f.max)
		}
	}
	if r.Header.InstanceID != nil && len(*r.Header.InstanceID) > 10 {
		return fmt.Errorf("header.instance_id longer than 10")
	}
	switch {
	case r.Header.MsgType != wantMsgType:
		return fmt.Errorf("header.msg_type must be %s", wantMsgType)
	case r.Header.MsgFunction != wantRequestFunction:
		return fmt.Errorf("header.msg_function must be %s", wantRequestFunction)
	case r.Header.SrcApplication != src:
		return fmt.Errorf("header.src_application must be %s", src)
	case r.Header.TargetApplication != target:
		return fmt.Errorf("header.target_application must be %s", target)
	case !timestampOK(r.Header.Timestamp):
		return fmt.Errorf("header.timestamp is neither ISO 8601 nor DD/MM/YYYY HH:MM:SS")
	case len(r.Body.CardNumber) < 16 || !allDigits(r.Body.CardNumber):
		return fmt.Errorf("body.card_number must be 16 to 19 digits")
	case len(r.Body.CardExpiryDate) != 4 || !allDigits(r.Body.CardExpiryDate):
		return fmt.Errorf("body.card_expiry_date must be YYMM")
	case r.Body.CardSequenceNumber != "" && (len(r.Body.CardSequenceNumber) != 2 || !allDigits(r.Body.CardSequenceNumber)):
		return fmt.Errorf("body.card_sequence_number must be two digits")
	}
	if mm, _ := strconv.Atoi(r.Body.CardExpiryDate[2:]); mm < 1 || mm > 12 {
		return fmt.Errorf("body.card_expiry_date month must be 01 to 12")
	}
	limit := encryptedPINMax
	switch r.Body.EncryptionMethod {
	case methodSymmetric:
	case methodAsymmetric:
		limit = encryptedPINMaxAsync
	default:
		return fmt.Errorf("body.encryption_method must be %s or %s", methodSymmetric, methodAsymmetric)
	}
	for name, v := range map[string]string{"body.encrypted_old_pin": r.Body.EncryptedOldPIN, "body.encrypted_new_pin": r.Body.EncryptedNewPIN} {
		if v == "" || len(v) > limit {
			return fmt.Errorf("%s missing or longer than %d", name, limit)
		}
	}
	return nil
}

// timestampOK accepts the samples' ISO 8601 with milliseconds and offset, and
// the text's DD/MM/YYYY HH:MM:SS.
func timestampOK(s string) bool {
	for _, layout := range []string{responseTimeLayout, time.RFC3339Nano, "02/01/2006 15:04:05"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
