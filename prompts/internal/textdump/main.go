// Command textdump prints every prompt as "lang<TAB>id<TAB>text", one a line,
// for prompts/gen.sh.
package main

import (
	"fmt"

	"github.com/ivr-pin/ivr-pin/prompts"
)

func main() {
	for _, lang := range prompts.Languages {
		for _, id := range prompts.All() {
			fmt.Printf("%s\t%s\t%s\n", lang, id, prompts.Text[lang][id])
		}
	}
}
