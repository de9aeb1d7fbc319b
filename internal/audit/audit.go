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

// Stream writes one JSON line per record to w (standard output by default).
// Lines are never split or interleaved, and a record is on disk (synced)
// before its Write returns.
//
// Records that arrive while a sync is under way are written and synced
// together by the next one (group commit): a burst of callers finishing at
// once costs a few syncs, not one per record each waiting for all before it.
// With one sync per record under one lock, 2,000 callers pressing their
// last key at once queued behind each other's fsync (the line's largest
// wait in `ivr-pin-lab load`'s mutex profile).
type Stream struct {
	mu   sync.Mutex
	w    io.Writer
	sync func() error // nil: nothing to sync

	flushed  *sync.Cond // signalled when a flush ends
	flushing bool       // a writer is writing and syncing a batch, outside mu
	next     *batch     // records waiting for the next flush
	spare    []byte     // the last flushed batch's buffer, for reuse
}

// batch is the records one flush writes and syncs, and its outcome.
type batch struct {
	buf  []byte
	done bool
	err  error
}

// NewStream writes records to w.
func NewStream(w io.Writer) *Stream { return newStream(w, nil) }

func newStream(w io.Writer, syncFn func() error) *Stream {
	s := &Stream{w: w, sync: syncFn}
	s.flushed = sync.NewCond(&s.mu)
	return s
}

// OpenFile opens (or creates, mode 0600) the audit file for appending; each
// record is synced to disk before Write returns, so a record acknowledged
// is a record on disk.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	return &File{Stream: newStream(f, f.Sync), f: f, path: path}, nil
}

// File is an append-only audit file.
type File struct {
	*Stream
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
	a.waitIdle()
	old := a.f
	a.f, a.w, a.sync = f, f, f.Sync
	a.mu.Unlock()
	return old.Close()
}

// Close implements Writer.
func (a *File) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.waitIdle()
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

// line writes one record as one JSON line and returns once the batch it
// joined is written and synced: the first writer to find no flush under
// way writes every record waiting, in one write, then syncs once.
func (a *Stream) line(v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == nil {
		a.next = &batch{buf: a.spare[:0]}
		a.spare = nil
	}
	mine := a.next
	// {"log":"audit", then the record's own fields: one object, one line.
	mine.buf = append(append(append(mine.buf, `{"log":"audit",`...), body[1:]...), '\n')
	for !mine.done {
		if a.flushing {
			a.flushed.Wait()
			continue
		}
		// Not done and nothing flushing: mine is the batch waiting.
		a.flush()
	}
	return mine.err
}

// flush writes and syncs the waiting batch; called with mu held, it
// releases mu for the I/O so records go on joining the next batch.
func (a *Stream) flush() {
	b, w, syncFn := a.next, a.w, a.sync
	a.next, a.flushing = nil, true
	a.mu.Unlock()
	_, err := w.Write(b.buf)
	if err == nil && syncFn != nil {
		err = syncFn()
	}
	a.mu.Lock()
	b.done, b.err, a.flushing = true, err, false
	if cap(b.buf) <= 1<<20 {
		a.spare = b.buf // done: nobody reads b.buf again
	}
	a.flushed.Broadcast()
}

// waitIdle waits (mu held) until no flush is under way, so the file may
// be swapped or closed.
func (a *Stream) waitIdle() {
	for a.flushing {
		a.flushed.Wait()
	}
}

// Close implements Writer; standard output is left open.
func (a *Stream) Close() error { return nil }
