package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/ivr"
)

func TestFileAppendsOneJSONLinePerCall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	for round := 0; round < 2; round++ { // reopening appends, never truncates
		a, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if err := a.Write(ivr.CallRecord{ChannelID: "1.1", MaskedPAN: "411111******1111", Outcome: "changed", Start: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		a.Close()
	}
	f, _ := os.Open(path)
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
		var r ivr.CallRecord
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
