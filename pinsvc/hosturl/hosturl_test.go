package hosturl_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/pinsvc/hosturl"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://cards.bank.example/PCServices/CardPinChange", false, true},
		{"https://10.1.2.3:8443/x", false, true},
		{"http://127.0.0.1:8080/x", false, true},
		{"http://127.8.9.10/x", false, true},
		{"http://localhost:9000", false, true},
		{"http://[::1]:9000/x", false, true},
		{"http://cards.bank.example/x", false, false},
		{"http://10.1.2.3/x", false, false},
		{"http://cards.bank.example/x", true, true},
		{"ftp://cards.bank.example/x", true, false},
		{"cards.bank.example/x", false, false},
		{"https://", false, false},
		{"https://%zz", false, false},
		{"mailto:x@y", false, false},
		{"", false, false},
	}
	for _, c := range cases {
		err := hosturl.Check(c.url, c.insecure)
		if (err == nil) != c.ok {
			t.Errorf("Check(%q, %v) = %v, want ok=%v", c.url, c.insecure, err, c.ok)
		}
	}
}

func TestErrorNeverRepeatsTheURL(t *testing.T) {
	for _, u := range []string{"http://user:s3cret@cards.bank.example/x", "ftp://user:s3cret@h/x", "https://%zzs3cret"} {
		if err := hosturl.Check(u, false); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Check(%q) = %v", u, err)
		}
	}
}

func ExampleCheck() {
	fmt.Println(hosturl.Check("https://openplatform.keysecure.example", false))
	fmt.Println(hosturl.Check("http://127.0.0.1:8081", false)) // a simulator
	fmt.Println(hosturl.Check("http://openplatform.keysecure.example", false))
	// Output:
	// <nil>
	// <nil>
	// is plain http to a host that is not loopback; use https
}
