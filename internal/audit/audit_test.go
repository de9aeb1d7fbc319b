package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
)

func TestFileAppendsOneJSONLinePerCall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	for round := 0; round < 2; round++ { // reopening appends, never truncates
		a, err := OpenFile(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if err := a.Write(Record{ChannelID: "1.1", MaskedPAN: "411111******1111", Outcome: "changed", Start: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		a.Close()
	}
	f, _ := os.Open(path)
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Outcome != "changed" {
			t.Fatalf("line %d: %v", n, err)
		}
	}
	if n != 6 {
		t.Fatalf("%d records, want 6", n)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("audit file mode %v", st.Mode().Perm())
	}
}

func TestStreamWritesOneLinePerCallWhateverTheLogLevel(t *testing.T) {
	var buf syncbuf.Buffer
	s := NewStream(&buf, nil)
	done := make(chan struct{})
	for i := 0; i < 50; i++ {
		go func() {
			_ = s.Write(Record{ChannelID: "1.1", Outcome: "ambiguous", Reason: "timeout", HostRef: "TRN1", End: "drain_deadline"})
			done <- struct{}{}
		}()
	}
	for i := 0; i < 50; i++ {
		<-done
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		var r struct {
			Log string `json:"log"`
			Record
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Log != "audit" || r.Reason != "timeout" || r.HostRef != "TRN1" || r.End != "drain_deadline" {
			t.Fatalf("line %q: %v", l, err)
		}
	}
}

// After logrotate moves the file away, Reopen sends new records to a new
// file of the same name; none is lost or split.
func TestReopenAfterRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	f, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Write(Record{ChannelID: "before"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(Record{ChannelID: "still-old"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(Record{ChannelID: "after"}); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), `"before"`) || !strings.Contains(string(old), `"still-old"`) || strings.Contains(string(old), `"after"`) ||
		!strings.Contains(string(cur), `"after"`) || strings.Count(string(cur), "\n") != 2 || !strings.HasPrefix(string(cur), `{"log":"audit","record":"reopen"`) {
		t.Fatalf("old file:\n%s\nnew file:\n%s", old, cur)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("new file mode %04o", st.Mode().Perm())
	}
}

// Retries are written as snake_case like every other field.
func TestRetriesAreSnakeCase(t *testing.T) {
	var b strings.Builder
	if err := NewStream(&b, nil).Write(Record{Retries: []flows.Retry{{Step: "card", Reason: "incomplete"}}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"retries":[{"step":"card","reason":"incomplete"}]`) {
		t.Fatalf("%s", b.String())
	}
}

// A trail pairs each attempt with the call record that names its msg_id
// (as its last request, or among its attempts), and finds the rest.
func TestTrailPairsAttemptsWithTheirCallRecords(t *testing.T) {
	var buf bytes.Buffer
	w := NewStream(&buf, nil)
	at := func(id string) Attempt {
		return Attempt{MsgID: id, Host: "cardhost", MaskedPAN: "411111******1111", Instance: "a", Time: time.Unix(1700000000, 0).UTC()}
	}
	for _, id := range []string{"m1", "m2", "m3", "m4"} {
		if err := w.WriteAttempt(at(id)); err != nil {
			t.Fatal(err)
		}
	}
	_ = w.Write(Record{MsgID: "m2", Attempts: []string{"m1", "m2"}, Outcome: "changed", End: "outcome"}) // a wrong PIN, then right
	_ = w.Write(Interrupted(at("m3"), "b"))
	_ = w.Write(Record{MsgID: "m9", Outcome: "changed", End: "outcome"}) // its attempt is in a rotated file
	_ = w.Write(Record{Outcome: "none", End: "hangup"})                  // nothing sent
	buf.WriteString("not json\n")
	var tr Trail
	if err := tr.Read(&buf); err != nil {
		t.Fatal(err)
	}
	tr.Done()
	if len(tr.Open) != 1 || tr.Open[0].MsgID != "m4" {
		t.Fatalf("open %+v", tr.Open)
	}
	if len(tr.Orphans) != 1 || tr.Orphans[0].MsgID != "m9" {
		t.Fatalf("orphans %+v", tr.Orphans)
	}
	if r := Interrupted(at("m3"), "b"); r.Outcome != "ambiguous" || r.End != "interrupted" || r.AttemptInstance != "a" || r.Instance != "b" {
		t.Fatalf("%+v", r)
	}
}

func TestOpenAttemptsReadsTheFileOnly(t *testing.T) {
	if a, err := OpenAttempts(filepath.Join(t.TempDir(), "none.jsonl")); err != nil || a != nil {
		t.Fatal(a, err)
	}
	if a, err := OpenAttempts("/dev/null"); err != nil || a != nil {
		t.Fatal(a, err)
	}
	p := filepath.Join(t.TempDir(), "audit.jsonl")
	f, err := OpenFile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.WriteAttempt(Attempt{MsgID: "x1", Host: "cardhost", Time: time.Now()})
	_ = f.Close()
	if a, err := OpenAttempts(p); err != nil || len(a) != 1 || a[0].MsgID != "x1" {
		t.Fatal(a, err)
	}
}

// syncCounter is a writer whose sync is slow and counted, so concurrent
// records must share syncs; it fails every write after failAfter syncs.
type syncCounter struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	syncs     int
	failAfter int
}

func (s *syncCounter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAfter > 0 && s.syncs >= s.failAfter {
		return 0, errors.New("disk full")
	}
	return s.buf.Write(p)
}

// batch is a stream's out: write, then sync.
func (s *syncCounter) batch(b []byte) error {
	if _, err := s.Write(b); err != nil {
		return err
	}
	return s.sync()
}

func (s *syncCounter) sync() error {
	time.Sleep(2 * time.Millisecond)
	s.mu.Lock()
	s.syncs++
	s.mu.Unlock()
	return nil
}

// Records that arrive during a sync share the next one (group commit): a
// burst of attempts is a few syncs, every line whole and every Write
// returning only after its own line was synced.
func TestConcurrentRecordsShareSyncs(t *testing.T) {
	w := &syncCounter{}
	s := newStream(w.batch, nil)
	const n = 400
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.WriteAttempt(Attempt{MsgID: fmt.Sprintf("m-%04d", i), Host: "card_host"}); err != nil {
				t.Error(err)
				return
			}
			// Returned: the line is in a batch that was synced.
			w.mu.Lock()
			in := strings.Contains(w.buf.String(), fmt.Sprintf(`"m-%04d"`, i))
			w.mu.Unlock()
			if !in {
				t.Errorf("record %d returned before it was written", i)
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
	for _, l := range lines {
		var a Attempt
		if err := json.Unmarshal([]byte(l), &a); err != nil || a.Kind != KindAttempt {
			t.Fatalf("line %q: %v", l, err)
		}
	}
	if w.syncs >= n/4 {
		t.Fatalf("%d syncs for %d concurrent records: they were not grouped", w.syncs, n)
	}
	t.Logf("%d records, %d syncs", n, w.syncs)
}

// A write that fails fails every record of its batch, and the stream goes
// on with the next batch.
func TestAFailedBatchFailsEachOfItsRecords(t *testing.T) {
	w := &syncCounter{failAfter: 1}
	s := newStream(w.batch, nil)
	if err := s.Write(Record{ChannelID: "1.1"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Write(Record{ChannelID: "1.2"}) != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 50 {
		t.Fatalf("%d of 50 writes to a full disk failed", failed.Load())
	}
}
