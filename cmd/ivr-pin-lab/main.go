// Command ivr-pin-lab is the card PIN line's bench and phone: the tools a
// tester or a capacity planner uses against a line, kept out of the ivr-pin
// binary that a bank runs (they bring a SIP, RTP and DTLS stack).
//
//	ivr-pin-lab load      measure one ivr-pin serve under many concurrent calls
//	ivr-pin-lab dial      call a line over SIP and press keys (a tester's softphone)
//	ivr-pin-lab --version the module version and VCS revision it was built from
//
// The list above is the verb table's (verbs); a test holds them equal.
package main

import (
	"io"
	"os"

	"github.com/ivr-pin/ivr-pin/internal/buildinfo"
	"github.com/ivr-pin/ivr-pin/internal/cli"
)

// verbs is the command line: usage, -h and the package doc come from it.
func verbs() []cli.Verb {
	return []cli.Verb{
		{Name: "load", Summary: "measure one ivr-pin serve under many concurrent calls (docs/performance.md)", Run: load},
		{Name: "dial", Summary: "call a line over SIP and press keys (a tester's softphone)", Run: dial},
	}
}

// program is ivr-pin-lab's command line.
func program() cli.Program {
	return cli.Program{Name: "ivr-pin-lab", Verbs: verbs(), Version: func() string { return buildinfo.Read().String() },
		Outro: `Run 'ivr-pin-lab <command> -h' for a command's flags. Exit codes: 0 done, 1 failed (for
dial: the call did not end with the far end hanging up after every group; for load: not
every call changed its PIN), 2 bad usage.`}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the command line; main only exits with its code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return program().Run(args, cli.IO{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}
