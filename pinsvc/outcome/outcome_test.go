package outcome

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/operations.md's list of the audit record's outcomes is every Kind,
// and none beside them but "none" (nothing was sent).
func TestOperationsDocListsEveryOutcome(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "| `outcome` | ") {
			row = strings.TrimPrefix(l, "| `outcome` | ")
		}
	}
	if row == "" {
		t.Fatal("docs/operations.md has no outcome row")
	}
	// The values are the backticked words that start each item.
	var listed []string
	for _, item := range strings.Split(regexp.MustCompile(`\([^)]*\)`).ReplaceAllString(row, ""), ",") {
		if m := regexp.MustCompile("`([a-z_]+)`").FindStringSubmatch(item); m != nil {
			listed = append(listed, m[1])
		}
	}
	want := []string{"none"}
	for _, k := range Kinds {
		want = append(want, string(k))
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("docs/operations.md lists the outcomes %v; the audit record has %v", listed, want)
	}
}
