// Package softphone places one SIP call and presses keys on it, as a person
// at a desk phone would: it waits for a prompt to play and the line to go
// quiet, then sends a group of keys as RFC 4733 telephone events. It is
// `ivr-pin-lab dial`, the tool a tester uses on a real Asterisk, and what the
// real-Asterisk tests call.
//
// The call (INVITE, digest authentication, SDP, ACK, BYE) is diago's. The
// RTP stream is our own: diago v0.42.1's RFC 4733 writer gives every packet
// of an event a new timestamp (Asterisk then hears several presses) or none
// at all (it hears one key and drops the rest), so this package sends one
// stream of its own, one SSRC and sequence, 20 ms packets of silence, and
// each key as one event: one timestamp (its start), a growing duration, the
// marker bit on the first packet and three end packets.
package softphone

import (
	"github.com/zaf/g711"

	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
)

// Options describe one call.
type Options struct {
	// Target is sip:EXT@HOST[:PORT].
	Target string
	// From is the caller's user name (default "ivr-pin-dial"); Password
	// answers a digest challenge.
	From, Password string
	// Keys are the groups to press, each once the line has gone quiet after
	// a prompt. Live, when set, supplies keys typed as they are typed
	// instead (a terminal).
	Keys []string
	Live io.Reader
	// Timeout bounds the whole call (default 3 min).
	Timeout time.Duration
	// Quiet is how long the line must be silent after a prompt before a
	// group is pressed (default 900 ms).
	Quiet time.Duration
	// Tone and Gap are each key's length and the pause after it (defaults
	// 100 ms and 80 ms).
	Tone, Gap time.Duration
	// Record, when set, receives what was heard as a WAV file.
	Record io.WriteSeeker
	// Progress receives one line per group sent and one for the end. It
	// never carries a key.
	Progress io.Writer
}

// Result is how the call went.
type Result struct {
	Sent, Groups int           // groups pressed, of how many
	FarEndHungUp bool          // the far end ended the call
	Duration     time.Duration // from answer to the end
}

// OK is the exit condition of `ivr-pin-lab dial`: every group was sent and
// then the far end hung up.
func (r Result) OK() bool { return r.FarEndHungUp && r.Sent == r.Groups }

// ParseTarget reads sip:EXT@HOST[:PORT].
func ParseTarget(s string) (sip.Uri, error) {
	var u sip.Uri
	if !strings.HasPrefix(s, "sip:") {
		return u, errors.New("the target must be sip:EXTENSION@HOST[:PORT]")
	}
	if err := sip.ParseUri(s, &u); err != nil || u.User == "" || u.Host == "" {
		return u, errors.New("the target must be sip:EXTENSION@HOST[:PORT]")
	}
	if u.Port == 0 {
		u.Port = 5060
	}
	return u, nil
}

// CheckKeys refuses groups with anything but 0-9, * and #.
func CheckKeys(groups []string) error {
	for _, g := range groups {
		for _, c := range g {
			if !strings.ContainsRune("0123456789*#", c) {
				return errors.New("keys are 0-9, * and #, in groups separated by spaces")
			}
		}
	}
	return nil
}

// Dial places the call and presses the keys. The error is for a call that
// could not be placed; how a placed call went is in the Result.
func Dial(ctx context.Context, o Options) (Result, error) {
	res := Result{Groups: len(o.Keys)}
	target, err := ParseTarget(o.Target)
	if err != nil {
		return res, err
	}
	if err := CheckKeys(o.Keys); err != nil {
		return res, err
	}
	defaults(&o)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	localIP, err := localIPFor(target)
	if err != nil {
		return res, err
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(o.From), sipgo.WithUserAgentHostname(localIP))
	if err != nil {
		return res, err
	}
	defer ua.Close()
	// diago's media layer logs through its own default logger (an RTCP
	// report about the SSRC of the writer we do not use, every 5 s): a
	// tester's terminal shows our lines only.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	media.SetDefaultLogger(quiet)
	dg := diago.NewDiago(ua, diago.WithLogger(quiet),
		diago.WithTransport(diago.Transport{Transport: "udp", BindHost: localIP, BindPort: 0}))
	// The transport must listen: the far end's BYE arrives there.
	if err := dg.ServeBackground(ctx, func(d *diago.DialogServerSession) {}); err != nil {
		return res, fmt.Errorf("SIP transport: %w", err)
	}
	d, med, err := dg.Invite(ctx, target, diago.InviteOptions{Username: o.From, Password: o.Password})
	// sipgo v1.7.3 reports the listener ready before it is in its
	// connection pool: an INVITE sent in that window binds the same port
	// again and fails with EADDRINUSE before anything is sent (seen with
	// six calls dialled at once on a busy machine). Nothing reached the far
	// end, so trying again is safe; a few tries, 50 ms apart.
	for try := 0; try < 5 && errors.Is(err, syscall.EADDRINUSE) && ctx.Err() == nil; try++ {
		time.Sleep(50 * time.Millisecond)
		d, med, err = dg.Invite(ctx, target, diago.InviteOptions{Username: o.From, Password: o.Password})
	}
	if err != nil {
		return res, fmt.Errorf("call not answered: %w", err)
	}
	answered := time.Now()
	defer d.Close()

	ms := med.MediaSession()
	if ms == nil {
		_ = d.Hangup(context.Background())
		return res, errors.New("no media session")
	}
	st, err := newStream(ms, o)
	if err != nil {
		_ = d.Hangup(context.Background())
		return res, err
	}
	callCtx, stopCall := context.WithCancel(ctx)
	defer stopCall()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); st.send(callCtx) }()
	go func() { defer wg.Done(); st.listen(callCtx) }()

	ended := d.Context().Done()
	if o.Live != nil {
		go st.typeLive(callCtx, o.Live)
	} else {
		res.Sent = st.script(callCtx, ended, o.Keys)
	}
	select {
	case <-ended:
		res.FarEndHungUp = ctx.Err() == nil
	case <-ctx.Done():
	}
	res.Duration = time.Since(answered)
	if !res.FarEndHungUp {
		hctx, hcancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = d.Hangup(hctx)
		hcancel()
	}
	stopCall()
	_ = ms.Close()
	wg.Wait()
	if o.Record != nil {
		if err := st.writeWAV(o.Record); err != nil {
			return res, fmt.Errorf("recording: %w", err)
		}
	}
	who := "the far end hung up"
	if !res.FarEndHungUp {
		who = "we hung up (timeout)"
	}
	sent := fmt.Sprintf("%d of %d groups sent", res.Sent, res.Groups)
	if o.Live != nil {
		sent = "keys typed live"
	}
	fmt.Fprintf(o.Progress, "call ended: %s after %s; %s\n", who, res.Duration.Round(100*time.Millisecond), sent)
	return res, nil
}

