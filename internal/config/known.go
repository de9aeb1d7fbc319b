package config

import (
	"errors"
	"sort"
	"strings"
)

// Known lists every variable the configuration reads, with the prefix: each
// setting, and each secret's _FILE twin.
func Known() []string {
	var out []string
	for _, s := range settings() {
		out = append(out, Prefix+"_"+s.Name)
	}
	for _, s := range SecretVariables() {
		out = append(out, s+FileSuffix)
	}
	sort.Strings(out)
	return out
}

// notSettings are IVRPIN_ variables that are not the service's settings:
// the test harness's Asterisk, dial's password.
var notSettings = map[string]bool{"IVRPIN_TEST_ASTERISK": true, "IVRPIN_DIAL_PASSWORD": true}

// Unknown reports each IVRPIN_ variable in environ that no setting reads,
// with the closest known name: a misspelt setting is otherwise ignored and
// its default used.
func Unknown(environ []string) []error {
	known := map[string]bool{}
	for _, k := range Known() {
		known[k] = true
	}
	var out []error
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, Prefix+"_") || known[name] || notSettings[name] {
			continue
		}
		msg := name + ": not a setting"
		if c := Closest(name); c != "" {
			msg += ": did you mean " + c + "?"
		}
		out = append(out, errors.New(msg))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Error() < out[b].Error() })
	return out
}

// Closest is the known variable nearest to name by edit distance, if it is
// near enough to be a slip (a third of the name's length at most).
func Closest(name string) string {
	best, bestD := "", len(name)/3+1
	for _, k := range Known() {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance (insert, delete, substitute,
// and a swap of two neighbours counted once: LANGAUGES is one slip).
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
