// Package asterisk holds the Asterisk configuration for a real Asterisk 20
// or 22 deployment (conf/); in aritest, the ARI test server the fast tests
// and the console use in Asterisk's place; and in asterisktest, the harness
// that runs a real Asterisk for the TestRealAsterisk* tests. Its
// tests check that the configuration matches the code: the Stasis
// application name, the arguments the app understands, and the security
// settings (no dtmf log level, no wildcard origins, crypted ARI password).
package asterisk

// Application is the Stasis application name the dialplan uses; it must
// equal IVRPIN_ARI_APPLICATION's default.
const Application = "ivr-pin"

// StasisArgs are the argument keys the PIN line understands
// (internal/line.ParseTransfer).
var StasisArgs = []string{"mode", "lang", "pan", "expiry", "seq", "card_no", "cardholder_no", "return", "transfer"}
