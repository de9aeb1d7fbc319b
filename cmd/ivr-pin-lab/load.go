package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/cli"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

// load measures one `ivr-pin serve` process under many concurrent calls. The
// ARI test server, the simulated callers and the host simulators run in this
// process; the app under test, the ivr-pin binary beside this one (or
// --serve), runs as a child process, as in production.
//
//	ivr-pin-lab load --calls 2000            # every caller finishes at once
//	ivr-pin-lab load --calls 2000 --rate 50  # 50 callers finish a second, the rest stay held
//
// It holds every call at the main menu and reads the child's heap (heap per
// active call), then has every caller type a PIN change up to its last key,
// and all press it in the same instant (or, with --rate, at that rate). It
// reports the p50/p99 latency from the caller's decision to press the last
// key to the card host receiving the request, and to the outcome prompt
// starting, against a floor measured in the same run (loadFloor).
func load(args []string, std cli.IO) int {
	out, stderr := std.Stdout, std.Stderr
	fs := flag.NewFlagSet("ivr-pin-lab load", flag.ContinueOnError)
	o := loadOptions{}
	fs.IntVar(&o.calls, "calls", 1000, "concurrent calls")
	fs.IntVar(&o.ramp, "ramp", 200, "calls placed per batch while ramping up")
	fs.Float64Var(&o.speed, "speed", 0.01, "prompt playing speed (1 = real time)")
	fs.Float64Var(&o.rate, "rate", 0, "callers finishing per second after all are held (0: all at once, the worst case)")
	fs.StringVar(&o.profile, "profile", "", "write CPU, mutex and block profiles of the burst to this directory (serve's too when built with -tags pprof)")
	servePath := fs.String("serve", "", "the ivr-pin binary whose serve is measured (default: ivr-pin beside this binary, else on PATH); built with -tags pprof, its profiles are written too")
	transport := fs.String("transport", "inbound", "ARI transport: inbound, outbound (one websocket per call) or both (one after the other, side by side)")
	if code, done := cli.ParseFlags(fs, args, "Runs serve as a child process under many concurrent calls and reports heap per call and\nlatencies (docs/performance.md).", std); done {
		return code
	}
	var transports []string
	switch *transport {
	case "inbound", "outbound":
		transports = []string{*transport}
	case "both":
		transports = []string{"inbound", "outbound"}
	default:
		fmt.Fprintf(stderr, "ivr-pin-lab load: --transport must be inbound, outbound or both\n")
		return 2
	}
	serveBin, err := findServe(*servePath)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin-lab load: %v\n", err)
		return 1
	}
	o.serve = serveBin
	// This process stands in for Asterisk and the bank, which run on
	// machines of their own: it trades memory for the CPU its collector
	// would take from serve (a quarter of its CPU in a 5,000-call burst at
	// the default). The floor is measured under the same setting.
	debug.SetGCPercent(400)
	// The floor first, in this run, on this machine.
	floor, err := loadFloor(o.calls)
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin-lab load (floor): %v\n", err)
		return 1
	}
	var results []loadResult
	for _, tr := range transports {
		o.transport = tr
		r, err := loadOnce(o, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "ivr-pin-lab load (%s): %v\n", tr, err)
			return 1
		}
		results = append(results, r)
	}
	fmt.Fprintf(out, "calls held: %d, ramp %d, speed %g, rate %g/s\n\n", o.calls, o.ramp, o.speed, o.rate)
	floor99 := pct(floor, 99)
	fmt.Fprintf(out, "floor: %d PIN-change requests released at once straight to the card-host simulator from this process: p50 %s / p99 %s (n=%d)\n\n",
		o.calls, pct(floor, 50), floor99, len(floor))
	fmt.Fprintf(out, "| transport | active at the menu | heap per call | PINs changed | last key -> host request p50 / p99 | p99 / floor p99 | last key -> outcome prompt p50 / p99 |\n")
	fmt.Fprintf(out, "|---|---|---|---|---|---|---|\n")
	ok := true
	p99 := map[string]time.Duration{}
	for _, r := range results {
		p99[r.transport] = pct(r.toHost, 99)
		fmt.Fprintf(out, "| %s | %.0f | %.1f KiB | %d of %d | %s / %s (n=%d) | %s | %s / %s (n=%d) |\n", r.transport, r.active,
			(r.heldHeap-r.idleHeap)/float64(o.calls)/1024, r.changed, o.calls,
			pct(r.toHost, 50), p99[r.transport], len(r.toHost), ratio(p99[r.transport], floor99), pct(r.toOutcome, 50), pct(r.toOutcome, 99), len(r.toOutcome))
		ok = ok && r.changed == o.calls
	}
	fmt.Fprintf(out, "\n| transport | driver's own wait to write the last key p50 / p99 | CPU from the last keys to the last call's end |\n|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(out, "| %s | %s / %s | %s |\n", r.transport, pct(r.keyWrite, 50), pct(r.keyWrite, 99), r.cpu)
	}
	// The verdict against each goal, measured in this run.
	fmt.Fprintf(out, "\n| goal | measured | verdict |\n|---|---|---|\n")
	verdict := func(goal, measured string, met bool) {
		v := "met"
		if !met {
			v = "NOT MET"
		}
		fmt.Fprintf(out, "| %s | %s | %s |\n", goal, measured, v)
	}
	for _, r := range results {
		verdict(r.transport+": every PIN changed", fmt.Sprintf("%d of %d", r.changed, o.calls), r.changed == o.calls)
		verdict(r.transport+": host request p99 within 3x the floor's p99", ratio(p99[r.transport], floor99), floor99 > 0 && p99[r.transport] <= 3*floor99)
	}
	if in, okIn := p99["inbound"]; okIn {
		if outb, okOut := p99["outbound"]; okOut {
			verdict("outbound p99 within 1.5x inbound's", ratio(outb, in), in > 0 && 2*outb <= 3*in)
		}
	}
	if n := labLines.Load(); n > 0 {
		fmt.Fprintf(out, "\n(serve's %d lab warnings left out: a software key, secrets in its environment, lab mode; this is a lab)\n", n)
	}
	if !ok {
		return 1
	}
	return 0
}

