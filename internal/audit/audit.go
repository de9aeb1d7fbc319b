// Package audit writes the line's audit trail, one JSON line per record: to
// an append-only file synced on every write, or to standard output. Either
// way records are written whatever the log level (they are not log lines:
// an operator who turns logging down to warn still keeps every record).
//
// Two kinds of record make a PIN change's trail. Before any request that can
// change a PIN is sent, an "attempt" record is written and synced (msg_id,
// masked PAN, caller, channel, host, instance, time): a change in flight
// when the process dies is on disk already. At the end of the call a "call"
// record names the same msg_id. An attempt left without its call record (a
// crash, a kill) is closed once, at the next start-up or by a surviving
// instance, by a call record of its own: outcome ambiguous, end interrupted.
// No record holds a PIN (no field could hold one); a PAN is only masked.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"time"

	"github.com/ivr-pin/ivr-pin/flows"
)

// Record is what one call came to. It holds no PIN and only a masked PAN.
type Record struct {
	// Kind is "call" (the writer sets it).
	Kind string `json:"record"`
	// Instance is the instance that wrote the record (IVRPIN_INSTANCE_ID).
	Instance string `json:"instance,omitempty"`
	// AttemptInstance, on an interrupted record, is the instance that
	// wrote the attempt it closes (and died before its call record).
	AttemptInstance string `json:"attempt_instance,omitempty"`
	ChannelID       string `json:"channel_id"`
	CallerID        string `json:"caller_id"`
	Transport       string `json:"transport,omitempty"` // inbound or outbound ARI
	Language        string `json:"language"`
	// LangFallback is a language asked for that the line does not have
	// (the call heard Language instead).
	LangFallback string `json:"lang_fallback,omitempty"`
	Path         string `json:"path"`
	MaskedPAN    string `json:"pan,omitempty"`
	Host         string `json:"host,omitempty"`
	MsgID        string `json:"msg_id,omitempty"`
	ResultCode   string `json:"result_code,omitempty"`
	HostRef      string `json:"host_ref,omitempty"` // the host's reference (NI transaction_ref_id)
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason,omitempty"` // why, in the host's words or ours (never a PIN; long digit runs masked)
	End          string `json:"end"`
	// AgentReason is why the call went to the agents (end "agent"):
	// caller_choice, or what it could not finish.
	AgentReason string `json:"agent_reason,omitempty"`
	// Attempts are the msg_ids of every request this call sent that could
	// change a PIN (MsgID is the last): each closes its attempt record.
	Attempts    []string      `json:"attempts,omitempty"`
	Retries     []flows.Retry `json:"retries,omitempty"`
	Transferred bool          `json:"transferred"`
	Returned    bool          `json:"returned"`
	Start       time.Time     `json:"start"`
	Duration    time.Duration `json:"duration_ns"`
}

// Attempt is written, and synced, before a request that can change a PIN is
// sent: the card host's change (MsgID is its msg_id) or KeySecure's set
// (MsgID is the line's own reference for it, and HostRef names the card).
type Attempt struct {
	Kind      string    `json:"record"` // "attempt" (the writer sets it)
	MsgID     string    `json:"msg_id"`
	Host      string    `json:"host"`
	HostRef   string    `json:"host_ref,omitempty"`
	MaskedPAN string    `json:"pan,omitempty"`
	CallerID  string    `json:"caller_id"`
	ChannelID string    `json:"channel_id"`
	Instance  string    `json:"instance"`
	Time      time.Time `json:"time"`
}

// The record kinds and the end that closes an attempt nobody finished.
const (
	KindCall       = "call"
	KindAttempt    = "attempt"
	EndInterrupted = "interrupted"
	OutcomeUnknown = "ambiguous"
	interruptedWhy = "the instance that sent it stopped before the answer was recorded: reconcile with the host by msg_id"
)

// Interrupted is the call record that closes an attempt left open, written
// by instance.
func Interrupted(a Attempt, instance string) Record {
	return Record{Kind: KindCall, Instance: instance, AttemptInstance: a.Instance, ChannelID: a.ChannelID, CallerID: a.CallerID,
		MaskedPAN: a.MaskedPAN, Host: a.Host, MsgID: a.MsgID, HostRef: a.HostRef, Outcome: OutcomeUnknown, End: EndInterrupted,
		Reason: interruptedWhy, Start: a.Time}
}

// Writer takes call records and attempts.
type Writer interface {
	Write(r Record) error
	// WriteAttempt returns only once the attempt is as safe as the
	// writer can make it (a file: synced to disk).
	WriteAttempt(a Attempt) error
	Close() error
}

// Stream writes one JSON line per record to w (standard output by default),
// each line in one write so concurrent calls never interleave.
type Stream struct {
	mu   sync.Mutex
	w    io.Writer
	sync func() error // nil: nothing to sync
}

// NewStream writes records to w.
func NewStream(w io.Writer) *Stream { return &Stream{w: w} }

// OpenFile opens (or creates, mode 0600) the audit file for appending; each
// record is synced to disk before Write returns, so a record acknowledged
// is a record on disk.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	return &File{Stream: Stream{w: f, sync: f.Sync}, f: f, path: path}, nil
}

// File is an append-only audit file.
type File struct {
	Stream
	f    *os.File
	path string
}

// Reopen closes the file and opens its path again: after logrotate has
// moved it away (SIGHUP), new records go to a new file of the same name.
// A record is never split between the two: Write and Reopen take the same
// lock. On failure the old file stays in use.
func (a *File) Reopen() error {
	f, err := os.OpenFile(a.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("audit file: %w", err)
	}
	a.mu.Lock()
	old := a.f
	a.f, a.w, a.sync = f, f, f.Sync
	a.mu.Unlock()
	return old.Close()
}

// Close implements Writer.
func (a *File) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}

// Write implements Writer.
func (a *Stream) Write(r Record) error {
	r.Kind = KindCall
	return a.line(r)
}

// WriteAttempt implements Writer.
func (a *Stream) WriteAttempt(at Attempt) error {
	at.Kind = KindAttempt
	return a.line(at)
}

// line writes one record as one JSON line, in one write, and syncs it.
func (a *Stream) line(v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// {"log":"audit", then the record's own fields: one object, one line.
	b := append([]byte(`{"log":"audit",`), body[1:]...)
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.w.Write(append(b, '\n')); err != nil {
		return err
	}
	if a.sync != nil {
		return a.sync()
	}
	return nil
}

// Close implements Writer; standard output is left open.
func (a *Stream) Close() error { return nil }
