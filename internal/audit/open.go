package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
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
	if t.attempts == nil {
		t.attempts, t.closed = map[string]Attempt{}, map[string]bool{}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		b := sc.Bytes()
		var l line
		if json.Unmarshal(b, &l) != nil || l.Log != "audit" || (l.MsgID == "" && !bytes.Contains(b, []byte(`"attempts":`))) {
			continue
		}
		switch l.Kind {
		case KindAttempt:
			var a Attempt
			if json.Unmarshal(b, &a) == nil {
				t.attempts[a.MsgID] = a
			}
		default: // a call record (older files have no "record" field)
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
	return sc.Err()
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
