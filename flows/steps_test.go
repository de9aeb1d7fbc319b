package flows

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// Steps lists every step the flow counts a refusal of (the metrics make
// each one's series from start-up).
func TestStepsListsEveryStep(t *testing.T) {
	var src string
	for _, f := range []string{"flow.go", "steps.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src += string(b)
	}
	for _, m := range regexp.MustCompile(`k\.tries\(ctx, "([a-z_]+)"`).FindAllStringSubmatch(src, -1) {
		if !slices.Contains(Steps, m[1]) {
			t.Errorf("step %q is not in Steps", m[1])
		}
	}
}