type loadOptions struct {
	serve       string // the ivr-pin binary
	calls, ramp int
	speed, rate float64
	transport   string
	profile     string // directory for the burst's profiles ("": none)
}

// findServe is the ivr-pin binary to measure: given, else the one beside
// this binary (go build puts both in one directory), else on PATH.
func findServe(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), "ivr-pin")
		if st, err := os.Stat(beside); err == nil && st.Mode().IsRegular() {
			return beside, nil
		}
	}
	p, err := exec.LookPath("ivr-pin")
	if err != nil {
		return "", errors.New("no ivr-pin beside this binary or on PATH to measure: build it (go build -o DIR/ ./cmd/...) or give --serve")
	}
	return p, nil
}

type loadResult struct {
	transport          string
	active             float64
	idleHeap, heldHeap float64
	changed            int
	toHost, toOutcome  []time.Duration
	keyWrite           []time.Duration // the driver's own wait to write the last key
	cpu                cpuShare
}

// loadOnce runs one serve child on one transport, with simulators and
// cards of its own.
func loadOnce(o loadOptions, stderr io.Writer) (loadResult, error) {
	res := loadResult{transport: o.transport}
	zpkHex, zpk := loadZPK()
	const apiSecret = "load-test-secret-0123456789abcde"
	sims, err := simrun.Start(simrun.Options{BankID: "LOAD", APIKey: "load-key", ZPK: zpk, APISecret: apiSecret})
	if err != nil {
		return res, err
	}
	defer sims.Close()

	var mu sync.Mutex
	hostAt := map[string]time.Time{}
	outcomeAt := map[string]time.Time{}
	sims.CardHost.Observe(func(pan string) {
		mu.Lock()
		hostAt[pan] = time.Now()
		mu.Unlock()
	})
	ari, err := aritest.Start(aritest.Options{PlaybackScale: o.speed, OnPlay: func(ch *aritest.Channel, media string) {
		if strings.Contains(media, "/result-") {
			mu.Lock()
			outcomeAt[ch.ID] = time.Now()
			mu.Unlock()
		}
	}})
	if err != nil {
		return res, err
	}
	defer ari.Close()

	pans := make([]string, o.calls)
	for i := range pans {
		pans[i] = withLuhn(fmt.Sprintf("499999%09d", i))
		sims.CardHost.AddCard(pans[i], "2812", "", "active", "7392")
	}
	metricsAddr, err := loopbackAddr()
	if err != nil {
		return res, err
	}
	dir, _ := os.MkdirTemp("", "ivr-pin-load")
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	child := exec.CommandContext(ctx, o.serve, "serve")
	// The measured serve dies with this process, even one killed.
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	child.Env = append(os.Environ(),
		"IVRPIN_ARI_URL="+ari.URL, "IVRPIN_ARI_PASSWORD=aritest-password-0001",
		"IVRPIN_NI_URL="+sims.CardHostURL, "IVRPIN_NI_BANK_ID=LOAD", "IVRPIN_NI_ZPK="+zpkHex, "IVRPIN_LAB=true", "IVRPIN_NI_TIMEOUT=30s",
		"IVRPIN_KEYSECURE_URL="+sims.KeySecureURL, "IVRPIN_KEYSECURE_API_KEY=load-key", "IVRPIN_KEYSECURE_API_SECRET="+apiSecret,
		"IVRPIN_METRICS_ADDR="+metricsAddr, "IVRPIN_LIMIT_STORE="+filepath.Join(dir, "attempts.db"),
		"IVRPIN_LIMIT_KEY=6c6f61642d746573742d6c696d69742d6b6579",
		"IVRPIN_LIMIT_CARD_MAX=0", "IVRPIN_LIMIT_CALLER_MAX=0", "IVRPIN_LOG_LEVEL=warn",
		"IVRPIN_AUDIT_FILE="+filepath.Join(dir, "audit.jsonl"),
		"IVRPIN_FIRST_DIGIT_TIMEOUT=5m", "IVRPIN_INTER_DIGIT_TIMEOUT=5m", "IVRPIN_ARI_TIMEOUT=30s",
		// The line guard bounds host requests in flight at its maximum
		// too: a line sized for this burst holds them all.
		fmt.Sprintf("IVRPIN_LIMIT_LINE_FAILED_MAX=%d", o.calls+100))
	var listen string
	if o.transport == "outbound" {
		if listen, err = loopbackAddr(); err != nil {
			return res, err
		}
		child.Env = append(child.Env, "IVRPIN_ARI_LISTEN="+listen, "IVRPIN_ARI_LISTEN_PASSWORD=load-outbound-password-0001",
			fmt.Sprintf("IVRPIN_ARI_LISTEN_MAX_CONNECTIONS=%d", o.calls+100))
	}
	var prof *burstProfiler
	if o.profile != "" {
		pprofAddr, err := loopbackAddr()
		if err != nil {
			return res, err
		}
		child.Env = append(child.Env, "IVR_PIN_PPROF_ADDR="+pprofAddr)
		prof = newBurstProfiler(o.profile, o.transport, pprofAddr, stderr)
	}
	child.Stderr = &withoutLabWarnings{w: stderr}
	if err := child.Start(); err != nil {
		return res, err
	}
	defer func() {
		cancel()
		_ = child.Wait()
	}()
	if o.transport == "outbound" {
		if err := waitListening(listen, 30*time.Second); err != nil {
			return res, err
		}
		ari.SetOutbound(&aritest.Outbound{URL: "ws://" + listen + "/ari", Username: "asterisk", Password: "load-outbound-password-0001"})
	} else if err := ari.WaitConnected("ivr-pin", 30*time.Second); err != nil {
		return res, err
	}
	res.idleHeap = heapOf(metricsAddr)

	// Ramp up: every call waits at the main menu.
	chans := make([]*aritest.Channel, o.calls)
	for start := 0; start < o.calls; start += o.ramp {
		end := min(start+o.ramp, o.calls)
		for i := start; i < end; i++ {
			ch, err := ari.PlaceCall(aritest.CallOptions{CallerNumber: fmt.Sprintf("1555%07d", i)})
			if err != nil {
				return res, err
			}
			chans[i] = ch
		}
		for i := start; i < end; i++ {
			if err := chans[i].WaitPlayed(2*time.Minute, "menu-repeat", 1); err != nil {
				return res, fmt.Errorf("call %d never reached the menu: %v", i, err)
			}
		}
	}
	time.Sleep(time.Second)
	res.heldHeap = heapOf(metricsAddr)
	res.active = metricOf(metricsAddr, "ivrpin_active_calls")

	// Every caller types a PIN change up to its last key, as a caller does:
	// each entry after its prompt has started and the line has gone quiet
	// (no typing ahead of a prompt serve has not started yet, which would
	// measure prompt interruptions, not the burst). Then, all at the
	// menu's far end, every caller presses the last # in the same instant
	// (or, with --rate, at a steady rate). The clock starts at the caller's
	// decision to press, before any lock or write of this driver; the
	// driver's own wait to get the key written is reported beside it.
	steps := []struct{ prompt, keys string }{
		{"", "1"}, {"/enter-card", ""}, {"/enter-expiry", "1228"}, {"/enter-current-pin", "7392#"},
		{"/enter-new-pin", "4829#"}, {"/confirm-new-pin", "4829"},
	}
	ready := make([]bool, o.calls)
	var wg sync.WaitGroup
	for i := range chans {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ch := chans[i]
			for _, st := range steps {
				keys := st.keys
				if st.prompt == "/enter-card" {
					keys = pans[i] + "#"
				}
				if st.prompt != "" && ch.WaitPlayed(5*time.Minute, st.prompt, 1) != nil {
					return
				}
				if ch.WaitQuiet(20*time.Millisecond, 5*time.Minute) != nil || ch.Press(keys, time.Millisecond) != nil {
					return
				}
			}
			ready[i] = true
		}(i)
	}
	wg.Wait()
	lastKey := make([]time.Time, o.calls)
	keyWritten := make([]time.Duration, o.calls)
	release := make(chan struct{})
	cpu0 := cpuSeconds(os.Getpid(), child.Process.Pid)
	burstStart := time.Now()
	prof.start(10 * time.Second)
	for i := range chans {
		if !ready[i] {
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-release
			if o.rate > 0 {
				time.Sleep(time.Duration(float64(i) / o.rate * float64(time.Second)))
			}
			decided := time.Now()
			if chans[i].Press("#", 0) != nil {
				return
			}
			lastKey[i], keyWritten[i] = decided, time.Since(decided)
			_, _ = chans[i].WaitEnded(5 * time.Minute)
		}(i)
	}
	close(release)
	wg.Wait()
	res.cpu = cpuSeconds(os.Getpid(), child.Process.Pid).since(cpu0, time.Since(burstStart))
	prof.stop()
	for i := range lastKey {
		if !lastKey[i].IsZero() {
			res.keyWrite = append(res.keyWrite, keyWritten[i])
		}
	}

	mu.Lock()
	for i, ch := range chans {
		if h, ok := hostAt[pans[i]]; ok && !lastKey[i].IsZero() {
			res.toHost = append(res.toHost, h.Sub(lastKey[i]))
		}
		if oa, ok := outcomeAt[ch.ID]; ok && !lastKey[i].IsZero() {
			res.toOutcome = append(res.toOutcome, oa.Sub(lastKey[i]))
		}
	}
	mu.Unlock()
	res.changed = sims.CardHost.Applied()
	return res, nil
}

