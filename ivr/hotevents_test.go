package ivr

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/CyCoreSystems/ari/v5"
)

// corpusFrames are the event frames of FuzzEventFrames' seed corpus:
// Asterisk 22.10.1's own events and the malformed ones kept from fuzzing.
func corpusFrames(t testing.TB) [][]byte {
	files, _ := filepath.Glob("testdata/fuzz/FuzzEventFrames/*")
	var frames [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			q, ok := strings.CutPrefix(line, "[]byte(")
			if !ok {
				continue
			}
			s, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			frames = append(frames, bytes.Split([]byte(s), []byte("\n"))...)
		}
	}
	if len(frames) < 10 {
		t.Fatalf("only %d frames in the corpus", len(frames))
	}
	return frames
}

// read is what the call server reads of an event (channelOf and
// Call.deliver): it must be the same from the one-pass decoder as from
// ari.DecodeEvent.
func read(ev ari.Event) []string {
	out := []string{reflect.TypeOf(ev).String(), channelOf(ev), ev.GetApplication(), ev.GetType()}
	switch e := ev.(type) {
	case *ari.ChannelDtmfReceived:
		out = append(out, e.Digit)
	case *ari.PlaybackStarted:
		out = append(out, e.Playback.ID, e.Playback.State)
	case *ari.PlaybackFinished:
		out = append(out, e.Playback.ID, e.Playback.State)
	}
	return out
}

func agree(t *testing.T, frame []byte) (hot bool) {
	h := decodeHot(frame)
	if h == nil {
		return false
	}
	full, err := ari.DecodeEvent(frame)
	if err != nil || full == nil {
		// Looser than ari/v5 only in fields nobody reads (a
		// duration_ms that is not a number, say): still an event.
		return true
	}
	if a, b := read(h), read(full); !reflect.DeepEqual(a, b) {
		t.Fatalf("one-pass decoder read %q, ari.DecodeEvent %q, of %s", a, b, frame)
	}
	return true
}

func TestHotEventsReadAsAriV5ReadsThem(t *testing.T) {
	hot := map[string]bool{}
	for _, frame := range corpusFrames(t) {
		if agree(t, frame) {
			hot[decodeHot(frame).GetType()] = true
		}
	}
	for _, want := range []string{"ChannelDtmfReceived", "PlaybackFinished", "ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"} {
		if !hot[want] {
			t.Errorf("no %s of Asterisk's took the one-pass decoder", want)
		}
	}
	// StasisStart is always decoded whole: the line reads its caller and
	// arguments.
	if decodeHot([]byte(`{"type":"StasisStart","channel":{"id":"1.1","caller":{"number":"1555"}}}`)) != nil {
		t.Fatal("StasisStart took the one-pass decoder")
	}
}

func FuzzHotEventsReadAsAriV5ReadsThem(f *testing.F) {
	for _, frame := range corpusFrames(f) {
		f.Add(frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) { agree(t, frame) })
}

// BenchmarkDecode is one key press as Asterisk 22 sends it, through the
// decoder serve uses and through ari.DecodeEvent alone.
func BenchmarkDecode(b *testing.B) {
	var dtmf []byte
	for _, frame := range corpusFrames(b) {
		if bytes.Contains(frame, []byte(`"ChannelDtmfReceived"`)) {
			dtmf = frame
			break
		}
	}
	b.Run("serve", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ev, _ := decode(dtmf); ev == nil {
				b.Fatal("not decoded")
			}
		}
	})
	b.Run("ari-v5-DecodeEvent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ev, _ := ari.DecodeEvent(dtmf); ev == nil {
				b.Fatal("not decoded")
			}
		}
	})
}
