module github.com/ivr-pin/ivr-pin

go 1.26

require (
	github.com/kelseyhightower/envconfig v1.4.0 // indirect
	golang.org/x/oauth2 v0.30.0 // indirect
)
