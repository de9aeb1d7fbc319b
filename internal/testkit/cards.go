package testkit

import "fmt"

// LuhnPAN appends the Luhn check digit to body (the PAN without it), so a
// test can make as many valid card numbers as it needs.
func LuhnPAN(body string) string {
	sum := 0
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if (len(body)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return body + fmt.Sprint((10-sum%10)%10)
}
