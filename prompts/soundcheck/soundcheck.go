// Package soundcheck checks an Asterisk sounds directory against the prompt
// catalogue before a bank's recordings go live: every prompt present in
// every language the line speaks, in a format Asterisk plays without
// surprises, not silent, not clipped, and about as long as its words. A
// missing prompt plays nothing to a caller (Asterisk logs a warning and the
// flow goes on in silence); a 16 kHz .wav plays at the wrong speed or not
// at all. Each problem names its file.
package soundcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/zaf/g711"

	"github.com/ivr-pin/ivr-pin/prompts"
)

// Formats are the file extensions checked, each a format Asterisk plays
// (format_wav, format_pcm, format_sln, format_g722), with its sample rate.
var Formats = []Format{
	{Ext: "wav", Rate: 8000, What: "WAV, PCM mono 16-bit 8 kHz"},
	{Ext: "ulaw", Rate: 8000, What: "raw G.711 mu-law 8 kHz"},
	{Ext: "alaw", Rate: 8000, What: "raw G.711 A-law 8 kHz"},
	{Ext: "sln16", Rate: 16000, What: "raw signed linear 16-bit 16 kHz"},
	{Ext: "g722", Rate: 16000, What: "G.722 (64 kbit/s)"},
}

// Format is one audio format Asterisk plays.
type Format struct {
	Ext  string
	Rate int
	What string
}

// Problem is one thing wrong with a prompt's audio.
type Problem struct {
	Path string // the file, or the prompt's path without an extension when none exists
	What string
}

func (p Problem) String() string { return p.Path + ": " + p.What }

// Limits of a usable recording.
const (
	// SilentPeak: a recording whose loudest sample is under -40 dBFS is
	// silence (or a level no caller hears on a phone line).
	SilentPeak = 0.01
	// ClipRun: this many samples in a row at full scale is clipping.
	ClipRun = 3
)

// Check checks dir/<lang>/ivr-pin/<prompt>.<ext> for every prompt of c in
// each of langs. Every file of a checked format is checked (a bank may ship
// .wav and .ulaw of each); a prompt with none is missing.
func Check(dir string, c *prompts.Catalogue, langs []string) ([]Problem, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	var out []Problem
	for _, lang := range langs {
		if !c.Has(lang) {
			return nil, fmt.Errorf("no prompt words for language %q (there are %s)", lang, strings.Join(c.Languages(), ", "))
		}
		for _, id := range c.All() {
			base := filepath.Join(dir, lang, "ivr-pin", string(id))
			found := false
			for _, f := range Formats {
				path := base + "." + f.Ext
				if _, err := os.Stat(path); err != nil {
					continue
				}
				found = true
				for _, what := range checkFile(path, f, c.Words(lang, id), id) {
					out = append(out, Problem{Path: path, What: what})
				}
			}
			if !found {
				exts := make([]string, len(Formats))
				for i, f := range Formats {
					exts[i] = "." + f.Ext
				}
				out = append(out, Problem{Path: base, What: "missing (no " + strings.Join(exts, ", ") + ")"})
			}
		}
	}
	return out, nil
}

