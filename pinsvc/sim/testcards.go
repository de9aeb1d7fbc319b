// Package sim holds what the two host simulators share: the test cards a
// person trying the console can type. These are test data from public test
// ranges, not cardholder data, so `ivr-pin simulate` prints them in full.
package sim

// TestCard is one card known to a simulator, with the path it exercises.
type TestCard struct {
	PAN          string
	Expiry       string // YYMM
	SeqNo        string // card sequence number, "" when the card has none
	PIN          string // current PIN at the card host ("" = no PIN yet)
	CardHost     string // status at the card host: "active", "blocked", "" = unknown there
	KeySecure    string // KeySecure card_type/status, "" = unknown there
	CardNo       string // KeySecure card order number
	CardholderNo string // KeySecure cardholder order number
	CVV          string // security code on the back (KeySecure private info)
	Path         string // what a caller exercises with it
}

// TestCards are the simulators' built-in cards. Expiry dates lie in 2028 to
// 2030 so they stay valid for a while; tests that need an expired card make
// their own.
var TestCards = []TestCard{
	{PAN: "4111111111111111", Expiry: "2812", SeqNo: "01", PIN: "7392", CardHost: "active",
		Path: "change PIN: press 1, succeeds"},
	{PAN: "5555555555554444", Expiry: "2906", PIN: "2580", CardHost: "active",
		Path: "change PIN: press 1, succeeds (no sequence number)"},
	{PAN: "4000056655665556", Expiry: "2903", PIN: "4826", CardHost: "blocked",
		Path: "change PIN: card not eligible"},
	{PAN: "4012888888881881", Expiry: "3001", CardHost: "active", KeySecure: "Physical/Activated",
		CardNo: "C202605220001", CardholderNo: "U202605220001", CVV: "731",
		Path: "press 2: first PIN of a new card through KeySecure, security code 731 (press 1: host says no PIN yet)"},
	{PAN: "5105105105105100", Expiry: "2907", KeySecure: "Virtual/Activated",
		CardNo: "C202605220002", CardholderNo: "U202605220002", CVV: "402",
		Path: "press 2: refused, virtual card (4017)"},
	{PAN: "4761739001010119", Expiry: "2911", KeySecure: "Physical/ToActivate",
		CardNo: "C202605220003", CardholderNo: "U202605220003", CVV: "958",
		Path: "press 2: refused, card not activated (4005), security code 958"},
}
