package soundcheck

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zaf/g711"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/prompts"
)

const shipped = "../sounds"

func TestTheShippedSoundsPass(t *testing.T) {
	c := prompts.Embedded()
	problems, err := Check(shipped, c, c.Languages())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// copyLang copies the shipped English prompts into a sounds directory of
// the test's own.
func copyLang(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(shipped, "en", "ivr-pin")
	dst := filepath.Join(dir, "en", "ivr-pin")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// wav writes a PCM WAV file.
func wav(t *testing.T, path string, rate int, samples []int16) {
	t.Helper()
	data := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(s))
	}
	h := make([]byte, 44)
	copy(h, "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+len(data)))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], 1)
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(2*rate))
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(len(data)))
	if err := os.WriteFile(path, append(h, data...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tone(n int, amp float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		// Clamped at full scale, as an overdriven recorder does.
		s[i] = int16(math.Max(-32767, math.Min(32767, amp*32767*math.Sin(2*math.Pi*440*float64(i)/8000))))
	}
	return s
}

// Each broken prompt is named by its file, with what is wrong.
func TestABrokenPromptIsNamed(t *testing.T) {
	en := []string{"en"}
	cases := []struct {
		name  string
		spoil func(t *testing.T, p string) // p: the prompt's path without extension
		file  string
		want  string
	}{
		{"missing", func(t *testing.T, p string) { os.Remove(p + ".wav"); os.Remove(p + ".ulaw") }, "", "missing"},
		{"silent", func(t *testing.T, p string) { os.Remove(p + ".ulaw"); wav(t, p+".wav", 8000, make([]int16, 16000)) }, ".wav", "silent"},
		{"16 kHz", func(t *testing.T, p string) { os.Remove(p + ".ulaw"); wav(t, p+".wav", 16000, tone(32000, 0.5)) }, ".wav", "16000 Hz"},
		{"clipped", func(t *testing.T, p string) { os.Remove(p + ".ulaw"); wav(t, p+".wav", 8000, tone(16000, 1.6)) }, ".wav", "clipped"},
		{"far too long", func(t *testing.T, p string) { os.Remove(p + ".ulaw"); wav(t, p+".wav", 8000, tone(8000*30, 0.5)) }, ".wav", "lasts 30s"},
		{"not audio", func(t *testing.T, p string) { os.WriteFile(p+".wav", []byte("hello"), 0o644) }, ".wav", "not a WAV file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyLang(t)
			p := filepath.Join(dir, "en", "ivr-pin", "welcome")
			c.spoil(t, p)
			problems, err := Check(dir, prompts.Embedded(), en)
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != 1 || problems[0].Path != p+c.file || !strings.Contains(problems[0].What, c.want) {
				t.Fatalf("%v, want one problem of %s: %q", problems, p+c.file, c.want)
			}
		})
	}
}

// The G.711 decoders agree with sox's.
func TestG711DecodingAgreesWithSox(t *testing.T) {
	testkit.Program(t, "sox", "sox")
	dir := t.TempDir()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, c := range []struct {
		ext, soxType string
		dec          func(byte) int16
	}{{"ulaw", "ul", g711.DecodeUlawFrame}, {"alaw", "al", g711.DecodeAlawFrame}} {
		in := filepath.Join(dir, "in."+c.ext)
		out := filepath.Join(dir, c.ext+".raw")
		if err := os.WriteFile(in, all, 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command("sox", "-t", c.soxType, "-r", "8000", "-c", "1", in, "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", out).CombinedOutput(); err != nil {
			t.Fatalf("sox: %v %s", err, b)
		}
		raw, _ := os.ReadFile(out)
		for i := 0; i < 256; i++ {
			want := int16(binary.LittleEndian.Uint16(raw[2*i:]))
			if got := c.dec(byte(i)); got != want {
				t.Fatalf("%s 0x%02x: %d, sox %d", c.ext, i, got, want)
			}
		}
	}
}