// checkFile checks one file; each string is one problem.
func checkFile(path string, f Format, words string, id prompts.ID) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	var samples []int16
	var length time.Duration
	switch f.Ext {
	case "wav":
		samples, err = wavSamples(b)
		if err != nil {
			return []string{err.Error()}
		}
	case "ulaw":
		samples = decode(b, g711.DecodeUlawFrame)
	case "alaw":
		samples = decode(b, g711.DecodeAlawFrame)
	case "sln16":
		if len(b)%2 != 0 {
			return []string{"an odd number of bytes: not 16-bit samples"}
		}
		samples = make([]int16, len(b)/2)
		for i := range samples {
			samples[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case "g722":
		// Not decoded here: only its length is checked (8000 bytes a
		// second at 64 kbit/s).
		length = time.Duration(len(b)) * time.Second / 8000
	}
	var problems []string
	if samples != nil {
		length = time.Duration(len(samples)) * time.Second / time.Duration(f.Rate)
		peak, clips := levels(samples, fullScale(f.Ext))
		if peak < SilentPeak {
			problems = append(problems, fmt.Sprintf("silent (loudest sample %.1f dBFS)", 20*math.Log10(math.Max(peak, 1e-6))))
		}
		if clips > 0 {
			problems = append(problems, fmt.Sprintf("clipped (%d runs of %d or more samples at full scale)", clips, ClipRun))
		}
	}
	if lo, hi := Expected(words, id); length < lo || length > hi {
		problems = append(problems, fmt.Sprintf("lasts %s, want %s to %s for %q", length.Round(10*time.Millisecond),
			lo.Round(10*time.Millisecond), hi.Round(10*time.Millisecond), words))
	}
	return problems
}

// Expected is the range of lengths a recording of words can reasonably
// have: speech at a calm telephone pace (about 12 letters a second in
// alphabetic scripts, 4 characters a second in Chinese), from a third of
// that (a brisk voice, trimmed) to three times it plus two seconds of
// pauses. A fragment said inside a sentence (a number, "to") is short.
func Expected(words string, id prompts.ID) (lo, hi time.Duration) {
	var letters, han float64
	for _, r := range words {
		switch {
		case unicode.Is(unicode.Han, r):
			han++
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			letters++
		}
	}
	speech := time.Duration((letters/12 + han/4) * float64(time.Second))
	lo = speech / 3
	if lo < 150*time.Millisecond {
		lo = 150 * time.Millisecond
	}
	return lo, 3*speech + 2*time.Second
}

// wavSamples reads a WAV file's samples, refusing anything but what
// Asterisk's format_wav plays as .wav: PCM, mono, 16-bit, 8 kHz.
func wavSamples(b []byte) ([]int16, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errors.New("not a WAV file (no RIFF/WAVE header)")
	}
	var haveFmt bool
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:off+8]))
		body := b[off+8:]
		if size > len(body) {
			size = len(body)
		}
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, errors.New("a WAV fmt chunk too short")
			}
			format := binary.LittleEndian.Uint16(body[0:2])
			channels := binary.LittleEndian.Uint16(body[2:4])
			rate := binary.LittleEndian.Uint32(body[4:8])
			bits := binary.LittleEndian.Uint16(body[14:16])
			if format != 1 || channels != 1 || rate != 8000 || bits != 16 {
				return nil, fmt.Errorf("WAV format %d, %d channels, %d Hz, %d-bit: Asterisk's .wav is PCM mono 8000 Hz 16-bit "+
					"(convert: sox in.wav -r 8000 -c 1 -b 16 -e signed-integer out.wav; 16 kHz goes in a .sln16)", format, channels, rate, bits)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, errors.New("WAV data before its fmt chunk")
			}
			n := size / 2
			s := make([]int16, n)
			for i := 0; i < n; i++ {
				s[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return s, nil
		}
		off += 8 + size + size%2
	}
	return nil, errors.New("a WAV file with no data chunk")
}

// levels is the peak (0 to 1 of full scale) and the number of clipped runs.
func levels(s []int16, full int) (peak float64, clips int) {
	max, run := 0, 0
	for _, v := range s {
		a := int(v)
		if a < 0 {
			a = -a
		}
		if a > max {
			max = a
		}
		if a >= full {
			run++
			if run == ClipRun {
				clips++
			}
		} else {
			run = 0
		}
	}
	return float64(max) / float64(full), clips
}

// fullScale is the largest magnitude a format can carry after decoding.
func fullScale(ext string) int {
	switch ext {
	case "ulaw":
		return 32124
	case "alaw":
		return 32256
	}
	return 32767
}

func decode(b []byte, table func(byte) int16) []int16 {
	s := make([]int16, len(b))
	for i, c := range b {
		s[i] = table(c)
	}
	return s
}
