// Package prompts is the catalogue of everything the line says: one ID per
// prompt, its words in each language (data files, words/<lang>.toml, that a
// bank can replace), and its Asterisk media URI. Audio files
// made from the text by gen.sh live under sounds/<lang>/ivr-pin/ and are
// installed into Asterisk's sounds directory, so `sound:ivr-pin/<id>` plays in
// the channel's language. Numbers are said with the project's own number
// prompts (number-0 to number-12, in every language), not Asterisk's
// `digits:` media: Asterisk ships digits in English only unless someone
// installs another language's pack, and an Arabic caller must not hear
// English numbers.
package prompts

import (
	"strconv"
	"strings"
)

// ID names a prompt.
type ID string

// Every prompt the call flow can play.
const (
	Welcome          ID = "welcome"
	LanguageChoice   ID = "lang-choice" // "For English, press" (followed by the number)
	MenuChange       ID = "menu-change"
	MenuSetup        ID = "menu-setup"
	MenuAgent        ID = "menu-agent"
	MenuRepeat       ID = "menu-repeat"
	AgentOffer       ID = "agent-offer" // after an ending that is not a success
	EnterCard        ID = "enter-card"
	CardEnding       ID = "card-ending"       // followed by the last four digits
	EnterExpiry      ID = "enter-expiry"      // as printed: month, then year
	EnterExpiryYYMM  ID = "enter-expiry-yymm" // the host's order: year, then month
	EnterCurrentPIN  ID = "enter-current-pin"
	EnterNewPIN      ID = "enter-new-pin"
	PINRuleFrom      ID = "pin-rule-from"   // "Your new PIN must have" N [to M]
	PINRuleTo        ID = "pin-rule-to"     // "to"
	PINRuleDigits    ID = "pin-rule-digits" // "digits."
	PINRuleEasy      ID = "pin-rule-easy"   // what policy.GuideEasy covers
	PINRuleRuns      ID = "pin-rule-runs"   // what policy.GuideRuns covers
	ConfirmNewPIN    ID = "confirm-new-pin"
	NoInput          ID = "no-input"
	InvalidChoice    ID = "invalid-choice"
	EntryCleared     ID = "entry-cleared"
	ReasonIncomplete ID = "reason-incomplete"
	ReasonTooLong    ID = "reason-too-long"
	ReasonNotValid   ID = "reason-not-valid"
	ReasonBadDate    ID = "reason-bad-date"
	ReasonExpired    ID = "reason-expired"
	ReasonPINSame    ID = "reason-pin-same"
	// One reason per row of policy.PINRules, and the two lengths.
	ReasonPINTooShort   ID = "reason-pin-too-short"
	ReasonPINTooLong    ID = "reason-pin-too-long"
	ReasonPINSameDigits ID = "reason-pin-same-digits"
	ReasonPINSequence   ID = "reason-pin-sequence"
	ReasonPINCommon     ID = "reason-pin-common"
	ReasonPINCardDigits ID = "reason-pin-card-digits"
	ReasonPINExpiry     ID = "reason-pin-expiry"
	ReasonPINRuns       ID = "reason-pin-runs"
	ReasonPINMismatch   ID = "reason-pin-mismatch"
	TryAgain            ID = "try-again"
	PleaseWait          ID = "please-wait"
	StillWorking        ID = "still-working"
	ResultChanged       ID = "result-changed"
	ResultSet           ID = "result-set"
	ResultNotEligible   ID = "result-not-eligible"
	ResultWeakPIN       ID = "result-weak-pin"
	ResultRejected      ID = "result-rejected"
	ResultUnavailable   ID = "result-unavailable"
	ResultAmbiguous     ID = "result-ambiguous"
	TooManyTries        ID = "too-many-tries"
	TransferAgent       ID = "transfer-agent"
	NoAgent             ID = "no-agent"
	ReturningToAgent    ID = "returning-to-agent"
	Goodbye             ID = "goodbye"
	ServiceClosing      ID = "service-closing"
	LimitReached        ID = "limit-reached"

	EnterSecurityCode     ID = "enter-security-code"
	ReasonDetailsMismatch ID = "reason-details-mismatch"
	ResultAlreadySet      ID = "result-already-set"
)

