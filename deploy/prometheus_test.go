package deploy

import (
	"os/exec"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
)

// The shipped alert rules are valid and fire as their unit tests say, and
// the sample scrape configuration loads them (Debian's prometheus package
// has promtool; .ci/run installs it).
func TestAlertRules(t *testing.T) {
	promtool := testkit.Program(t, "promtool", "prometheus")
	for _, args := range [][]string{{"check", "rules", "ivr-pin.rules.yml"}, {"test", "rules", "ivr-pin.rules_test.yml"},
		{"check", "config", "prometheus.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
