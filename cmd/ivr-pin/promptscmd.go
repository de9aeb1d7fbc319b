package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelseyhightower/envconfig"

	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/internal/config"
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
against the catalogue: every prompt present for each of the line's
languages (--lang, else IVRPIN_LANGUAGES, whose default is en),
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
	lang := fs.String("lang", "", "languages to check, comma separated (default: the line's, IVRPIN_LANGUAGES, whose own default is en)")
	if code, done := parseFlagsAndArgs(fs, args, " DIR", 1, "Checks an Asterisk sounds directory (the sounds root, holding <lang>/ivr-pin/) against the\nprompt catalogue, in the line's languages.", stdout, stderr); done {
		return code
	}
	c, ok := catalogue(stderr)
	if !ok {
		return 1
	}
	langs := strings.Split(*lang, ",")
	if *lang == "" {
		// The languages the line plays, as serve reads them.
		var f config.Flow
		if err := envconfig.Process(config.Prefix, &f); err != nil {
			fmt.Fprintf(stderr, "ivr-pin prompts check: IVRPIN_LANGUAGES: %v\n", err)
			return 1
		}
		langs = f.Languages
	}
	for i := range langs {
		langs[i] = strings.TrimSpace(langs[i])
	}
	if _, err := os.Stat(filepath.Join(fs.Arg(0), "ivr-pin")); err == nil {
		fmt.Fprintf(stderr, "ivr-pin prompts check: %s holds ivr-pin/ itself: it is a language's directory; give the sounds root that holds <lang>/ivr-pin/ (%s)\n",
			fs.Arg(0), filepath.Dir(filepath.Clean(fs.Arg(0))))
		return 2
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
