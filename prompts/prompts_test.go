package prompts

import (
	"encoding/binary"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEveryPromptHasTextInEveryLanguage(t *testing.T) {
	if err := Check(Languages()); err != nil {
		t.Fatal(err)
	}
	if err := Check([]string{"fr"}); err == nil {
		t.Fatal("a language without prompts passed the check")
	}
}

// The flow names prompts by these constants; every one of them must be in
// the catalogue (a typo would play silence to a caller).
func TestEveryPromptTheFlowUsesIsCatalogued(t *testing.T) {
	src, err := os.ReadFile("../flows/flow.go")
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := os.ReadFile("../flows/steps.go")
	used := regexp.MustCompile(`prompts\.([A-Z][A-Za-z0-9]+)`).FindAllStringSubmatch(string(src)+string(steps), -1)
	known := map[string]bool{"P": true, "PIn": true, "N": true, "Digits": true, "Item": true, "ID": true}
	ids := map[ID]bool{}
	for _, id := range All() {
		ids[id] = true
	}
	constants := idConstants(t)
	if len(used) < 20 {
		t.Fatalf("found only %d prompt uses in the flow", len(used))
	}
	for _, m := range used {
		if known[m[1]] {
			continue
		}
		id, ok := constants[m[1]]
		if !ok || !ids[id] {
			t.Errorf("the flow uses prompts.%s, which is not in the catalogue", m[1])
		}
	}
}

// wavInfo reads a canonical RIFF/WAVE header.
func wavInfo(t *testing.T, path string) (format, channels uint16, rate uint32, bits uint16, data int) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("%s is not a WAVE file", path)
	}
	// Walk the chunks: sox may add a LIST chunk.
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:off+8]))
		body := b[off+8:]
		switch id {
		case "fmt ":
			format = binary.LittleEndian.Uint16(body[0:2])
			channels = binary.LittleEndian.Uint16(body[2:4])
			rate = binary.LittleEndian.Uint32(body[4:8])
			bits = binary.LittleEndian.Uint16(body[14:16])
		case "data":
			data = size
		}
		off += 8 + size + size%2
	}
	return
}

func TestEveryAudioFileHasAsterisksFormatAndAPlausibleLength(t *testing.T) {
	for _, lang := range Languages() {
		for _, id := range All() {
			base := filepath.Join("sounds", lang, "ivr-pin", string(id))
			format, channels, rate, bits, data := wavInfo(t, base+".wav")
			if format != 1 || channels != 1 || rate != 8000 || bits != 16 {
				t.Errorf("%s.wav: format %d, %d channels, %d Hz, %d bits; want PCM mono 8000 Hz 16-bit", base, format, channels, rate, bits)
			}
			d := time.Duration(data/2) * time.Second / 8000
			shortest := 400 * time.Millisecond
			if strings.HasPrefix(string(id), "number-") || id == PINRuleFrom || id == PINRuleTo {
				shortest = 250 * time.Millisecond // a fragment said inside a sentence ("八")
			}
			if d < shortest || d > 20*time.Second {
				t.Errorf("%s.wav lasts %s", base, d)
			}
			st, err := os.Stat(base + ".ulaw")
			if err != nil {
				t.Fatal(err)
			}
			// mu-law is one byte a sample: the same length as the .wav.
			if ud := time.Duration(st.Size()) * time.Second / 8000; ud < d-50*time.Millisecond || ud > d+50*time.Millisecond {
				t.Errorf("%s.ulaw lasts %s, the .wav %s", base, ud, d)
			}
		}
	}
}

func TestMediaURIs(t *testing.T) {
	cases := []struct {
		item Item
		uri  string
	}{
		{P(Welcome), "sound:ivr-pin/welcome"},
		{PIn(LanguageChoice, "ar"), "sound:ar/ivr-pin/lang-choice"},
		{N(7, ""), "sound:ivr-pin/number-7"},
		{N(12, "zh"), "sound:zh/ivr-pin/number-12"},
	}
	for _, c := range cases {
		if got := c.item.MediaURI(); got != c.uri {
			t.Errorf("%+v: %s, want %s", c.item, got, c.uri)
		}
		back, ok := FromMediaURI(c.uri)
		if !ok || back != c.item {
			t.Errorf("FromMediaURI(%s) = %+v", c.uri, back)
		}
	}
	if P(Goodbye).TextIn("zh") != Embedded().Words("zh", Goodbye) || PIn(LanguageChoice, "ar").TextIn("en") != Embedded().Words("ar", LanguageChoice) {
		t.Error("TextIn picks the wrong language")
	}
}

// idConstants reads every ID constant declared in prompts.go, by name.
func idConstants(t *testing.T) map[string]ID {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "prompts.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ID{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						out[name.Name] = ID(v)
					}
				}
			}
		}
	}
	if len(out) < 40 {
		t.Fatalf("read only %d prompt constants from prompts.go", len(out))
	}
	return out
}

func TestDigitsAreReadInTheCallersLanguage(t *testing.T) {
	got := Digits("2a0#", "ar")
	want := []Item{{Prompt: "number-2", Lang: "ar"}, {Prompt: "number-0", Lang: "ar"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Digits = %+v", got)
	}
	for _, lang := range Languages() {
		for n := 0; n <= MaxNumber; n++ {
			if Embedded().Words(lang, Number(n)) == "" {
				t.Errorf("%s has no number %d", lang, n)
			}
		}
	}
}

func TestWordsFromAnOverrideDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("en.toml", "welcome = \"Welcome to Example Bank.\"\n")
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Words("en", Welcome) != "Welcome to Example Bank." || c.Words("en", Goodbye) != Embedded().Words("en", Goodbye) {
		t.Fatalf("override: %q / %q", c.Words("en", Welcome), c.Words("en", Goodbye))
	}
	if Embedded().Words("en", Welcome) == "Welcome to Example Bank." {
		t.Fatal("the override changed the shipped catalogue")
	}
	// A new language is accepted only once complete.
	write("fr.toml", "welcome = \"Bienvenue.\"\n")
	if c, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	if err := c.Check([]string{"fr"}); err == nil || !strings.Contains(err.Error(), "fr/goodbye") {
		t.Fatalf("an incomplete language passed: %v", err)
	}
	for _, bad := range []struct{ file, body, want string }{
		{"en.toml", "welcom = \"Hi\"\n", `"welcom" is no prompt`},
		{"en.toml", "number-1 = \"one\"\n", "numerals"},
		{"en.toml", "welcome = 3\n", "en.toml"},
		{"EN.toml", "welcome = \"Hi\"\n", "not a language code"},
	} {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, bad.file), []byte(bad.body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(d); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s %q: %v, want %q", bad.file, bad.body, err, bad.want)
		}
	}
}

// Every language file names exactly the English file's prompts: a prompt
// missing in one language would play nothing to its callers.
func TestShippedWordsNameTheSamePrompts(t *testing.T) {
	en := Embedded().All()
	for _, lang := range Embedded().Languages() {
		for _, id := range en {
			if Embedded().Words(lang, id) == "" {
				t.Errorf("%s has no words for %s", lang, id)
			}
		}
	}
	if len(Embedded().Languages()) != 3 {
		t.Fatalf("languages %v", Embedded().Languages())
	}
}
