package line

import (
	"strconv"
	"strings"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// secretKeys are argument keys that would carry a card's secrets: never
// accepted in the Stasis arguments (the PAN comes by channel variable).
var secretKeys = map[string]bool{"pan": true, "pin": true, "new_pin": true, "cvv": true, "cvv2": true, "security_code": true}

// longDigitRun reports a run of 12 or more digits: a card number's length.
func longDigitRun(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			if run++; run >= 12 {
				return true
			}
			continue
		}
		run = 0
	}
	return false
}

// transferNames are the Stasis argument keys, and (upper-cased, prefixed
// IVRPIN_) the channel variable names, a transfer may set.
var transferNames = []string{"mode", "lang", "pan", "expiry", "seq", "card_no", "cardholder_no", "return"}

// ParseTransfer reads what an agent transfer passed in. Stasis arguments are
// key=value pairs (mode, lang, card_no, cardholder_no, expiry, seq (the
// card sequence number), return as context/extension/priority); the
// argument "transfer" makes it also read the channel variables IVRPIN_MODE,
// IVRPIN_LANG, IVRPIN_PAN, IVRPIN_EXPIRY, IVRPIN_SEQ, IVRPIN_CARD_NO,
// IVRPIN_CARDHOLDER_NO and IVRPIN_RETURN through variable, for keys the
// arguments do not set. Values that do not parse are dropped, never guessed
// at: an unknown mode asks the menu, a malformed return hangs up.
//
// Pass a PAN by channel variable set over AMI/ARI by the agent desktop, not
// in the dialplan, where Asterisk's verbose log would show it: a card
// number, a PIN or a security code in the arguments (a "pan", "pin" or
// "cvv" key, or a run of 12 or more digits anywhere but in KeySecure's
// card_no and cardholder_no) makes the call
// Unsafe, and nothing of the arguments is used.
func ParseTransfer(args []string, variable func(name string) string) flows.Incoming {
	var call flows.Incoming
	kv := map[string]string{}
	transfer := false
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		key := strings.ToLower(strings.TrimSpace(k))
		// KeySecure's card ids (C and 12 digits) are not card numbers.
		if secretKeys[key] || (longDigitRun(arg) && !(ok && (key == "card_no" || key == "cardholder_no"))) {
			return flows.Incoming{Unsafe: "card details in the Stasis arguments, which Asterisk's verbose log prints: pass a PAN as the channel variable IVRPIN_PAN"}
		}
		if !ok {
			transfer = transfer || arg == "transfer"
			continue
		}
		kv[key] = strings.TrimSpace(v)
	}
	if transfer && variable != nil {
		for _, name := range transferNames {
			if _, set := kv[name]; !set {
				if v := variable("IVRPIN_" + strings.ToUpper(name)); v != "" {
					kv[name] = v
				}
			}
		}
	}
	switch flows.Mode(kv["mode"]) {
	case flows.ModeChange, flows.ModeSetup:
		call.Mode = flows.Mode(kv["mode"])
	}
	call.Language = kv["lang"]
	call.PAN = secret.PAN(kv["pan"])
	call.Expiry = kv["expiry"]
	call.CardNo, call.CardholderNo = kv["card_no"], kv["cardholder_no"]
	if seq := kv["seq"]; len(seq) == 2 && seq[0] >= '0' && seq[0] <= '9' && seq[1] >= '0' && seq[1] <= '9' {
		call.SequenceNumber = seq
	}
	if r := kv["return"]; r != "" {
		parts := strings.Split(r, "/")
		if len(parts) == 3 && parts[0] != "" && parts[1] != "" {
			prio, err := strconv.Atoi(parts[2])
			if err == nil && prio >= 1 {
				call.Return = &flows.Target{Context: parts[0], Extension: parts[1], Priority: prio}
			}
		}
	}
	return call
}
