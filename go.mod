module github.com/ivr-pin/ivr-pin

go 1.26
