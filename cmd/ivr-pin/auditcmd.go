package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ivr-pin/ivr-pin/internal/audit"
)

const auditUsage = `usage: ivr-pin audit check FILE...

  check  reads audit files (the current one and its rotated ones, in any order) and lists
         every attempt with no call record (a change that may have reached the host while
         no record of its answer was written) and every call record naming a msg_id with
         no attempt before it; exits 1 if there are any. docs/operations.md says how to
         reconcile them with the host by msg_id.
`

func auditCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, auditUsage)
		return 0
	case "check":
		return auditCheck(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "ivr-pin audit: unknown command %q\n\n%s", args[0], auditUsage)
	return 2
}

func auditCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, auditUsage)
			return 0
		}
		fmt.Fprintf(stderr, "ivr-pin audit check: %v\n\n%s", err, auditUsage)
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "ivr-pin audit check: missing FILE\n\n%s", auditUsage)
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
