package line

import (
	"strconv"
	"strings"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

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
// in the dialplan, where Asterisk's verbose log would show it.
func ParseTransfer(args []string, variable func(name string) string) flows.Incoming {
	var call flows.Incoming
	kv := map[string]string{}
	transfer := false
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			transfer = transfer || arg == "transfer"
			continue
		}
		kv[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
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