func defaults(o *Options) {
	if o.From == "" {
		o.From = "ivr-pin-dial"
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.Quiet <= 0 {
		o.Quiet = 900 * time.Millisecond
	}
	if o.Tone <= 0 {
		o.Tone = 100 * time.Millisecond
	}
	if o.Gap <= 0 {
		o.Gap = 80 * time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// localIPFor is the address this machine reaches target from.
func localIPFor(target sip.Uri) (string, error) {
	c, err := net.Dial("udp", net.JoinHostPort(target.Host, strconv.Itoa(target.Port)))
	if err != nil {
		return "", fmt.Errorf("no route to %s: %w", target.Host, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// stream is the call's RTP: our packets out, the far end's in.
type stream struct {
	ms      *media.MediaSession
	o       Options
	audioPT uint8
	dtmfPT  uint8
	silence byte
	decode  func(byte) int16

	keys chan byte

	mu        sync.Mutex
	lastLoud  time.Time // when speech was last heard
	heard     bool      // speech heard since the last group was sent
	recording []int16
	changed   chan struct{}
}

func newStream(ms *media.MediaSession, o Options) (*stream, error) {
	s := &stream{ms: ms, o: o, keys: make(chan byte, 64), changed: make(chan struct{})}
	var haveAudio, haveDTMF bool
	for _, c := range ms.CommonCodecs() {
		switch strings.ToLower(c.Name) {
		case "pcmu":
			if !haveAudio {
				s.audioPT, s.silence, s.decode, haveAudio = c.PayloadType, 0xFF, g711.DecodeUlawFrame, true
			}
		case "pcma":
			if !haveAudio {
				s.audioPT, s.silence, s.decode, haveAudio = c.PayloadType, 0xD5, g711.DecodeAlawFrame, true
			}
		case "telephone-event":
			s.dtmfPT, haveDTMF = c.PayloadType, true
		}
	}
	if !haveAudio {
		return nil, errors.New("the answer offers neither PCMU nor PCMA")
	}
	if !haveDTMF {
		return nil, errors.New("the answer offers no telephone-event: keys cannot be sent")
	}
	return s, nil
}

// send writes a packet every 20 ms: silence, or a key's telephone event.
func (s *stream) send(ctx context.Context) {
	// Random starting points, as RFC 3550 asks.
	var b [10]byte
	_, _ = rand.Read(b[:])
	ssrc := binary.BigEndian.Uint32(b[0:4])
	seq := binary.BigEndian.Uint16(b[4:6])
	ts := binary.BigEndian.Uint32(b[6:10])
	silence := make([]byte, 160)
	for i := range silence {
		silence[i] = s.silence
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	write := func(pt uint8, marker bool, stamp uint32, payload []byte) {
		seq++
		_ = s.ms.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker,
			SequenceNumber: seq, Timestamp: stamp, SSRC: ssrc}, Payload: payload})
	}
	toneTicks := int(s.o.Tone / (20 * time.Millisecond))
	gapTicks := int(s.o.Gap / (20 * time.Millisecond))
	for {
		select {
		case <-ctx.Done():
			return
		case key := <-s.keys:
			// One event: its start timestamp on every packet, a growing
			// duration, the marker on the first, three end packets.
			start := ts
			for i := 1; i <= toneTicks; i++ {
				if !s.wait(ctx, tick) {
					return
				}
				write(s.dtmfPT, i == 1, start, event(key, false, uint16(160*i)))
				ts += 160
			}
			for range 3 {
				write(s.dtmfPT, false, start, event(key, true, uint16(160*toneTicks)))
			}
			for range gapTicks {
				if !s.wait(ctx, tick) {
					return
				}
				write(s.audioPT, false, ts, silence)
				ts += 160
			}
		case <-tick.C:
			write(s.audioPT, false, ts, silence)
			ts += 160
		}
	}
}

func (s *stream) wait(ctx context.Context, tick *time.Ticker) bool {
	select {
	case <-ctx.Done():
		return false
	case <-tick.C:
		return true
	}
}

// event is an RFC 4733 telephone-event payload.
func event(key byte, end bool, duration uint16) []byte {
	code := byte(0)
	switch {
	case key >= '0' && key <= '9':
		code = key - '0'
	case key == '*':
		code = 10
	case key == '#':
		code = 11
	}
	p := []byte{code, 10, 0, 0} // volume -10 dBm0
	if end {
		p[1] |= 0x80
	}
	binary.BigEndian.PutUint16(p[2:], duration)
	return p
}

// loudRMS is the level above which a packet is speech: a prompt at -3 dBFS
// is well above it, line noise and Asterisk's comfort silence below.
const loudRMS = 500

// listen reads the far end's audio: it notes speech for the quiet detector
// and keeps it for the recording.
func (s *stream) listen(ctx context.Context) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for ctx.Err() == nil {
		if _, err := s.ms.ReadRTP(buf, &pkt); err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			continue
		}
		if pkt.PayloadType != s.audioPT {
			continue
		}
		var sum float64
		samples := make([]int16, len(pkt.Payload))
		for i, c := range pkt.Payload {
			v := s.decode(c)
			samples[i] = v
			sum += float64(v) * float64(v)
		}
		loud := len(samples) > 0 && math.Sqrt(sum/float64(len(samples))) > loudRMS
		s.mu.Lock()
		if s.o.Record != nil {
			s.recording = append(s.recording, samples...)
		}
		if loud {
			s.lastLoud, s.heard = time.Now(), true
			close(s.changed)
			s.changed = make(chan struct{})
		}
		s.mu.Unlock()
	}
}

// script presses each group once a prompt has played and the line has then
// been quiet for o.Quiet. It returns how many groups were sent.
func (s *stream) script(ctx context.Context, ended <-chan struct{}, groups []string) int {
	for i, g := range groups {
		if !s.waitQuiet(ctx, ended) {
			return i
		}
		for j := 0; j < len(g); j++ {
			select {
			case s.keys <- g[j]:
			case <-ctx.Done():
				return i
			}
		}
		// Let the group go out before listening for the next prompt.
		keyTime := time.Duration(len(g)) * (s.o.Tone + s.o.Gap)
		select {
		case <-time.After(keyTime + 40*time.Millisecond):
		case <-ctx.Done():
			return i
		}
		s.mu.Lock()
		s.heard = false
		s.mu.Unlock()
		fmt.Fprintf(s.o.Progress, "sent group %d of %d (%d keys)\n", i+1, len(groups), len(g))
	}
	return len(groups)
}

// waitQuiet returns true once speech was heard and then none for o.Quiet.
func (s *stream) waitQuiet(ctx context.Context, ended <-chan struct{}) bool {
	for {
		s.mu.Lock()
		heard, last, changed := s.heard, s.lastLoud, s.changed
		s.mu.Unlock()
		var wait <-chan time.Time
		if heard {
			left := s.o.Quiet - time.Since(last)
			if left <= 0 {
				return true
			}
			wait = time.After(left)
		}
		select {
		case <-changed:
		case <-wait:
		case <-ended:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// typeLive sends keys as they are typed (a terminal in raw mode).
func (s *stream) typeLive(ctx context.Context, r io.Reader) {
	b := make([]byte, 1)
	for ctx.Err() == nil {
		if n, err := r.Read(b); err != nil || n == 0 {
			return
		}
		if strings.IndexByte("0123456789*#", b[0]) >= 0 {
			select {
			case s.keys <- b[0]:
			case <-ctx.Done():
				return
			}
		}
	}
}

// writeWAV writes what was heard: 8 kHz mono 16-bit PCM.
func (s *stream) writeWAV(w io.WriteSeeker) error {
	s.mu.Lock()
	samples := s.recording
	s.mu.Unlock()
	data := len(samples) * 2
	hdr := make([]byte, 44)
	copy(hdr[0:], "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+data))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[20:], 1)
	binary.LittleEndian.PutUint16(hdr[22:], 1)
	binary.LittleEndian.PutUint32(hdr[24:], 8000)
	binary.LittleEndian.PutUint32(hdr[28:], 16000)
	binary.LittleEndian.PutUint16(hdr[32:], 2)
	binary.LittleEndian.PutUint16(hdr[34:], 16)
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(data))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	pcm := make([]byte, data)
	for i, v := range samples {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	_, err := w.Write(pcm)
	return err
}
