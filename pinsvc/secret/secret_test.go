package secret

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const testPAN = "4761739001010119"

func TestPANIsMaskedUnderEveryVerb(t *testing.T) {
	p := PAN(testPAN)
	wrapped := struct {
		Card PAN
		Ptr  *PAN
	}{p, &p}
	outputs := []string{}
	for _, verb := range []string{"%v", "%s", "%q", "%x", "%X", "%d", "%+v", "%#v", "%10s", "%-20v"} {
		outputs = append(outputs, fmt.Sprintf(verb, p), fmt.Sprintf(verb, wrapped))
	}
	js, _ := json.Marshal(wrapped)
	outputs = append(outputs, string(js), fmt.Sprint(p), fmt.Sprintln(p))
	for _, out := range outputs {
		if strings.Contains(out, testPAN) || strings.Contains(out, "7390010101") {
			t.Fatalf("PAN leaked: %s", out)
		}
	}
	if got := p.Masked(); got != "476173******0119" {
		t.Fatalf("Masked = %s", got)
	}
	if p.Digits() != testPAN {
		t.Fatal("Digits must return the clear PAN")
	}
}

func TestMaskPAN(t *testing.T) {
	cases := map[string]string{
		"":                    "",
		"1234":                "****",
		"4111111111":          "**********",
		"4111111111111111":    "411111******1111",
		"4111111111111111111": "411111*********1111",
	}
	for in, want := range cases {
		if got := MaskPAN(in); got != want {
			t.Errorf("MaskPAN(%d digits) = %s, want %s", len(in), got, want)
		}
	}
}

func TestPINIsMaskedAndWiped(t *testing.T) {
	buf := []byte("482915")
	p := NewPIN(buf)
	wrapped := struct{ P *PIN }{p}
	js, _ := json.Marshal(wrapped)
	for _, out := range []string{
		fmt.Sprintf("%v %s %q %x %d %+v %#v", p, p, p, p, p, wrapped, wrapped),
		string(js), fmt.Sprint(p),
	} {
		if strings.Contains(out, "482915") || strings.Contains(out, "343832393135") {
			t.Fatalf("PIN leaked: %s", out)
		}
	}
	if !p.Equal(PINFromString("482915")) || p.Equal(PINFromString("482916")) {
		t.Fatal("Equal is wrong")
	}
	p.Wipe()
	if !p.Wiped() || p.Len() != 0 {
		t.Fatal("PIN not emptied")
	}
	for i, c := range buf {
		if c != 0 {
			t.Fatalf("byte %d not zeroed after Wipe", i)
		}
	}
	p.Wipe() // idempotent
	var nilPIN *PIN
	nilPIN.Wipe()
}

func TestKeyPrintsOnlyKCV(t *testing.T) {
	const hexKey = "0123456789ABCDEFFEDCBA9876543210"
	k, err := ParseHexKey(TDES, hexKey)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(struct{ K *Key }{k})
	for _, out := range []string{fmt.Sprintf("%v %s %x %#v %+v", k, k, k, k, k), string(js)} {
		if strings.Contains(strings.ToUpper(out), "0123456789ABCDEF") || strings.Contains(out, "\x01\x23") {
			t.Fatalf("key leaked: %s", out)
		}
		if !strings.Contains(out, "KCV") {
			t.Fatalf("key description lacks a KCV: %s", out)
		}
	}
	// KCV of this well-known test key (ANSI test key 0123..EF FEDC..10): 08D7B4.
	if got := k.KCV(); got != "08D7B4" {
		t.Fatalf("KCV = %s, want 08D7B4", got)
	}
}

func TestParseHexKeyErrorsNeverEchoInput(t *testing.T) {
	for _, in := range []string{"not-hex-SECRETVALUE", "0011"} {
		_, err := ParseHexKey(TDES, in)
		if err == nil {
			t.Fatalf("accepted %q", in)
		}
		if strings.Contains(err.Error(), in) || strings.Contains(err.Error(), "SECRETVALUE") {
			t.Fatalf("error echoes the key: %v", err)
		}
	}
	if _, err := NewKey(AES, make([]byte, 20)); err == nil {
		t.Fatal("20-byte AES key accepted")
	}
}

// A security code is masked and wiped as a PIN is, nil or not.
func TestSecurityCodeIsMaskedAndWiped(t *testing.T) {
	buf := []byte("731")
	c := NewSecurityCode(buf)
	wrapped := struct{ C *SecurityCode }{c}
	js, _ := json.Marshal(wrapped)
	var none *SecurityCode
	for _, out := range []string{
		fmt.Sprintf("%v %s %q %x %d %+v %#v", c, c, c, c, c, wrapped, wrapped),
		string(js), fmt.Sprint(c), fmt.Sprintf("%v %#v", none, none),
	} {
		if strings.Contains(out, "731") || strings.Contains(out, "373331") {
			t.Fatalf("security code leaked: %s", out)
		}
	}
	c.Wipe()
	if !c.Wiped() || c.Len() != 0 || buf[0] != 0 || buf[2] != 0 {
		t.Fatal("security code not wiped")
	}
	none.Wipe()
}