// MaxNumber is the largest number the line can say (a PIN of 12 digits).
const MaxNumber = 12

// Number is the prompt that says n, 0 to MaxNumber.
func Number(n int) ID { return ID("number-" + strconv.Itoa(n)) }

// Item is one thing to play: a prompt, in the channel's language or a fixed
// one.
type Item struct {
	Prompt ID
	// Lang forces a language (the language menu speaks each language in
	// itself); empty means the channel's language.
	Lang string
}

// PIn makes an Item for a prompt in a fixed language.
func PIn(id ID, lang string) Item { return Item{Prompt: id, Lang: lang} }

// P makes an Item for a prompt.
func P(id ID) Item { return Item{Prompt: id} }

// N makes the Item that says the number n (0 to MaxNumber), in lang ("" for
// the channel's language).
func N(n int, lang string) Item { return Item{Prompt: Number(n), Lang: lang} }

// Digits reads s back digit by digit (never a PIN), one Item per digit;
// anything but a digit is skipped.
func Digits(s, lang string) []Item {
	items := make([]Item, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			items = append(items, N(int(s[i]-'0'), lang))
		}
	}
	return items
}

// MediaURI is the Asterisk media URI for the item.
func (i Item) MediaURI() string {
	if i.Lang != "" {
		// Asterisk looks in <sounds>/<channel lang>/<file> and then in
		// <sounds>/<file>, so "ar/ivr-pin/x" finds the Arabic file whatever
		// the channel's language.
		return "sound:" + i.Lang + "/ivr-pin/" + string(i.Prompt)
	}
	return "sound:ivr-pin/" + string(i.Prompt)
}

// TextIn is the item's words in lang (for the console and logs), falling
// back to English.
func (i Item) TextIn(lang string) string {
	if i.Lang != "" {
		lang = i.Lang
	}
	c := Current()
	if t := c.Words(lang, i.Prompt); t != "" {
		return t
	}
	return c.Words("en", i.Prompt)
}

// Continues reports whether next is said in the same sentence as prev: a
// number after "Your new PIN must have", "to", "For English, press" or "For
// the card ending in", a number after a number (the card's last four
// digits), and "to" or "digits." after a number. The console prints such a
// sentence on one line.
func Continues(prev, next ID) bool {
	switch prev {
	case LanguageChoice, PINRuleFrom, PINRuleTo, CardEnding:
		return true
	}
	if next == PINRuleTo || next == PINRuleDigits {
		return true
	}
	return isNumber(prev) && isNumber(next)
}

func isNumber(id ID) bool { return strings.HasPrefix(string(id), "number-") }

// asks are the prompts that put a question to the caller: after each the
// line collects keys (the new PIN's rules follow its question in the same
// breath, and the language choice ends with its number).
var asks = map[ID]bool{
	LanguageChoice: true, MenuRepeat: true, AgentOffer: true,
	EnterCard: true, EnterExpiry: true, EnterExpiryYYMM: true, EnterCurrentPIN: true,
	EnterSecurityCode: true, EnterNewPIN: true, ConfirmNewPIN: true,
}

// Asks reports whether the prompt puts a question to the caller, who
// answers with keys. A scripted caller (the console, the load driver,
// tests) types only once a question has been put: keys typed while the
// line is between questions (waiting for a host, saying a refusal) may be
// dropped, as the line drops keys before it says why it asks again.
func Asks(id ID) bool { return asks[id] }

// AsksMedia is Asks for the media URI a prompt is played as.
func AsksMedia(uri string) bool {
	it, ok := FromMediaURI(uri)
	return ok && Asks(it.Prompt)
}

// FromMediaURI finds the item a media URI plays (the console uses it to show
// what Asterisk was asked to play).
func FromMediaURI(uri string) (Item, bool) {
	if id, ok := strings.CutPrefix(uri, "sound:ivr-pin/"); ok {
		return Item{Prompt: ID(id)}, true
	}
	if rest, ok := strings.CutPrefix(uri, "sound:"); ok {
		if lang, id, ok := strings.Cut(rest, "/ivr-pin/"); ok {
			return Item{Prompt: ID(id), Lang: lang}, true
		}
	}
	return Item{}, false
}
