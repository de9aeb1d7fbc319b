module github.com/ivr-pin/ivr-pin

go 1.26

require golang.org/x/oauth2 v0.30.0 // indirect
