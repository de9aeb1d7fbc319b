package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// Every record ends with three fields that make the trail tamper-evident:
//
//	..., "chain":"3f9a0c1d5e7b2a64", "seq":42, "mac":"<64 hex digits>"}
//
// chain names one unbroken sequence of records (chosen at its first record
// and carried on across restarts and rotations, read back from the file's
// tail), seq counts its records from 1, and mac is HMAC-SHA256, under the
// audit key, of the previous record's mac (raw bytes; none for seq 1)
// followed by every byte of this line up to the mac field. A record
// removed, inserted, changed or moved breaks the next mac or the seq; only
// the key's holder can write a record that fits. Without a key (a lab) the
// records say "chain":"unchained" and carry seq alone.
const (
	unchained = "unchained"
	macField  = `,"mac":"`
)

// MACKey chains the records: HMAC-SHA256 of its inputs joined, in
// software (SoftwareKey) or in a PKCS#11 token (hsm.Key, the audit
// purpose), where the key never leaves the token.
type MACKey interface {
	Sum(parts ...[]byte) ([]byte, error)
}

// SoftwareKey is an audit key held in memory (IVRPIN_AUDIT_KEY_FILE).
type SoftwareKey []byte

// Sum implements MACKey.
func (k SoftwareKey) Sum(parts ...[]byte) ([]byte, error) {
	m := hmac.New(sha256.New, k)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil), nil
}

// KeyOf is raw as a MACKey, or nil (unchained) when raw is empty: a nil
// slice must not become a key of no bytes.
func KeyOf(raw []byte) MACKey {
	if len(raw) == 0 {
		return nil
	}
	return SoftwareKey(raw)
}

// chain is the writer's end of the sequence.
type chain struct {
	key MACKey // nil: unchained
	id  string
	seq uint64
	mac []byte // the last record's; nil before the first
}

// newChainID names a chain: random, so two files never share one.
func newChainID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// seal appends body (one JSON object) to dst as an audit line with its
// chain fields and newline, and advances the chain; it fails only when a
// token key cannot sign (dst is then as it was).
func (c *chain) seal(dst, body []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, `{"log":"audit"`...)
	if inner := bytes.TrimSpace(body[1 : len(body)-1]); len(inner) > 0 {
		dst = append(append(dst, ','), inner...)
	}
	if c.key == nil {
		c.seq++
		dst = append(dst, `,"chain":"`+unchained+`","seq":`...)
		return append(strconv.AppendUint(dst, c.seq, 10), "}\n"...), nil
	}
	dst = append(dst, `,"chain":"`...)
	dst = append(dst, c.id...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, c.seq+1, 10)
	mac, err := c.key.Sum(c.mac, dst[start:])
	if err != nil {
		return dst[:start], fmt.Errorf("audit chain: %w", err)
	}
	c.seq, c.mac = c.seq+1, mac
	dst = append(dst, macField...)
	dst = hex.AppendEncode(dst, c.mac)
	return append(dst, "\"}\n"...), nil
}

// link is a record's chain fields, as read back.
type link struct {
	Kind  string `json:"record"`
	Chain string `json:"chain"`
	Seq   uint64 `json:"seq"`
	Mac   string `json:"mac"`
}

// splitMAC parses a line's chain fields and returns the bytes its mac
// covers; ok is false when the line has no mac at its end.
func splitMAC(line []byte) (l link, covered, mac []byte, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	if json.Unmarshal(line, &l) != nil {
		return link{}, nil, nil, false
	}
	i := bytes.LastIndex(line, []byte(macField))
	if i < 0 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return l, nil, nil, false
	}
	mac, err := hex.DecodeString(string(line[i+len(macField) : len(line)-2]))
	if err != nil || len(mac) != sha256.Size {
		return l, nil, nil, false
	}
	return l, line[:i], mac, true
}

// resume carries the chain on from the last record of a file's tail (the
// newest line with chain fields); a tail with none starts a new chain.
func (c *chain) resume(tail []byte) {
	c.id, c.seq, c.mac = newChainID(), 0, nil
	lines := bytes.Split(bytes.TrimRight(tail, "\n"), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		l, _, mac, ok := splitMAC(lines[i])
		if l.Chain == "" || l.Seq == 0 || l.Kind == KindCeremony {
			continue // before the chain, or a ceremony's chain of its own
		}
		c.seq = l.Seq
		if c.key != nil && l.Chain != unchained && ok {
			c.id, c.mac = l.Chain, mac
		}
		// Otherwise seq goes on and a new chain starts: a lab's
		// unchained records, or a key given now for the first time.
		return
	}
}
