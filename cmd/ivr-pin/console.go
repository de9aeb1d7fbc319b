package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/demo"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// console runs one complete call: the ARI test server in process stands in
// for Asterisk, the terminal is the phone, and the host simulators stand in
// for the bank unless IVRPIN_NI_URL / IVRPIN_KEYSECURE_URL are set.
//
// Keys come from --keys, from piped standard input, or, on a terminal, from
// the keyboard (raw mode: nothing typed is echoed). In --keys and piped
// input, spaces separate answers: each group is typed once the line is
// waiting for input, as a person listening to the prompts would.
func console(args []string, std cli.IO) int {
	stdin, stdout, stderr := std.Stdin, std.Stdout, std.Stderr
	fs := flag.NewFlagSet("ivr-pin console", flag.ContinueOnError)
	keys := fs.String("keys", "", `scripted caller, e.g. "1 4111111111111111# 1228 7392# 4829# 4829#"`)
	lang := fs.String("lang", "", "language passed in as an agent transfer would (skips the language menu)")
	speed := fs.Float64("speed", 0.05, "prompt playing speed: 1 is real time")
	verbose := fs.Bool("verbose", false, "show the app's logs")
	transport := fs.String("transport", "inbound", "ARI transport between the test server and the line: inbound, outbound (one websocket per call) or persistent (one outbound websocket)")
	if code, done := parseFlags(fs, args, "One complete call on this machine: the ARI test server stands in for Asterisk and the\nsimulators for the bank (unless IVRPIN_NI_URL / IVRPIN_KEYSECURE_URL are set). Keys come\nfrom --keys, piped standard input, or the keyboard. Exit 0 on an outcome, 3 without one.", stdout, stderr); done {
		return code
	}
	switch *transport {
	case demo.Inbound, demo.Outbound, demo.Persistent:
	default:
		fmt.Fprintln(stderr, "ivr-pin console: --transport must be inbound, outbound or persistent")
		return 2
	}
	cfg, ok := loadConfig(stderr)
	if !ok {
		return 1
	}
	logger := newLogger(cfg, stderr)
	if !*verbose {
		logger.SetLevel(logrus.WarnLevel)
	}

	var script []string
	interactive := false
	switch {
	case *keys != "":
		script = strings.Fields(*keys)
	case cli.IsTerminal(stdin):
		interactive = true
	default:
		data, err := io.ReadAll(io.LimitReader(stdin, 4096))
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin console: reading keys: %v\n", err)
			return 2
		}
		script = strings.Fields(string(data))
	}

	out := &lineWriter{w: stdout}
	language := *lang
	if language == "" {
		language = cfg.Languages[0]
	}
	d, err := demo.Start(demo.Options{
		Config: cfg, Log: logrus.NewEntry(logger), PlaybackScale: *speed, Transport: *transport,
		OnPlay: func(ch *aritest.Channel, media string) {
			item, ok := prompts.FromMediaURI(media)
			if !ok {
				return
			}
			out.say(item, ch.Snapshot().Language)
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin console: %v\n", err)
		return 1
	}
	defer d.Close()
	if d.Sims != nil {
		printTestCards(out, policy.ExpiryOrder(cfg.ExpiryOrder))
	}

	var callArgs []string
	if *lang != "" {
		callArgs = []string{"lang=" + *lang}
	}
	ch, err := d.ARI.PlaceCall(aritest.CallOptions{App: cfg.ARIApplication, Args: callArgs, Language: language})
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin console: placing the call: %v\n", err)
		return 1
	}
	if interactive {
		stop := typeFromKeyboard(stdin, ch, out)
		defer stop()
	} else {
		go typeScript(ch, script, *speed)
	}
	if _, err := ch.WaitEnded(cfg.CallTimeout); err != nil {
		fmt.Fprintf(stderr, "ivr-pin console: the call did not end: %v\n", err)
		return 1
	}
	rec, err := d.RecordFor(ch.ID, 10*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin console: %v\n", err)
		return 1
	}
	out.printf("\nOutcome: %s", rec.Outcome)
	if rec.Host != "" {
		out.printf(" (host %s, code %s", rec.Host, rec.ResultCode)
		if rec.MsgID != "" {
			out.printf(", msg_id %s", rec.MsgID)
		}
		out.printf(")")
	}
	out.printf("; call ended by %s", rec.End)
	if rec.AgentReason != "" {
		out.printf(" (%s)", rec.AgentReason)
	}
	if rec.LangFallback != "" {
		out.printf("; language %q is not one of the line's (IVRPIN_LANGUAGES), %s played", rec.LangFallback, rec.Language)
	}
	if rec.MaskedPAN != "" {
		out.printf("; card %s", rec.MaskedPAN)
	}
	out.printf("\n")
	if rec.End != "outcome" {
		// No input, too many tries, a hang-up, a limit, the agents: the
		// call ended without the host's answer being its end.
		return 3
	}
	return 0
}

