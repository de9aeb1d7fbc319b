package demo

import (
	"strconv"
	"strings"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
)

// parseTarget reads "context,extension,priority".
func parseTarget(s string) *flows.Target {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return nil
	}
	prio, err := strconv.Atoi(strings.TrimSpace(parts[2]))
	if err != nil {
		return nil
	}
	return &flows.Target{Context: strings.TrimSpace(parts[0]), Extension: strings.TrimSpace(parts[1]), Priority: prio}
}

func pinsvcPolicy(cfg *config.Config) policy.PINPolicy {
	return policy.PINPolicy{MinLength: cfg.PINMinLength, MaxLength: cfg.PINMaxLength}
}
