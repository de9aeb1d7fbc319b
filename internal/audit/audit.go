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
//
// Every record is chained to the one before it by an HMAC under the audit
// key (chain.go), serve writes its own start, stop and reopen records, a
// torn write is cut back before the next record, and Check verifies a set
// of files, plain or gzipped, naming what was removed, inserted, changed
// or moved (check.go).
package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"time"

	"github.com/ivr-pin/ivr-pin/flows"
	"golang.org/x/sys/unix"
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

// Event is a record of the line itself, not of a call: serve's start and
// stop, the file reopened after rotation or cut back after a torn write.
type Event struct {
	Kind     string    `json:"record"` // one of the Kind* below
	Time     time.Time `json:"time"`
	Instance string    `json:"instance,omitempty"`
	Version  string    `json:"version,omitempty"`
	// Lab is set on a start in lab mode (IVRPIN_LAB=true).
	Lab bool `json:"lab,omitempty"`
	// KeyKCVs are the check values of the keys the instance runs with
	// (never a key).
	KeyKCVs map[string]string `json:"key_kcvs,omitempty"`
	// CutBytes is, on a repair, how many bytes of a torn line were cut.
	CutBytes int64  `json:"cut_bytes,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// A key ceremony: the key's label, type and KCV, each custodian by
	// name with their component's KCV, who ran it and where.
	Label      string      `json:"label,omitempty"`
	Purpose    string      `json:"purpose,omitempty"` // zpk or keysecure
	KeyType    string      `json:"key_type,omitempty"`
	KCV        string      `json:"kcv,omitempty"`
	Custodians []Custodian `json:"custodians,omitempty"`
	Replaced   bool        `json:"replaced,omitempty"`
	Operator   string      `json:"operator,omitempty"` // user name and uid
	Host       string      `json:"host,omitempty"`
}

// Custodian is one key custodian of a ceremony: a name and the check
// value of their component (never the component).
type Custodian struct {
	Name string `json:"name"`
	KCV  string `json:"kcv"`
}

// The kinds of Event.
const (
	KindStart  = "start"
	KindStop   = "stop"
	KindReopen = "reopen"
	KindRepair = "repair"
	// KindCeremony is a key loaded into the token (`ivr-pin key import`):
	// a chain of its own, one record long, in the same file.
	KindCeremony = "ceremony"
)

// Writer takes call records and attempts.
type Writer interface {
	Write(r Record) error
	// WriteAttempt returns only once the attempt is as safe as the
	// writer can make it (a file: synced to disk).
	WriteAttempt(a Attempt) error
	// WriteEvent records the line's own start, stop and the like.
	WriteEvent(e Event) error
	Close() error
}

// Stream writes one JSON line per record to w (standard output by default).
// Lines are never split or interleaved, and a record is on disk (synced)
// before its Write returns. With a key, every line carries the chain's
// fields (chain.go).
//
// Records that arrive while a sync is under way are written and synced
// together by the next one (group commit): a burst of callers finishing at
// once costs a few syncs, not one per record each waiting for all before it.
// With one sync per record under one lock, 2,000 callers pressing their
// last key at once queued behind each other's fsync (the line's largest
// wait in `ivr-pin-lab load`'s mutex profile).
type Stream struct {
	mu sync.Mutex
	// out writes and syncs one batch of whole lines; a file cuts back
	// what a failed write left.
	out func([]byte) error

	flushed  *sync.Cond // signalled when a flush ends
	flushing bool       // a writer is writing and syncing a batch, outside mu
	next     *batch     // records waiting for the next flush

	// Touched by the flusher alone (one flush at a time).
	chain chain
	spare []byte // the last flushed batch's buffer, for reuse
}

// batch is the records one flush writes and syncs, and its outcome.
type batch struct {
	bodies [][]byte // each a record's JSON object
	done   bool
	err    error
}

// NewStream writes records to w, chained under key (nil: unchained).
func NewStream(w io.Writer, key MACKey) *Stream {
	s := newStream(func(b []byte) error { _, err := w.Write(b); return err }, key)
	s.chain.id = newChainID()
	return s
}

func newStream(out func([]byte) error, key MACKey) *Stream {
	s := &Stream{out: out, chain: chain{key: key}}
	s.flushed = sync.NewCond(&s.mu)
	return s
}

// OpenFile opens (or creates, mode 0600) the audit file for appending,
// chained under key (nil: unchained, a lab's). Each record is synced to
// disk before Write returns, so a record acknowledged is a record on disk.
//
// A torn last line (a write cut short by a full disk, then a crash) is
// cut back first and the cut recorded: a record is never glued onto half
// of another. The chain goes on from the file's last record, or from its
// newest rotated sibling's when the file is new.
func OpenFile(path string, key MACKey) (*File, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	a := &File{f: f, path: path, cutTo: -1}
	a.Stream = newStream(a.writeBatch, key)
	tail, cut, err := a.cutTorn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit file: %w", err)
	}
	if len(bytes.TrimSpace(tail)) == 0 {
		tail = siblingTail(path)
	}
	a.chain.resume(tail)
	if cut > 0 {
		if err := a.WriteEvent(Event{Kind: KindRepair, Time: time.Now().UTC(), CutBytes: cut,
			Reason: "the file ended in a torn line (a write cut short, then a stop): it was cut back to the last whole record"}); err != nil {
			f.Close()
			return nil, err
		}
	}
	return a, nil
}

// File is an append-only audit file.
type File struct {
	*Stream
	f    *os.File
	path string
	// cutTo is where a failed write whose cut failed too must be cut back
	// to before the next write (-1: nothing left to cut).
	cutTo int64
}

// cutTorn reads the file's tail and cuts a torn last line back to the
// last newline; it returns the tail (whole lines) and the bytes cut.
func (a *File) cutTorn() (tail []byte, cut int64, err error) {
	// Under the writers' lock: a ceremony may be appending its record.
	if err := unix.Flock(int(a.f.Fd()), unix.LOCK_EX); err == nil {
		defer unix.Flock(int(a.f.Fd()), unix.LOCK_UN)
	}
	st, err := a.f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := st.Size()
	if !st.Mode().IsRegular() {
		return nil, 0, nil
	}
	from := max(size-TailBytes, 0)
	tail = make([]byte, size-from)
	if _, err := a.f.ReadAt(tail, from); err != nil && err != io.EOF {
		return nil, 0, err
	}
	if n := len(tail); n > 0 && tail[n-1] != '\n' {
		keep := bytes.LastIndexByte(tail, '\n') + 1
		cut = int64(n - keep)
		if err := a.f.Truncate(from + int64(keep)); err != nil {
			return nil, 0, fmt.Errorf("cutting back a torn line: %w", err)
		}
		tail = tail[:keep]
	}
	return tail, cut, nil
}

// writeBatch writes and syncs whole lines (appendWhole), first cutting
// back what an earlier failed write left when its cut failed too.
func (a *File) writeBatch(b []byte) error {
	var err error
	a.cutTo, err = appendWhole(a.f, b, a.cutTo)
	return err
}

// appendWhole appends b to f and syncs it, under the advisory lock every
// writer of an audit file takes (serve's batches, a key ceremony's record).
// A write that fails is cut back at once to where the file ended, so the
// file never holds half a record before a whole one; when that cut fails
// too, the size to cut back to is returned for the next write to cut first
// (cutTo; -1 when there is nothing to cut).
func appendWhole(f *os.File, b []byte, cutTo int64) (int64, error) {
	fd := int(f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX); err == nil {
		defer unix.Flock(fd, unix.LOCK_UN)
	}
	if cutTo >= 0 {
		if err := f.Truncate(cutTo); err != nil {
			return cutTo, fmt.Errorf("audit file: a torn write could not be cut back: %w", err)
		}
	}
	st, err := f.Stat()
	if err != nil {
		return -1, fmt.Errorf("audit file: %w", err)
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if err != nil {
		if f.Truncate(st.Size()) != nil {
			return st.Size(), err
		}
		return -1, err
	}
	return -1, nil
}

// AppendEvent writes one record to the audit file at path as a chain of its
// own (a key ceremony, run beside a serve that holds the file's main chain),
// synced, under the same lock serve's writes take.
func AppendEvent(path string, key MACKey, e Event) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("audit file: %w", err)
	}
	defer f.Close()
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	c := chain{key: key, id: newChainID()}
	line, err := c.seal(nil, body)
	if err != nil {
		return err
	}
	_, err = appendWhole(f, line, -1)
	return err
}

// Reopen closes the file and opens its path again: after logrotate has
// moved it away (SIGHUP), new records go to a new file of the same name,
// the first of them a reopen record that carries the chain on. A record is
// never split between the two: Write and Reopen take the same lock. On
// failure the old file stays in use.
func (a *File) Reopen() error {
	f, err := os.OpenFile(a.path, os.O_APPEND|os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("audit file: %w", err)
	}
	a.mu.Lock()
	a.waitIdle()
	old := a.f
	a.f, a.cutTo = f, -1
	a.mu.Unlock()
	if err := old.Close(); err != nil {
		return err
	}
	return a.WriteEvent(Event{Kind: KindReopen, Time: time.Now().UTC()})
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

// WriteEvent implements Writer.
func (a *Stream) WriteEvent(e Event) error { return a.line(e) }

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
		a.next = &batch{}
	}
	mine := a.next
	mine.bodies = append(mine.bodies, body)
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

// flush seals, writes and syncs the waiting batch; called with mu held, it
// releases mu for the work so records go on joining the next batch. Lines
// are sealed here, in the order they are written: a batch that fails
// leaves the chain where the file is.
func (a *Stream) flush() {
	b := a.next
	a.next, a.flushing = nil, true
	a.mu.Unlock()
	buf, before := a.spare[:0], a.chain
	var err error
	for _, body := range b.bodies {
		if buf, err = a.chain.seal(buf, body); err != nil {
			break
		}
	}
	if err == nil {
		err = a.out(buf)
	}
	if err != nil {
		a.chain = before
	}
	if cap(buf) <= 1<<20 {
		a.spare = buf
	}
	a.mu.Lock()
	b.done, b.err, a.flushing = true, err, false
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
