package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/ivr-pin/ivr-pin/cmd/ivr-pin-lab/softphone"
	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/secretfile"
)

// dial is `ivr-pin-lab dial [flags] sip:EXT@HOST[:PORT]`: a SIP softphone for
// testing a line. It exits 0 when the far end hung up after every group of
// keys was sent, 1 otherwise, 2 on bad usage.
func dial(args []string, std cli.IO) int {
	stdin, stdout, stderr := std.Stdin, std.Stdout, std.Stderr
	fs := flag.NewFlagSet("ivr-pin-lab dial", flag.ContinueOnError)
	keys := fs.String("keys", "", `groups of keys separated by spaces, each pressed once the line is quiet after a prompt, e.g. "1 4111111111111111# 1228 7392# 4829# 4829#"`)
	from := fs.String("from", "", "caller user name (default ivr-pin-dial)")
	password := fs.String("password", "", "password for a digest challenge (visible to other users in the process list: prefer --password-file or IVRPIN_DIAL_PASSWORD)")
	passwordFile := fs.String("password-file", "", "file holding the digest password (one trailing newline dropped; 0600)")
	timeout := fs.Duration("timeout", 3*time.Minute, "longest the call may last")
	record := fs.String("record", "", "write what was heard to this WAV file (8 kHz mono 16-bit)")
	quiet := fs.Duration("quiet", 900*time.Millisecond, "silence after a prompt before a group is pressed")
	if code, done := cli.ParseFlagsAndArgs(fs, args, " sip:EXTENSION@HOST[:PORT]", 1, "Calls a line over SIP (UDP) and presses keys as RFC 4733 telephone events. Without --keys,\nkeys typed on a terminal are sent as typed, or groups are read from piped standard input.\nPrints one line per group sent (never the keys) and how the call ended.", std); done {
		return code
	}
	pw := *password
	switch {
	case *passwordFile != "" && pw != "":
		fmt.Fprintln(stderr, "ivr-pin-lab dial: --password and --password-file: give one")
		return 2
	case *passwordFile != "":
		b, err := secretfile.Read(*passwordFile)
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin-lab dial: --password-file: %v\n", err)
			return 1
		}
		pw = string(b)
	case pw == "":
		pw = os.Getenv("IVRPIN_DIAL_PASSWORD")
	}
	o := softphone.Options{Target: fs.Arg(0), From: *from, Password: pw, Timeout: *timeout, Quiet: *quiet, Progress: stdout}
	if _, err := softphone.ParseTarget(o.Target); err != nil {
		fmt.Fprintf(stderr, "ivr-pin-lab dial: %v\n", err)
		return 2
	}
	switch {
	case *keys != "":
		o.Keys = strings.Fields(*keys)
	case cli.IsTerminal(stdin):
		f := stdin.(*os.File)
		state, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin-lab dial: %v\n", err)
			return 1
		}
		defer term.Restore(int(f.Fd()), state)
		o.Live = stdin
		// Raw mode: a line needs \r\n.
		o.Progress = crlf{stdout}
		fmt.Fprint(stdout, "type keys (0-9 * #); they are sent as typed and not shown\r\n")
	default:
		data, err := io.ReadAll(io.LimitReader(stdin, 4096))
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin-lab dial: reading keys: %v\n", err)
			return 2
		}
		o.Keys = strings.Fields(string(data))
	}
	if err := softphone.CheckKeys(o.Keys); err != nil {
		fmt.Fprintf(stderr, "ivr-pin-lab dial: %v\n", err)
		return 2
	}
	if *record != "" {
		f, err := os.Create(*record)
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin-lab dial: %v\n", err)
			return 1
		}
		defer f.Close()
		o.Record = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res, err := softphone.Dial(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin-lab dial: %v\n", err)
		return 1
	}
	if o.Live != nil {
		if res.FarEndHungUp {
			return 0
		}
		return 1
	}
	if !res.OK() {
		return 1
	}
	return 0
}

// crlf turns \n into \r\n for a terminal in raw mode.
type crlf struct{ w io.Writer }

func (c crlf) Write(p []byte) (int, error) {
	if _, err := c.w.Write([]byte(strings.ReplaceAll(string(p), "\n", "\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}