// lineWriter serialises output from the prompt hook and the main goroutine.
type lineWriter struct {
	mu         sync.Mutex
	w          io.Writer
	raw        bool // the terminal is in raw mode: lines need \r\n
	open       bool // a sentence of the IVR's is on the current line
	lastPrompt prompts.ID
}

func (l *lineWriter) printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeLine()
	l.write(fmt.Sprintf(format, a...))
}

// closeLine ends a sentence left open by say. Callers hold mu.
func (l *lineWriter) closeLine() {
	if l.open {
		l.write("\n")
		l.open = false
	}
}

// write writes s as is (with \r\n in raw mode). Callers hold mu.
func (l *lineWriter) write(s string) {
	if l.raw {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	_, _ = io.WriteString(l.w, s)
}

// typeScript presses each group of keys once the line has put its
// question and gone quiet, like a caller who listens first.
func typeScript(ch *aritest.Channel, groups []string, speed float64) {
	quiet := time.Duration(float64(1200*time.Millisecond)*speed) + 60*time.Millisecond
	for _, g := range groups {
		if ch.PressWhenAsked(g, prompts.AsksMedia, quiet, 40*time.Millisecond, time.Minute) != nil {
			return
		}
	}
}

// typeFromKeyboard reads keys in raw mode (not echoed) and presses them.
func typeFromKeyboard(stdin io.Reader, ch *aritest.Channel, out *lineWriter) func() {
	f := stdin.(*os.File)
	old, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		out.printf("cannot read the keyboard: %v\n", err)
		return func() {}
	}
	out.mu.Lock()
	out.raw = true
	out.mu.Unlock()
	out.printf("(type digits, * and #; keys are not shown; Ctrl-C hangs up)\n")
	go func() {
		r := bufio.NewReader(f)
		for {
			b, err := r.ReadByte()
			if err != nil {
				return
			}
			switch {
			case b == 3 || b == 4: // Ctrl-C, Ctrl-D: the caller hangs up
				ch.Hangup()
				return
			case b >= '0' && b <= '9', b == '*', b == '#':
				if ch.Press(string(b), 0) != nil {
					return
				}
			}
		}
	}()
	return func() {
		_ = term.Restore(int(f.Fd()), old)
		out.mu.Lock()
		out.raw = false
		out.mu.Unlock()
	}
}

// printTestCards lists the simulated bank's cards, each expiry as the caller
// types it (IVRPIN_EXPIRY_ORDER; the cards keep the host's YYMM).
func printTestCards(out *lineWriter, order policy.ExpiryOrder) {
	out.printf("Simulated bank. Test cards (test data, not real cards); type the expiry as %s:\n", order)
	for _, c := range sim.TestCards {
		pin := c.PIN
		if pin == "" {
			pin = "none yet"
		}
		exp := c.Expiry
		if order != policy.YYMM {
			exp = exp[2:] + exp[:2]
		}
		out.printf("  %s  expiry %s  PIN %-8s  %s\n", c.PAN, exp, pin, c.Path)
	}
	out.printf("\n")
}

// say prints what the line said, one line per sentence: a sentence made of
// fragments ("Your new PIN must have" 4 "to" 6 "digits…") is joined.
func (l *lineWriter) say(item prompts.Item, lang string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	text := item.TextIn(lang)
	if l.open && prompts.Continues(l.lastPrompt, item.Prompt) {
		l.write(" " + text)
	} else {
		l.closeLine()
		l.write("IVR: " + text)
	}
	l.open, l.lastPrompt = true, item.Prompt
}
