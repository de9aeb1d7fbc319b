package prompts

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/BurntSushi/toml"
)

// The shipped words, one TOML file per language (words/<lang>.toml). They
// are data, not code: a bank changes a word, or adds a language, with a file
// of its own in a directory named by IVRPIN_PROMPT_WORDS.
//
//go:embed words/*.toml
var shipped embed.FS

// Catalogue is every prompt's words in each language it has.
type Catalogue struct {
	words map[string]map[ID]string
	// from says where each language's words were read (for errors).
	from map[string]string
}

// Embedded is the shipped catalogue.
func Embedded() *Catalogue { return embedded }

var embedded = mustLoadShipped()

func mustLoadShipped() *Catalogue {
	c := &Catalogue{words: map[string]map[ID]string{}, from: map[string]string{}}
	if err := c.readDir(shipped, "words", nil); err != nil {
		// The files are compiled in and TestShippedWords reads them: this
		// cannot fail in a built binary.
		panic(err)
	}
	return c
}

// Load is the shipped catalogue with the files of dir laid over it: a file
// <lang>.toml replaces that language's words prompt by prompt (a file may
// name only the prompts it changes) or adds a language. A name that is no
// prompt is refused, naming the file: a misspelt name would otherwise leave
// the shipped words in place unnoticed.
func Load(dir string) (*Catalogue, error) {
	c := &Catalogue{words: map[string]map[ID]string{}, from: map[string]string{}}
	for lang, w := range embedded.words {
		c.words[lang] = copyWords(w)
		c.from[lang] = embedded.from[lang]
	}
	if dir == "" {
		return c, nil
	}
	if err := c.readDir(os.DirFS(dir), ".", embedded.known()); err != nil {
		return nil, err
	}
	return c, nil
}

func copyWords(m map[ID]string) map[ID]string {
	out := make(map[ID]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// known is every prompt name (English is the reference language).
func (c *Catalogue) known() map[ID]bool {
	k := map[ID]bool{}
	for id := range c.words["en"] {
		k[id] = true
	}
	return k
}

func (c *Catalogue) readDir(fsys fs.FS, dir string, known map[ID]bool) error {
	files, err := fs.Glob(fsys, filepath.Join(dir, "*.toml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("%s: no <lang>.toml files", dir)
	}
	for _, f := range files {
		lang := strings.TrimSuffix(filepath.Base(f), ".toml")
		if !validLang(lang) {
			return fmt.Errorf("%s: %q is not a language code (two or three letters, as Asterisk's sounds directories)", f, lang)
		}
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return err
		}
		var raw map[string]string
		md, err := toml.Decode(string(b), &raw)
		if err != nil {
			return fmt.Errorf("%s: %v", f, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return fmt.Errorf("%s: %s is not a prompt's words (want name = \"words\")", f, und[0])
		}
		w := c.words[lang]
		if w == nil {
			w = map[ID]string{}
			c.words[lang] = w
		}
		for name, text := range raw {
			id := ID(name)
			if known != nil && !known[id] {
				return fmt.Errorf("%s: %q is no prompt of the line (`ivr-pin prompts list` shows them)", f, name)
			}
			if strings.HasPrefix(name, "number-") {
				return fmt.Errorf("%s: %q: the numbers' words are their numerals and cannot be set", f, name)
			}
			w[id] = strings.TrimSpace(text)
		}
		c.from[lang] = f
		// The numbers' words are the numeral: a speech engine reads it in
		// the language's own words, and the console shows it as is.
		for n := 0; n <= MaxNumber; n++ {
			w[Number(n)] = strconv.Itoa(n)
		}
	}
	return nil
}

func validLang(s string) bool {
	if len(s) < 2 || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// Languages lists the catalogue's languages, English first, then sorted.
func (c *Catalogue) Languages() []string {
	out := make([]string, 0, len(c.words))
	for l := range c.words {
		out = append(out, l)
	}
	sort.Slice(out, func(a, b int) bool {
		if (out[a] == "en") != (out[b] == "en") {
			return out[a] == "en"
		}
		return out[a] < out[b]
	})
	return out
}

// Has reports whether the catalogue has words for lang.
func (c *Catalogue) Has(lang string) bool { _, ok := c.words[lang]; return ok }

// Words is the prompt's words in lang ("" when it has none).
func (c *Catalogue) Words(lang string, id ID) string { return c.words[lang][id] }

// All lists every prompt ID, sorted.
func (c *Catalogue) All() []ID {
	ids := make([]ID, 0, len(c.words["en"]))
	for id := range c.words["en"] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Check reports any prompt without words in any of langs.
func (c *Catalogue) Check(langs []string) error {
	var missing []string
	for _, l := range langs {
		t, ok := c.words[l]
		if !ok {
			return fmt.Errorf("no prompts for language %q (there are %s)", l, strings.Join(c.Languages(), ", "))
		}
		for _, id := range c.All() {
			if strings.TrimSpace(t[id]) == "" {
				missing = append(missing, l+"/"+string(id))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("prompts without words: %s", strings.Join(missing, ", "))
	}
	return nil
}

// current is the catalogue the process uses (Use sets it at start-up).
var current atomic.Pointer[Catalogue]

func init() { current.Store(embedded) }

// Use makes c the process's catalogue: serve and the console call it once,
// at start-up, with Load(IVRPIN_PROMPT_WORDS).
func Use(c *Catalogue) {
	if c == nil {
		c = embedded
	}
	current.Store(c)
}

// Current is the process's catalogue.
func Current() *Catalogue { return current.Load() }

// All lists every prompt ID, sorted.
func All() []ID { return Current().All() }

// Check reports any prompt without words in any of langs.
func Check(langs []string) error { return Current().Check(langs) }

// Languages lists the languages the process's catalogue has words for.
func Languages() []string { return Current().Languages() }
