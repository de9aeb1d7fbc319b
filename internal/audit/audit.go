// Package audit writes one record per call, as one JSON line: to an
// append-only file synced on every write, or to standard output. Either way
// the record is written whatever the log level (it is not a log line: an
// operator who turns logging down to warn still keeps every record). A
// record holds a masked PAN and never a PIN (Record has no field that could
// hold one).
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
	ChannelID string `json:"channel_id"`
	CallerID  string `json:"caller_id"`
	Transport string `json:"transport,omitempty"` // inbound or outbound ARI
	Language  string `json:"language"`
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
	AgentReason string        `json:"agent_reason,omitempty"`
	Retries     []flows.Retry `json:"retries,omitempty"`
	Transferred bool          `json:"transferred"`
	Returned    bool          `json:"returned"`
	Start       time.Time     `json:"start"`
	Duration    time.Duration `json:"duration_ns"`
}

// Writer takes call records.
type Writer interface {
	Write(r Record) error
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
	b, err := json.Marshal(struct {
		Log string `json:"log"`
		Record
	}{"audit", r})
	if err != nil {
		return err
	}
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
