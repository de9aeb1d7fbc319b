package cardhost

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// FieldError names a field that breaks the documented contract.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func required(field, v string, max int) error {
	if v == "" {
		return &FieldError{field, "missing"}
	}
	return maxLen(field, v, max)
}

func maxLen(field, v string, max int) error {
	if len(v) > max {
		return &FieldError{field, fmt.Sprintf("longer than %d", max)}
	}
	return nil
}

func digits(field, v string) error {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return &FieldError{field, "not digits"}
		}
	}
	return nil
}

// Validate checks every documented rule of the request tables: mandatory
// fields present, maximum lengths, the fixed values, card number 16 to 19
// digits, expiry YYMM, sequence number of two digits. The client runs it
// before sending and the simulator on receipt, so both hold the same rules.
func (r *PINChangeRequest) Validate() error {
	h, b := r.Header, r.Body
	checks := []error{
		required("header.msg_id", h.MsgID, MaxMsgID),
		required("header.msg_type", h.MsgType, MaxMsgType),
		required("header.msg_function", h.MsgFunction, MaxMsgFunction),
		required("header.src_application", h.SrcApplication, MaxApplication),
		required("header.target_application", h.TargetApplication, MaxApplication),
		required("header.timestamp", h.Timestamp, MaxTimestamp),
		maxLen("header.tracking_id", h.TrackingID, MaxTrackingID),
		required("header.bank_id", h.BankID, MaxBankID),
		required("body.card_expiry_date", b.CardExpiryDate, 4),
		required("body.encrypted_old_pin", b.EncryptedOldPIN, MaxEncPINFor(b.EncryptionMethod)),
		required("body.encrypted_new_pin", b.EncryptedNewPIN, MaxEncPINFor(b.EncryptionMethod)),
		required("body.encryption_method", b.EncryptionMethod, MaxMethod),
		maxLen("body.encryption_key_id", b.EncryptionKeyID, MaxKeyField),
		maxLen("body.encryption_key_type", b.EncryptionKeyType, MaxKeyField),
		maxLen("body.card_sequence_number", b.CardSequenceNumber, MaxSequenceNo),
	}
	if h.InstanceID != nil {
		checks = append(checks, maxLen("header.instance_id", *h.InstanceID, MaxInstanceID))
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	if h.MsgType != MsgTypeTransaction {
		return &FieldError{"header.msg_type", "must be " + MsgTypeTransaction}
	}
	if h.MsgFunction != FunctionRequest {
		return &FieldError{"header.msg_function", "must be " + FunctionRequest}
	}
	if _, err := ParseTimestamp(h.Timestamp); err != nil {
		return &FieldError{"header.timestamp", err.Error()}
	}
	if n := len(b.CardNumber); n < 16 || n > 19 {
		return &FieldError{"body.card_number", "must be 16 to 19 digits"}
	}
	if err := digits("body.card_number", b.CardNumber); err != nil {
		return err
	}
	if err := digits("body.card_expiry_date", b.CardExpiryDate); err != nil || len(b.CardExpiryDate) != 4 {
		return &FieldError{"body.card_expiry_date", "must be YYMM"}
	}
	if mm, _ := strconv.Atoi(b.CardExpiryDate[2:]); mm < 1 || mm > 12 {
		return &FieldError{"body.card_expiry_date", "month must be 01 to 12"}
	}
	if b.CardSequenceNumber != "" {
		if err := digits("body.card_sequence_number", b.CardSequenceNumber); err != nil || len(b.CardSequenceNumber) != 2 {
			return &FieldError{"body.card_sequence_number", "must be two digits"}
		}
	}
	if b.EncryptionMethod != MethodSymmetric && b.EncryptionMethod != MethodAsymmetric {
		return &FieldError{"body.encryption_method", "must be SYMMETRIC_ENC or ASYNC_ENC"}
	}
	return nil
}

// MaxEncPINFor is the longest encrypted PIN block accepted for a method. The
// seed documents 20 characters, which fits a hex TDES block (16). An RSA
// result cannot fit 20 characters under any encoding, so for ASYNC_ENC the
// limit is the one an RSA-4096 result in hex needs; API-NOTES.md records
// this as an open point with the bank.
func MaxEncPINFor(method string) int {
	if method == MethodAsymmetric {
		return 1024
	}
	return MaxEncPIN
}

// IDGenerator makes msg_id values: 12 characters, base 36, the first eight
// from the time in units of 10 ms (ordered, readable in logs) and the last
// four from a per-process counter started at a random value, so two
// instances started together still do not collide in practice.
type IDGenerator struct {
	counter atomic.Uint64
	now     func() time.Time
}

// NewIDGenerator starts the counter at a random value.
func NewIDGenerator() *IDGenerator {
	var b [8]byte
	_, _ = rand.Read(b[:])
	g := &IDGenerator{now: time.Now}
	var seed uint64
	for _, x := range b {
		seed = seed<<8 | uint64(x)
	}
	g.counter.Store(seed)
	return g
}

const base36Four = 36 * 36 * 36 * 36

// Next returns a fresh msg_id.
func (g *IDGenerator) Next() string {
	t := uint64(g.now().UnixMilli() / 10)
	n := g.counter.Add(1) % base36Four
	return pad36(t, 8) + pad36(n, 4)
}

func pad36(v uint64, width int) string {
	s := strconv.FormatUint(v, 36)
	if len(s) > width {
		s = s[len(s)-width:]
	}
	for len(s) < width {
		s = "0" + s
	}
	return s
}