// waitListening waits (bounded) until addr accepts connections.
func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("serve is not listening on %s", addr)
}

func withLuhn(body string) string {
	for d := 0; d <= 9; d++ {
		if s := body + strconv.Itoa(d); policy.Luhn(s) {
			return s
		}
	}
	return body + "0"
}

func loopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// metricOf reads one unlabelled value from the child's /metrics.
func metricOf(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// heapOf takes the smallest of several samples of the child's heap in use,
// so garbage between collections counts as little as possible.
func heapOf(addr string) float64 {
	best := -1.0
	for i := 0; i < 10; i++ {
		if v := metricOf(addr, "go_memstats_heap_inuse_bytes"); v > 0 && (best < 0 || v < best) {
			best = v
		}
		time.Sleep(200 * time.Millisecond)
	}
	return best
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
	i := (len(d) - 1) * p / 100
	return d[i].Round(10 * time.Microsecond)
}

// ratio says a / b as "2.3x" ("-" when b is zero).
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fx", float64(a)/float64(b))
}

// loadZPK is the load run's zone PIN key (test data, fixed, odd parity):
// its hex for the serve child and its ISO 0 key for the simulators.
func loadZPK() (string, *pinblock.ZPK) {
	raw := make([]byte, 16)
	for i := range raw {
		raw[i] = byte(i*29 + 7)
	}
	secret.SetOddParity(raw)
	zpkHex := hex.EncodeToString(raw)
	key, _ := secret.NewKey(secret.TDES, raw)
	zpk, _ := pinblock.NewZPK(key, pinblock.ISO0)
	return zpkHex, zpk
}

// labLines counts the lab's own warnings the measured serve wrote.
var labLines atomic.Int64

// labWarnings mark the lines a lab's serve writes because it is a lab:
// they say nothing of the run, so the report leaves them out (counted).
var labWarnings = []string{"IVRPIN_LAB", "IVRPIN_NI_ZPK", "secrets given in the environment", "IVRPIN_ALLOW_INSECURE_HOSTS"}

// withoutLabWarnings passes serve's log lines through, less the lab's own
// warnings.
type withoutLabWarnings struct {
	w    io.Writer
	mu   sync.Mutex
	part []byte
}

func (f *withoutLabWarnings) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.part = append(f.part, p...)
	for {
		i := bytes.IndexByte(f.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := f.part[:i+1]
		if slices.ContainsFunc(labWarnings, func(m string) bool { return bytes.Contains(line, []byte(m)) }) {
			labLines.Add(1)
		} else if _, err := f.w.Write(line); err != nil {
			return len(p), err
		}
		f.part = f.part[i+1:]
	}
}
