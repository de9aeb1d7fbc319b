package hostcall

import "testing"

func TestClip(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"Incorrect PIN", 100, "Incorrect PIN"},
		{"Card 4111111111111111 not found", 100, "Card 411111******1111 not found"},
		{"ref 12345678901234567890123 and code 105", 100, "ref 123456*************0123 and code 105"},
		{"reference 700000000001 kept", 100, "reference 700000000001 kept"},
		{"not a card: 4111111111111112", 100, "not a card: 4111111111111112"},
		{"thirteen 4222222222222 Luhn", 100, "thirteen 422222***2222 Luhn"},
		{"卡号无效，请重试", 10, "卡号无"},
		{"4111111111111111", 8, "411111**"},
	}
	for _, c := range cases {
		if got := Clip(c.in, c.n); got != c.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
