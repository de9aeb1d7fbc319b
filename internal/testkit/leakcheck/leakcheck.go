// Package leakcheck finds typed secrets (card numbers, PINs, security codes)
// in what a call wrote: logs, REST traffic to Asterisk, audit records,
// console output. Tests of every entry point use it.
//
// It matches the exact typed values, not digit patterns: the text is cut
// into words (maximal runs of letters and digits), and a word made only of
// digits that equals a typed secret is a leak, as is any occurrence of a
// full card number or of a typed key group ("7392#"). A word that mixes
// letters and digits is an identifier (a ULID playback id, a msg_id) and may
// hold any digits by chance: a digit-pattern match there made the old leak
// test fail at random.
package leakcheck

import (
	"strings"
	"unicode"
)

// Secrets are the values a test typed.
type Secrets struct {
	PANs  []string // full card numbers: never anywhere, not even inside a word
	Short []string // PINs and security codes: never as a word of their own
	Keys  []string // key groups as pressed ("7392#"): never anywhere
}

// Find returns one line per leak, each with the surrounding text masked so
// a failing test does not print the secret again.
func Find(text string, s Secrets) []string {
	var leaks []string
	report := func(at, n int, what string) {
		lo, hi := max(0, at-30), min(len(text), at+n+30)
		leaks = append(leaks, what+" written: …"+Mask(text[lo:hi])+"…")
	}
	for _, pan := range s.PANs {
		if i := strings.Index(text, pan); i >= 0 {
			report(i, len(pan), "a full card number")
		}
	}
	for _, k := range s.Keys {
		if i := strings.Index(text, k); i >= 0 {
			report(i, len(k), "a typed key group")
		}
	}
	short := map[string]bool{}
	for _, v := range s.Short {
		short[v] = true
	}
	start := -1
	for i, r := range text + " " {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			if w := text[start:i]; short[w] {
				report(start, len(w), "a typed PIN or security code")
			}
			start = -1
		}
	}
	return leaks
}

// Mask replaces every digit with '#'.
func Mask(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsDigit(r) {
			return '#'
		}
		return r
	}, s)
}
