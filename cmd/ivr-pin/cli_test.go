package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/cli/clitest"
)

// The command line behaves as Go tools do: help on every verb exits 0 and
// does nothing else; bad usage exits 2 with the usage on stderr.
func TestCommandLine(t *testing.T) {
	// A configuration that cannot load: a verb that reads it would fail, so
	// exit 0 proves --help did nothing but print.
	t.Setenv("IVRPIN_ARI_URL", "ftp://not-an-ari-url")
	cases := []struct {
		args       []string
		code       int
		stdout     string // must contain
		stderr     string // must contain
		noStdout   string // must not contain
		emptyOut   bool
		emptyErrOK bool
	}{
		{args: []string{"--version"}, code: 0, stdout: "ivr-pin "},
		{args: []string{"version"}, code: 0, stdout: "ivr-pin "},
		{args: []string{"--help"}, code: 0, stdout: "Exit codes: 0 done, 1 failed"},
		{args: nil, code: 2, stderr: "usage: ivr-pin <command>", emptyOut: true},
		{args: []string{"bogus"}, code: 2, stderr: `unknown command "bogus"`, emptyOut: true},
		{args: []string{"serve", "--help"}, code: 0, stdout: "usage: ivr-pin serve"},
		{args: []string{"serve", "-h"}, code: 0, stdout: "usage: ivr-pin serve"},
		{args: []string{"serve", "now"}, code: 2, stderr: `unexpected argument "now"`, emptyOut: true},
		{args: []string{"serve", "--port=1"}, code: 2, stderr: "flag provided but not defined: -port", emptyOut: true},
		{args: []string{"config", "--help"}, code: 0, stdout: "usage: ivr-pin config", noStdout: "IVRPIN_ARI_URL="},
		{args: []string{"config", "--bogus"}, code: 2, stderr: "usage: ivr-pin config", emptyOut: true},
		{args: []string{"config"}, code: 1, stderr: "IVRPIN_ARI_URL", emptyOut: true},
		{args: []string{"config", "--table"}, code: 0, stdout: "| `IVRPIN_ARI_URL` |"},
		{args: []string{"console", "--help"}, code: 0, stdout: "-keys"},
		{args: []string{"console", "--speed", "fast"}, code: 2, stderr: "invalid value", emptyOut: true},
		{args: []string{"simulate", "-h"}, code: 0, stdout: "-cardhost"},
		{args: []string{"check", "--help"}, code: 0, stdout: "usage: ivr-pin check"},
		{args: []string{"ready", "-h"}, code: 0, stdout: "usage: ivr-pin ready"},
		{args: []string{"audit"}, code: 2, stderr: "usage: ivr-pin audit check", emptyOut: true},
		{args: []string{"audit", "check"}, code: 2, stderr: "missing FILE", emptyOut: true},
		{args: []string{"audit", "check", "-h"}, code: 0, stdout: "usage: ivr-pin audit check"},
		{args: []string{"audit", "check", "/nonexistent/audit.jsonl"}, code: 1, stderr: "no such file", emptyOut: true},
		{args: []string{"ready", "--addr", "127.0.0.1:1"}, code: 1, stderr: "ivr-pin ready:", emptyOut: true},
		{args: []string{"check", "now"}, code: 2, stderr: `unexpected argument "now"`, emptyOut: true},
		{args: []string{"prompts"}, code: 2, stderr: "usage: ivr-pin prompts list", emptyOut: true},
		{args: []string{"prompts", "--help"}, code: 0, stdout: "docs/prompts.md"},
		{args: []string{"prompts", "check"}, code: 2, stderr: "missing DIR", emptyOut: true},
		{args: []string{"prompts", "check", "-h"}, code: 0, stdout: "usage: ivr-pin prompts check"},
		{args: []string{"prompts", "list", "--lang", "en"}, code: 0, stdout: "enter-expiry\tPlease enter the card's expiry date, the month and year"},
		{args: []string{"prompts", "list", "--lang", "fr"}, code: 1, stderr: `no words for language "fr"`, emptyOut: true},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, strings.NewReader(""), &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
				t.Fatalf("stdout: %s\nstderr: %s", out.String(), errb.String())
			}
			if c.noStdout != "" && strings.Contains(out.String(), c.noStdout) {
				t.Fatalf("stdout holds %q: %s", c.noStdout, out.String())
			}
			if c.emptyOut && out.Len() != 0 {
				t.Fatalf("bad usage wrote to stdout: %s", out.String())
			}
		})
	}
}

// The package doc lists the verb table's verbs, in its order.
func TestPackageDocListsTheVerbs(t *testing.T) { clitest.DocListsVerbs(t, "main.go", program()) }

// The binary that holds the bank's keys links no SIP, RTP, SRTP, DTLS or
// ICE stack: a bank's dependency review (PCI DSS 6.3.2) covers every package
// it links, and the bench and the phone that need those are ivr-pin-lab's.
func TestProductionBinaryLinksNoSIPOrRTP(t *testing.T) {
	deps := clitest.Deps(t, "github.com/ivr-pin/ivr-pin/cmd/ivr-pin")
	for _, d := range deps {
		for _, banned := range []string{"github.com/emiago/", "github.com/pion/", "github.com/ivr-pin/ivr-pin/cmd/ivr-pin-lab"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("ivr-pin links %s", d)
			}
		}
	}
	if len(deps) < 50 {
		t.Fatalf("go list -deps found only %d packages: %v", len(deps), deps)
	}
}
