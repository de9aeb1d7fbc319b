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
	cases := []struct {
		args     []string
		code     int
		stdout   string // must contain
		stderr   string // must contain
		emptyOut bool
	}{
		{args: []string{"--version"}, code: 0, stdout: "ivr-pin-lab "},
		{args: []string{"--help"}, code: 0, stdout: "Exit codes: 0 done, 1 failed"},
		{args: nil, code: 2, stderr: "usage: ivr-pin-lab <command>", emptyOut: true},
		{args: []string{"serve"}, code: 2, stderr: `unknown command "serve"`, emptyOut: true},
		{args: []string{"load", "--help"}, code: 0, stdout: "-calls"},
		{args: []string{"load", "--calls"}, code: 2, stderr: "flag needs an argument", emptyOut: true},
		{args: []string{"dial", "-h"}, code: 0, stdout: "usage: ivr-pin-lab dial"},
		{args: []string{"dial"}, code: 2, stderr: "missing sip:EXTENSION@HOST", emptyOut: true},
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
			if c.emptyOut && out.Len() != 0 {
				t.Fatalf("bad usage wrote to stdout: %s", out.String())
			}
		})
	}
}

// The package doc lists the verb table's verbs, in its order.
func TestPackageDocListsTheVerbs(t *testing.T) { clitest.DocListsVerbs(t, "main.go", program()) }
