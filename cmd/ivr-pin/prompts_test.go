package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
)

// `ivr-pin prompts check` passes on the shipped sounds and fails, naming
// the file, on a missing, a silent or a 16 kHz prompt.
func TestPromptsCheck(t *testing.T) {
	t.Setenv("IVRPIN_LANGUAGES", "en,ar,zh")
	var out, errb bytes.Buffer
	if code := run([]string{"prompts", "check", "../../prompts/sounds"}, nil, &out, &errb); code != 0 {
		t.Fatalf("the shipped sounds: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "en, ar, zh") {
		t.Fatalf("not every language checked: %s", out.String())
	}
	// The line's languages by default: an English-only line is asked for
	// English prompts only.
	os.Unsetenv("IVRPIN_LANGUAGES")
	out.Reset()
	if code := run([]string{"prompts", "check", "../../prompts/sounds"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "in each of en are present") {
		t.Fatalf("an English-only line: exit %d\n%s%s", code, out.String(), errb.String())
	}
	// A language's directory given for the sounds root is said so, once.
	out.Reset()
	errb.Reset()
	if code := run([]string{"prompts", "check", "../../prompts/sounds/en"}, nil, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "it is a language's directory") || out.Len() != 0 {
		t.Fatalf("a language's directory: exit %d\n%s%s", code, out.String(), errb.String())
	}
	testkit.Program(t, "sox", "sox")
	dir := t.TempDir()
	ship := filepath.Join("..", "..", "prompts", "sounds", "en", "ivr-pin")
	en := filepath.Join(dir, "en", "ivr-pin")
	if err := os.MkdirAll(en, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(ship)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".wav") {
			b, _ := os.ReadFile(filepath.Join(ship, e.Name()))
			if err := os.WriteFile(filepath.Join(en, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.Remove(filepath.Join(en, "goodbye.wav"))
	sox := func(args ...string) {
		if b, err := exec.Command("sox", args...).CombinedOutput(); err != nil {
			t.Fatalf("sox %v: %v %s", args, err, b)
		}
	}
	sox("-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", filepath.Join(en, "welcome.wav"), "trim", "0", "2")
	sox(filepath.Join(ship, "try-again.wav"), "-r", "16000", filepath.Join(en, "try-again.wav"))
	out.Reset()
	errb.Reset()
	code := run([]string{"prompts", "check", "--lang", "en", dir}, nil, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	for _, want := range []string{
		filepath.Join(en, "goodbye") + ": missing",
		filepath.Join(en, "welcome.wav") + ": silent",
		filepath.Join(en, "try-again.wav") + ": WAV format 1, 1 channels, 16000 Hz",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
	if n := strings.Count(strings.TrimSpace(out.String()), "\n") + 1; n != 3 {
		t.Errorf("%d problems, want 3:\n%s", n, out.String())
	}
}
