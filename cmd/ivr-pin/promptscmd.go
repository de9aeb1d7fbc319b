package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/prompts"
	"github.com/ivr-pin/ivr-pin/prompts/soundcheck"
)

// promptsProgram is `ivr-pin prompts`'s verbs.
func promptsProgram() cli.Program {
	return cli.Program{Name: "ivr-pin prompts", Intro: `The prompt catalogue: the shipped words (prompts/words/<lang>.toml), with the
files of IVRPIN_PROMPT_WORDS laid over them when it is set.`,
		Verbs: []cli.Verb{
			{Name: "list", Synopsis: "[--lang L]", Summary: `prints each prompt's name and words, one a line, in language L (every
language when not given).`, Run: func(a []string, s cli.IO) int { return promptsList(a, s.Stdout, s.Stderr) }},
			{Name: "check", Synopsis: "[--lang L1,L2] DIR", Summary: `checks an Asterisk sounds directory (DIR/<lang>/ivr-pin/<prompt>.<ext>)
against the catalogue: every prompt present for each language (--lang,
else IVRPIN_LANGUAGES when set, else every language of the catalogue),
in a format Asterisk plays (.wav PCM mono 16-bit 8 kHz, .ulaw, .alaw,
.sln16, .g722), not silent, not clipped, and about as long as its
words. Exits 1 naming each problem.`, Run: func(a []string, s cli.IO) int { return promptsCheck(a, s.Stdout, s.Stderr) }},
		},
		Outro: "docs/prompts.md says how to record, convert and install a bank's own prompts."}
}

// promptsCmd runs the prompt catalogue's verbs.
func promptsCmd(args []string, std cli.IO) int { return promptsProgram().Run(args, std) }

// catalogue is the shipped words with IVRPIN_PROMPT_WORDS laid over them.
func catalogue(stderr io.Writer) (*prompts.Catalogue, bool) {
	c, err := prompts.Load(os.Getenv("IVRPIN_PROMPT_WORDS"))
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin prompts: IVRPIN_PROMPT_WORDS: %v\n", err)
		return nil, false
	}
	return c, true
}

func promptsList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin prompts list", flag.ContinueOnError)
	lang := fs.String("lang", "", "one language (default: every language)")
	if code, done := parseFlags(fs, args, "Prints each prompt's name and words.", stdout, stderr); done {
		return code
	}
	c, ok := catalogue(stderr)
	if !ok {
		return 1
	}
	langs := c.Languages()
	if *lang != "" {
		if !c.Has(*lang) {
			fmt.Fprintf(stderr, "ivr-pin prompts list: no words for language %q (there are %s)\n", *lang, strings.Join(langs, ", "))
			return 1
		}
		langs = []string{*lang}
	}
	for _, l := range langs {
		for _, id := range c.All() {
			if len(langs) > 1 {
				fmt.Fprintf(stdout, "%s\t", l)
			}
			fmt.Fprintf(stdout, "%s\t%s\n", id, c.Words(l, id))
		}
	}
	return 0
}

func promptsCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin prompts check", flag.ContinueOnError)
	lang := fs.String("lang", "", "languages to check, comma separated (default: IVRPIN_LANGUAGES when set, else every language)")
	if code, done := parseFlagsAndArgs(fs, args, " DIR", 1, "Checks an Asterisk sounds directory against the prompt catalogue.", stdout, stderr); done {
		return code
	}
	c, ok := catalogue(stderr)
	if !ok {
		return 1
	}
	langs := c.Languages()
	switch {
	case *lang != "":
		langs = strings.Split(*lang, ",")
	case os.Getenv("IVRPIN_LANGUAGES") != "":
		langs = strings.Split(os.Getenv("IVRPIN_LANGUAGES"), ",")
	}
	for i := range langs {
		langs[i] = strings.TrimSpace(langs[i])
	}
	dir := fs.Arg(0)
	problems, err := soundcheck.Check(dir, c, langs)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin prompts check: %v\n", err)
		return 1
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "ivr-pin prompts check: %d problems in %s (%s)\n", len(problems), dir, strings.Join(langs, ", "))
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d prompts in each of %s are present and usable\n", dir, len(c.All()), strings.Join(langs, ", "))
	return 0
}
