// Package cli is the command line of ivr-pin's two programs, ivr-pin (what a
// bank runs) and ivr-pin-lab (the bench and the phone), as Go tools have it:
// one table of verbs from which the usage comes; -h or --help exits 0 and
// does nothing else; bad usage exits 2 with the usage on stderr; --version
// prints the build.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// IO is a verb's standard streams.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Verb is one command of a program.
type Verb struct {
	Name string
	// Synopsis is the verb's arguments, for a verb of a verb (ivr-pin key
	// import --label L ...): the usage then opens with one line per verb.
	Synopsis string
	// Summary is one line (continued on further lines, which the usage
	// indents under it).
	Summary string
	Run     func(args []string, std IO) int
}

// Program is a command with verbs (ivr-pin, ivr-pin-lab, or a verb with
// verbs of its own such as ivr-pin key).
type Program struct {
	Name  string // as typed: "ivr-pin", "ivr-pin key"
	Verbs []Verb
	// Intro follows the usage line and precedes the verb list.
	Intro string
	// Outro follows the verb list in the usage (settings, exit codes).
	Outro string
	// Version, when set, answers --version.
	Version func() string
}

// Usage is the program's usage: its verbs, from the table.
func (p Program) Usage() string {
	var b strings.Builder
	if len(p.Verbs) > 0 && p.Verbs[0].Synopsis != "" {
		for i, v := range p.Verbs {
			lead := "       "
			if i == 0 {
				lead = "usage: "
			}
			fmt.Fprintf(&b, "%s%s %s %s\n", lead, p.Name, v.Name, v.Synopsis)
		}
	} else {
		fmt.Fprintf(&b, "usage: %s <command> [flags]\n", p.Name)
		if p.Version != nil {
			fmt.Fprintf(&b, "       %s --version\n", p.Name)
		}
	}
	if p.Intro != "" {
		b.WriteString("\n" + strings.TrimRight(p.Intro, "\n") + "\n")
	}
	if p.Verbs[0].Synopsis == "" {
		b.WriteString("\ncommands:\n")
	} else {
		b.WriteString("\n")
	}
	width := 0
	for _, v := range p.Verbs {
		width = max(width, len(v.Name))
	}
	for _, v := range p.Verbs {
		lines := strings.Split(strings.TrimRight(v.Summary, "\n"), "\n")
		fmt.Fprintf(&b, "  %-*s  %s\n", width, v.Name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(&b, "  %-*s  %s\n", width, "", l)
		}
	}
	if p.Outro != "" {
		b.WriteString("\n" + strings.TrimRight(p.Outro, "\n") + "\n")
	}
	return b.String()
}

// Run runs the verb args[0] names with the rest of args.
func (p Program) Run(args []string, std IO) int {
	if len(args) < 1 {
		fmt.Fprint(std.Stderr, p.Usage())
		return 2
	}
	for _, v := range p.Verbs {
		if v.Name == args[0] {
			return v.Run(args[1:], std)
		}
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(std.Stdout, p.Usage())
		return 0
	case "--version", "-version", "version":
		if p.Version != nil {
			fmt.Fprintln(std.Stdout, p.Name, p.Version())
			return 0
		}
	}
	fmt.Fprintf(std.Stderr, "%s: unknown command %q\n\n%s", p.Name, args[0], p.Usage())
	return 2
}

// ParseFlags parses a verb's flags as Go tools do. fs is named as the verb
// is typed ("ivr-pin serve"). -h or --help prints the verb's usage to
// stdout: done is true and code 0, with no side effect. An unknown flag or
// a stray argument prints the error and the usage to stderr: done is true
// and code 2. Otherwise done is false: go on.
func ParseFlags(fs *flag.FlagSet, args []string, summary string, std IO) (code int, done bool) {
	return ParseFlagsAndArgs(fs, args, "", 0, summary, std)
}

// ParseFlagsAndArgs is ParseFlags for a verb that takes exactly nargs
// arguments after its flags, shown in the usage as argsUsage.
func ParseFlagsAndArgs(fs *flag.FlagSet, args []string, argsUsage string, nargs int, summary string, std IO) (code int, done bool) {
	printUsage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: %s [flags]%s\n\n%s\n", fs.Name(), argsUsage, summary)
		var flags strings.Builder
		fs.SetOutput(&flags)
		fs.PrintDefaults()
		if flags.Len() > 0 {
			fmt.Fprintf(w, "\nflags:\n%s", flags.String())
		}
	}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(std.Stdout)
		return 0, true
	case err != nil:
		fmt.Fprintf(std.Stderr, "%s: %v\n", fs.Name(), err)
		printUsage(std.Stderr)
		return 2, true
	case fs.NArg() > nargs:
		fmt.Fprintf(std.Stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(nargs))
		printUsage(std.Stderr)
		return 2, true
	case fs.NArg() < nargs:
		fmt.Fprintf(std.Stderr, "%s: missing%s\n", fs.Name(), argsUsage)
		printUsage(std.Stderr)
		return 2, true
	}
	return 0, false
}

// IsTerminal reports whether r is a terminal (keys typed by a person, not
// piped).
func IsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
