package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/internal/cli"
)

// auditProgram is `ivr-pin audit`'s verbs.
func auditProgram() cli.Program {
	return cli.Program{Name: "ivr-pin audit", Verbs: []cli.Verb{
		{Name: "check", Synopsis: "FILE...", Summary: `reads audit files (the current one and its rotated ones, in any order) and lists
every attempt with no call record (a change that may have reached the host while
no record of its answer was written) and every call record naming a msg_id with
no attempt before it; exits 1 if there are any. docs/operations.md says how to
reconcile them with the host by msg_id.`, Run: func(a []string, s cli.IO) int { return auditCheck(a, s.Stdout, s.Stderr) }},
	}}
}

func auditCmd(args []string, stdout, stderr io.Writer) int {
	return auditProgram().Run(args, cli.IO{Stdout: stdout, Stderr: stderr})
}

func auditCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin audit check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, auditProgram().Usage())
			return 0
		}
		fmt.Fprintf(stderr, "ivr-pin audit check: %v\n\n%s", err, auditProgram().Usage())
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "ivr-pin audit check: missing FILE\n\n%s", auditProgram().Usage())
		return 2
	}
	var t audit.Trail
	for _, path := range fs.Args() {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin audit check: %v\n", err)
			return 1
		}
		err = t.Read(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin audit check: %s: %v\n", path, err)
			return 1
		}
	}
	t.Done()
	for _, a := range t.Open {
		fmt.Fprintf(stdout, "open attempt: msg_id %s host %s pan %s channel %s instance %s at %s (no call record)\n",
			a.MsgID, a.Host, a.MaskedPAN, a.ChannelID, a.Instance, a.Time.Format("2006-01-02T15:04:05Z07:00"))
	}
	for _, r := range t.Orphans {
		fmt.Fprintf(stdout, "call record without its attempt: msg_id %s host %s pan %s channel %s outcome %s end %s\n",
			r.MsgID, r.Host, r.MaskedPAN, r.ChannelID, r.Outcome, r.End)
	}
	if len(t.Open)+len(t.Orphans) > 0 {
		fmt.Fprintf(stderr, "ivr-pin audit check: %d open attempts, %d call records without their attempt\n", len(t.Open), len(t.Orphans))
		return 1
	}
	fmt.Fprintln(stdout, "ivr-pin audit check: every attempt has its call record")
	return 0
}
