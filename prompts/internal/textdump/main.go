// Command textdump prints every prompt as "lang<TAB>id<TAB>words", one a
// line, for prompts/gen.sh: the shipped words, with the files of
// IVRPIN_PROMPT_WORDS laid over them when it is set.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/ivr-pin/ivr-pin/prompts"
)

func main() {
	c, err := prompts.Load(os.Getenv("IVRPIN_PROMPT_WORDS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "IVRPIN_PROMPT_WORDS:", err)
		os.Exit(1)
	}
	for _, lang := range c.Languages() {
		for _, id := range c.All() {
			// One line each: a tab or newline in the words would split it.
			w := strings.NewReplacer("\t", " ", "\n", " ").Replace(c.Words(lang, id))
			fmt.Printf("%s\t%s\t%s\n", lang, id, w)
		}
	}
}
