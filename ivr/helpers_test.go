package ivr_test

import "github.com/ivr-pin/ivr-pin/asterisk/aritest"

func aritestCall() aritest.CallOptions { return aritest.CallOptions{} }
