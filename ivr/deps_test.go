package ivr_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The call server knows nothing of the PIN line: no package of it may be
// linked into ivr (go list -deps, production code only).
func TestIvrImportsNothingOfThePINLine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/ivr-pin/ivr-pin/ivr").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"/flows", "/pinsvc", "/prompts", "/internal/"} {
			if strings.Contains(dep, "github.com/ivr-pin/ivr-pin"+banned) {
				t.Errorf("ivr depends on %s", dep)
			}
		}
	}
	out, err = exec.Command("go", "list", "-deps", "github.com/ivr-pin/ivr-pin/flows").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"/pinsvc/cardhost", "/pinsvc/keysecure", "golang.org/x/oauth2", "net/http"} {
			if strings.HasSuffix(dep, banned) || dep == banned {
				t.Errorf("flows links %s: it should see the hosts only through pinsvc/contract", dep)
			}
		}
	}
}
