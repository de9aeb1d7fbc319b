package audit

import (
	"bufio"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Report is what Check found in a set of audit files.
type Report struct {
	// Problems each name a file (and a line): the files do not verify.
	Problems []string
	// Notes are true but not failures: a chain whose start is in files
	// not given, a chain that ends without a stop record.
	Notes []string
	// Records counts the audit records read; Instances the instances
	// that wrote them; First and Last the earliest and latest times.
	Records     int
	Instances   []string
	First, Last time.Time
	// Trail pairs attempts with their call records.
	Trail Trail
}

// OK is true when everything verified: no problem, no open attempt, no
// call record without its attempt.
func (r *Report) OK() bool {
	return len(r.Problems)+len(r.Trail.Open)+len(r.Trail.Orphans) == 0
}

// checked is what the verifier reads of every record.
type checked struct {
	Log      string    `json:"log"`
	Instance string    `json:"instance"`
	Time     time.Time `json:"time"`
	Start    time.Time `json:"start"`
	link
}

// chainEnd is where a chain stood after the last record read.
type chainEnd struct {
	seq   uint64
	mac   []byte
	where string
	kind  string
}

// Check reads audit files, plain or gzipped, in rotation order (oldest
// first), and verifies each chain across them under key: a record
// removed, inserted, changed or moved is named by file and line, as is a
// line that is not a record or was cut short, and a file with no record.
// Without a key the chain is not verified, and that is a problem. err is
// only for a file that cannot be read.
func Check(paths []string, key MACKey) (*Report, error) {
	r := &Report{}
	chains := map[string]*chainEnd{}
	instances := map[string]bool{}
	chained := 0
	for _, path := range paths {
		if err := r.file(path, key, chains, instances, &chained); err != nil {
			return nil, err
		}
	}
	if key == nil && chained > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d chained records not verified: give the audit key (--key-file, or IVRPIN_AUDIT_KEY_FILE)", chained))
	}
	for id, c := range chains {
		if key != nil && c.kind != KindStop && c.kind != KindCeremony {
			r.Notes = append(r.Notes, fmt.Sprintf("chain %s ends at seq %d (%s) with no stop record: serve is running, or stopped without one (killed); records after it may be missing", id, c.seq, c.where))
		}
	}
	for i := range instances {
		r.Instances = append(r.Instances, i)
	}
	slices.Sort(r.Instances)
	slices.Sort(r.Notes)
	r.Trail.Done()
	return r, nil
}

func (r *Report) file(path string, key MACKey, chains map[string]*chainEnd, instances map[string]bool, chained *int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	in, err := maybeGzip(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	br := bufio.NewReaderSize(in, 64<<10)
	records, unchainedN, foreign, firstForeign := 0, 0, 0, 0
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			if !errors.Is(err, io.EOF) {
				r.Problems = append(r.Problems, fmt.Sprintf("%s:%d: unreadable: %v", path, n, err))
			}
			break
		}
		where := fmt.Sprintf("%s:%d", path, n)
		if b[len(b)-1] != '\n' {
			r.Problems = append(r.Problems, where+": cut short (no end of line): a torn write")
			break
		}
		var c checked
		if json.Unmarshal(b, &c) != nil || c.Log != "audit" {
			if foreign++; foreign == 1 {
				firstForeign = n
			}
			continue
		}
		records++
		r.Records++
		r.Trail.add(b)
		if c.Instance != "" {
			instances[c.Instance] = true
		}
		for _, t := range []time.Time{c.Time, c.Start} {
			if t.IsZero() {
				continue
			}
			if r.First.IsZero() || t.Before(r.First) {
				r.First = t
			}
			if t.After(r.Last) {
				r.Last = t
			}
		}
		if c.Chain == "" || c.Chain == unchained || c.Seq == 0 {
			unchainedN++
			continue
		}
		*chained++
		if key == nil {
			continue
		}
		r.link(b, c, key, where, chains)
	}
	if foreign > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%s:%d: not an audit record (%d such lines in the file)", path, firstForeign, foreign))
	}
	if records == 0 {
		r.Problems = append(r.Problems, path+": no audit record at all")
	}
	if unchainedN > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%s: %d records unchained (written without IVRPIN_AUDIT_KEY_FILE, in a lab, or before the chain): nothing proves them whole", path, unchainedN))
	}
	return nil
}

// link verifies one chained record against the record before it in its
// chain, and moves the chain on to it.
func (r *Report) link(b []byte, c checked, key MACKey, where string, chains map[string]*chainEnd) {
	_, covered, mac, ok := splitMAC(b)
	if !ok {
		r.Problems = append(r.Problems, where+": its chain fields are damaged (no MAC at the end of the line)")
		return
	}
	prev := chains[c.Chain]
	follows := func(prevMAC []byte) bool {
		want, err := key.Sum(prevMAC, covered)
		if err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: the MAC cannot be computed: %v", where, err))
			return true // said once, as itself
		}
		return hmac.Equal(mac, want)
	}
	switch {
	case prev == nil && c.Seq == 1:
		if !follows(nil) {
			r.Problems = append(r.Problems, where+": altered: the MAC of the chain's first record does not match (or the key is not this chain's)")
		}
	case prev == nil:
		r.Notes = append(r.Notes, fmt.Sprintf("chain %s begins at seq %d (%s): the records before it are in files not given, and this one is verified only by the next", c.Chain, c.Seq, where))
	case c.Seq == prev.seq+1:
		if !follows(prev.mac) {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: altered or inserted: its MAC does not follow the record before it in its chain (%s)", where, prev.where))
		}
	case c.Seq > prev.seq+1:
		r.Problems = append(r.Problems, fmt.Sprintf("%s: %d records missing before it (seq jumps from %d at %s to %d)", where, c.Seq-prev.seq-1, prev.seq, prev.where, c.Seq))
	default:
		// The chain stays where it was: the records after this one
		// follow the one before it.
		r.Problems = append(r.Problems, fmt.Sprintf("%s: out of order or repeated (seq %d after %d at %s)", where, c.Seq, prev.seq, prev.where))
		return
	}
	chains[c.Chain] = &chainEnd{seq: c.Seq, mac: mac, where: where, kind: c.Kind}
}
