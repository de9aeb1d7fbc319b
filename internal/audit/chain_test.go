package audit

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var testAuditKey = SoftwareKey("audit-chain-test-key-0123456789ab")

// writeTrail writes a trail as serve does across one rotation: a start,
// three changes (an attempt and its call record each), logrotate's move
// and compression of the first file, a reopen, two more changes and a
// stop. It returns the files in rotation order.
func writeTrail(t *testing.T) (rotated, current string) {
	t.Helper()
	dir := t.TempDir()
	current = filepath.Join(dir, "audit.jsonl")
	f, err := OpenFile(current, testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	change := func(id string) {
		if err := f.WriteAttempt(Attempt{MsgID: id, Host: "card_host", MaskedPAN: "400000******0018", Instance: "a", Time: now}); err != nil {
			t.Fatal(err)
		}
		if err := f.Write(Record{Instance: "a", MsgID: id, Attempts: []string{id}, MaskedPAN: "400000******0018", Outcome: "changed", End: "completed", Start: now}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
	}
	if err := f.WriteEvent(Event{Kind: KindStart, Instance: "a", Time: now, Version: "test"}); err != nil {
		t.Fatal(err)
	}
	change("m1")
	change("m2")
	change("m3")
	rotated = current + "-20261207.gz"
	plain, err := os.ReadFile(current)
	if err != nil {
		t.Fatal(err)
	}
	writeGzip(t, rotated, plain)
	if err := os.Remove(current); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	change("m4")
	change("m5")
	if err := f.WriteEvent(Event{Kind: KindStop, Instance: "a", Time: now}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return rotated, current
}

func writeGzip(t *testing.T, path string, b []byte) {
	t.Helper()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	_, _ = w.Write(b)
	_ = w.Close()
	if err := os.WriteFile(path, z.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readGzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(r)
	return b.Bytes()
}

// editLines rewrites a file's lines (through gzip for a .gz).
func editLines(t *testing.T, path string, edit func([]string) []string) {
	t.Helper()
	var b []byte
	if strings.HasSuffix(path, ".gz") {
		b = readGzip(t, path)
	} else {
		b, _ = os.ReadFile(path)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	out := []byte(strings.Join(edit(lines), ""))
	if strings.HasSuffix(path, ".gz") {
		writeGzip(t, path, out)
		return
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The chain verifies across a gzipped rotated file and the current one,
// and every kind of tampering is named by file and line.
func TestTheChainShowsTampering(t *testing.T) {
	rotated, current := writeTrail(t)
	r, err := Check([]string{rotated, current}, testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || len(r.Notes) != 0 || r.Records != 13 || len(r.Instances) != 1 {
		t.Fatalf("an untouched trail: %+v", r)
	}
	base := func(t *testing.T) (string, string) {
		dir := t.TempDir()
		for _, p := range []string{rotated, current} {
			b, _ := os.ReadFile(p)
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return filepath.Join(dir, filepath.Base(rotated)), filepath.Join(dir, filepath.Base(current))
	}
	serveLog := filepath.Join(t.TempDir(), "serve.log")
	_ = os.WriteFile(serveLog, []byte(`{"level":"info","msg":"ivr-pin serve starting"}`+"\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	_ = os.WriteFile(empty, nil, 0o600)
	cases := []struct {
		name   string
		tamper func(rot, cur string) []string // the files to check
		key    MACKey
		says   string // in a problem; {cur} and {rot} name the files
	}{
		{"a pair deleted", func(rot, cur string) []string {
			// m4's attempt and call record: lines 2 and 3 of the current file.
			editLines(t, cur, func(l []string) []string { return append(l[:1:1], l[3:]...) })
			return []string{rot, cur}
		}, testAuditKey, "{cur}:2: 2 records missing before it"},
		{"a masked PAN edited", func(rot, cur string) []string {
			editLines(t, cur, func(l []string) []string {
				l[2] = strings.Replace(l[2], "400000******0018", "400000******0026", 1)
				return l
			})
			return []string{rot, cur}
		}, testAuditKey, "{cur}:3: altered or inserted"},
		{"two records swapped", func(rot, cur string) []string {
			editLines(t, cur, func(l []string) []string { l[1], l[2] = l[2], l[1]; return l })
			return []string{rot, cur}
		}, testAuditKey, "{cur}:3: out of order or repeated"},
		{"a record copied in", func(rot, cur string) []string {
			editLines(t, cur, func(l []string) []string { return append(l[:3:3], append([]string{l[1]}, l[3:]...)...) })
			return []string{rot, cur}
		}, testAuditKey, "{cur}:4: out of order or repeated"},
		{"a record altered in the gzipped file", func(rot, cur string) []string {
			editLines(t, rot, func(l []string) []string { l[4] = strings.Replace(l[4], `"changed"`, `"rejected"`, 1); return l })
			return []string{rot, cur}
		}, testAuditKey, "{rot}:5: altered or inserted"},
		{"the files out of rotation order", func(rot, cur string) []string { return []string{cur, rot} }, testAuditKey,
			"{rot}:1: out of order or repeated"},
		{"the last line cut short", func(rot, cur string) []string {
			b, _ := os.ReadFile(cur)
			_ = os.WriteFile(cur, b[:len(b)-20], 0o600)
			return []string{rot, cur}
		}, testAuditKey, "{cur}:6: cut short (no end of line)"},
		{"a file of garbage", func(rot, cur string) []string {
			g := filepath.Join(filepath.Dir(cur), "garbage")
			_ = os.WriteFile(g, []byte("\x00\x01 not json at all\nsecond line\n"), 0o600)
			return []string{rot, cur, g}
		}, testAuditKey, "garbage:1: not an audit record (2 such lines in the file)"},
		{"serve's log", func(rot, cur string) []string { return []string{rot, cur, serveLog} }, testAuditKey, "serve.log: no audit record at all"},
		{"an empty file", func(rot, cur string) []string { return []string{rot, cur, empty} }, testAuditKey, "empty.jsonl: no audit record at all"},
		{"the wrong key", func(rot, cur string) []string { return []string{rot, cur} }, SoftwareKey("another-key-entirely-0123456789"),
			"{rot}:1: altered: the MAC of the chain's first record does not match"},
		{"no key", func(rot, cur string) []string { return []string{rot, cur} }, nil, "13 chained records not verified: give the audit key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rot, cur := base(t)
			r, err := Check(c.tamper(rot, cur), c.key)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.NewReplacer("{cur}", cur, "{rot}", rot).Replace(c.says)
			all := strings.Join(r.Problems, "\n")
			if r.OK() || !strings.Contains(all, want) {
				t.Fatalf("want a problem %q; got:\n%s", want, all)
			}
		})
	}
}

// Only the current file given: its chain's start is elsewhere, which is a
// note, and the rest verifies.
func TestACurrentFileAloneVerifiesFromItsFirstRecord(t *testing.T) {
	_, current := writeTrail(t)
	r, err := Check([]string{current}, testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "begins at seq 8") {
		t.Fatalf("%+v", r)
	}
}

// A write cut short by a full disk is cut back at once, the chain stays
// where the file is, and once space is back the next record follows the
// last whole one; a torn line left by a crash is cut at the next open and
// the cut recorded.
func TestATornWriteIsCutBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	f, err := OpenFile(path, testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteAttempt(Attempt{MsgID: "m1", Host: "card_host", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	// The disk is full 40 bytes on (RLIMIT_FSIZE: the write is cut short
	// there and fails with EFBIG; Go ignores SIGXFSZ).
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := unix.Rlimit{Cur: uint64(st.Size()) + 40, Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	err = f.Write(Record{MsgID: "m1", Attempts: []string{"m1"}, Outcome: "changed"})
	_ = unix.Setrlimit(unix.RLIMIT_FSIZE, &old)
	if err == nil {
		t.Fatal("a write past the limit succeeded")
	}
	if now, _ := os.Stat(path); now.Size() != st.Size() {
		t.Fatalf("after the failed write the file is %d bytes, was %d: the torn line was left", now.Size(), st.Size())
	}
	if err := f.Write(Record{MsgID: "m1", Attempts: []string{"m1"}, Outcome: "changed"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash left half a line (the cut itself failed).
	w, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	torn := `{"log":"audit","record":"attempt","msg_id":"m2","ho`
	_, _ = w.WriteString(torn)
	w.Close()
	f, err = OpenFile(path, testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteEvent(Event{Kind: KindStop, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"record":"repair"`) || !strings.Contains(string(b), fmt.Sprintf(`"cut_bytes":%d,`, len(torn))) || strings.Contains(string(b), `"m2"`) {
		t.Fatalf("no repair, or the torn line kept:\n%s", b)
	}
	r, err := Check([]string{path}, testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Records != 4 {
		t.Fatalf("%+v", r)
	}
}

// A new file after a rotation whose reopen never came (serve stopped in
// between) carries the chain on from the rotated file.
func TestANewFileCarriesTheChainOnFromItsRotatedSibling(t *testing.T) {
	rotated, current := writeTrail(t)
	_ = os.Remove(current)
	f, err := OpenFile(current, testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteEvent(Event{Kind: KindStart, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, err := Check([]string{rotated, current}, testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	// The rotated file ends at seq 7 (the removed file held 8-13): the
	// new file's first record is 8 and follows 7.
	if !r.OK() || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "no stop record") {
		t.Fatalf("%+v", r)
	}
	b, _ := os.ReadFile(current)
	if !strings.Contains(string(b), `"seq":8,`) {
		t.Fatalf("the new file does not go on from the rotated one:\n%s", b)
	}
}

// A key ceremony appends its record, a chain of its own, to the file a
// running serve writes: both chains verify, and serve's goes on across it
// and across a restart.
func TestACeremonyRecordBesideServesChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	f, err := OpenFile(path, testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteEvent(Event{Kind: KindStart, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := AppendEvent(path, testAuditKey, Event{Kind: KindCeremony, Time: time.Now(), Label: "zpk-2027", KeyType: "tdes2", KCV: "08D7B4",
		Custodians: []Custodian{{Name: "Alice", KCV: "1A2B3C"}, {Name: "Bob", KCV: "4D5E6F"}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteEvent(Event{Kind: KindStop, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f, err = OpenFile(path, testAuditKey); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteEvent(Event{Kind: KindStart, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteEvent(Event{Kind: KindStop, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, err := Check([]string{path}, testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !r.OK() || len(r.Notes) != 0 || r.Records != 5 || !strings.Contains(string(b), `"seq":4,`) {
		t.Fatalf("%+v\n%s", r, b)
	}
}
