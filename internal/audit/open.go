package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// TailBytes bounds what start-up reads of the audit file to find attempts
// left open: the last 16 MiB, days of records at a busy line's rate (a
// rotated file is closed by `ivr-pin audit check` and the operator).
const TailBytes = 16 << 20

// line is any record, as read back.
type line struct {
	Log      string `json:"log"`
	Kind     string `json:"record"`
	MsgID    string `json:"msg_id"`
	Host     string `json:"host"`
	End      string `json:"end"`
	Outcome  string `json:"outcome"`
	Instance string `json:"instance"`
}

// Trail is what a set of audit records says of attempts: those with their
// call record, those without (open), and call records naming a msg_id with
// no attempt before them.
type Trail struct {
	Open     []Attempt
	Orphans  []Record // call records whose msg_id has no attempt
	attempts map[string]Attempt
	closed   map[string]bool
	finals   []Record
}

// Read adds the records of r (JSON lines; others are skipped).
func (t *Trail) Read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		t.add(sc.Bytes())
	}
	return sc.Err()
}

// add takes one line: an attempt, a call record, or anything else
// (skipped).
func (t *Trail) add(b []byte) {
	if t.attempts == nil {
		t.attempts, t.closed = map[string]Attempt{}, map[string]bool{}
	}
	var l line
	if json.Unmarshal(b, &l) != nil || l.Log != "audit" || (l.MsgID == "" && !bytes.Contains(b, []byte(`"attempts":`))) {
		return
	}
	switch l.Kind {
	case KindAttempt:
		var a Attempt
		if json.Unmarshal(b, &a) == nil {
			t.attempts[a.MsgID] = a
		}
	case KindCall, "": // older files have no "record" field
		var rec Record
		if json.Unmarshal(b, &rec) == nil {
			t.closed[rec.MsgID] = true
			for _, id := range rec.Attempts {
				t.closed[id] = true
			}
			t.finals = append(t.finals, rec)
		}
	}
}

// Interrupted are the call records that closed an attempt nobody finished:
// changes to reconcile with the host by msg_id.
func (t *Trail) Interrupted() []Record {
	var out []Record
	for _, r := range t.finals {
		if r.End == EndInterrupted {
			out = append(out, r)
		}
	}
	return out
}

// Done computes Open and Orphans from everything read.
func (t *Trail) Done() {
	t.Open, t.Orphans = nil, nil
	for id, a := range t.attempts {
		if !t.closed[id] {
			t.Open = append(t.Open, a)
		}
	}
	sort.Slice(t.Open, func(i, j int) bool { return t.Open[i].Time.Before(t.Open[j].Time) })
	for _, r := range t.finals {
		if _, ok := t.attempts[r.MsgID]; !ok {
			t.Orphans = append(t.Orphans, r)
		}
	}
}

// OpenAttempts reads the last TailBytes of the audit file at path and
// returns the attempts in it that have no call record. A missing file has
// none.
func OpenAttempts(path string) ([]Attempt, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil // a device or a pipe: nothing to read back
	}
	var r io.Reader = io.LimitReader(f, st.Size())
	if st.Size() > TailBytes {
		buf := make([]byte, TailBytes)
		if _, err := f.ReadAt(buf, st.Size()-TailBytes); err != nil && err != io.EOF {
			return nil, err
		}
		// Start at a whole line.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
		r = bytes.NewReader(buf)
	}
	var t Trail
	if err := t.Read(r); err != nil {
		return nil, err
	}
	t.Done()
	return t.Open, nil
}

// siblingTail is the tail of the newest file rotated from path (logrotate's
// path-DATE or path.N, compressed or not), from which a new file carries
// the chain on: serve stopped after logrotate moved the file and before
// it reopened it. Nothing found: nil (a new chain).
func siblingTail(path string) []byte {
	dated, _ := filepath.Glob(path + "-*")
	numbered, _ := filepath.Glob(path + ".*")
	matches := append(dated, numbered...)
	var newest string
	var at time.Time
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil || !st.Mode().IsRegular() || st.ModTime().Before(at) {
			continue
		}
		newest, at = m, st.ModTime()
	}
	if newest == "" {
		return nil
	}
	f, err := os.Open(newest)
	if err != nil {
		return nil
	}
	defer f.Close()
	r, err := maybeGzip(f)
	if err != nil {
		return nil
	}
	// Keep the last TailBytes of what it holds, reading it through once.
	var tail []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		tail = append(tail, buf[:n]...)
		if len(tail) > 2*TailBytes {
			tail = append(tail[:0], tail[len(tail)-TailBytes:]...)
		}
		if err != nil {
			break
		}
	}
	if i := bytes.LastIndexByte(tail, '\n'); i >= 0 {
		return tail[:i+1]
	}
	return nil
}

// maybeGzip reads r as it is, or through gzip when it starts with gzip's
// magic bytes: a rotated audit file is compressed.
func maybeGzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return br, nil
}
