// Package audit writes one record per call: to an append-only file synced
// on every write, or to the log tagged log=audit. A record holds a masked PAN
// and never a PIN (ivr.CallRecord has no field that could hold one).
package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/ivr"
)

// Writer takes call records.
type Writer interface {
	Write(r ivr.CallRecord) error
	Close() error
}

// File appends JSON lines to a file opened O_APPEND and syncs each one, so a
// record acknowledged is a record on disk.
type File struct {
	mu sync.Mutex
	f  *os.File
}

// OpenFile opens (or creates, mode 0600) the audit file for appending.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	return &File{f: f}, nil
}

// Write implements Writer.
func (a *File) Write(r ivr.CallRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.f.Write(append(b, '\n')); err != nil {
		return err
	}
	return a.f.Sync()
}

// Close implements Writer.
func (a *File) Close() error { return a.f.Close() }

// Log writes records through logrus, tagged log=audit.
type Log struct{ Entry *logrus.Entry }

// Write implements Writer.
func (a Log) Write(r ivr.CallRecord) error {
	a.Entry.WithField("log", "audit").WithField("record", r).Info("call")
	return nil
}

// Close implements Writer.
func (Log) Close() error { return nil }
