package flows

import (
	"testing"

	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// Every reason the policy can give is said in words of its own: a reason
// without a prompt would be heard as "that is not one of the options".
func TestEveryPolicyReasonIsSaid(t *testing.T) {
	reasons := []policy.Reason{policy.ReasonIncomplete, policy.ReasonTooLong, policy.ReasonNotDigits, policy.ReasonNotValidCard,
		policy.ReasonBadDate, policy.ReasonExpired, policy.ReasonPINTooShort, policy.ReasonPINTooLong, policy.ReasonPINMismatch}
	for _, r := range policy.PINRules {
		reasons = append(reasons, r.Reason)
	}
	said := map[prompts.ID]policy.Reason{}
	for _, r := range reasons {
		id := reasonPrompt(Reason(r))
		if id == prompts.InvalidChoice || prompts.Embedded().Words("en", id) == "" {
			t.Errorf("%s is said as %q", r, id)
		}
		if other, ok := said[id]; ok && r != policy.ReasonNotDigits && other != policy.ReasonNotDigits {
			t.Errorf("%s and %s sound the same (%s)", r, other, id)
		}
		said[id] = r
	}
	for _, r := range policy.PINRules {
		if r.Guide != policy.GuideNone && guidancePrompt[r.Guide] == "" {
			t.Errorf("rule %s has guidance %q that is never said", r.Reason, r.Guide)
		}
	}
}
