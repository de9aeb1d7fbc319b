package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

// load measures one `ivr-pin serve` process under many concurrent calls. The
// ARI test server, the simulated callers and the host simulators run in this
// process; the app under test runs as a child process, as in production.
//
//	ivr-pin load --calls 2000            # every caller finishes at once
//	ivr-pin load --calls 2000 --rate 50  # 50 callers finish a second, the rest stay held
//
// It holds every call at the main menu and reads the child's heap (heap per
// active call), then has every caller complete a PIN change and reports the
// p50/p99 latency from the caller's last key to the card host receiving the
// request, and to the outcome prompt starting.
func load(args []string, out, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	calls := fs.Int("calls", 1000, "concurrent calls")
	ramp := fs.Int("ramp", 200, "calls placed per batch while ramping up")
	speed := fs.Float64("speed", 0.01, "prompt playing speed (1 = real time)")
	rate := fs.Float64("rate", 0, "callers finishing per second after all are held (0: all at once, the worst case)")
	if code, done := parseFlags(fs, args, "Runs serve as a child process under many concurrent calls and reports heap per call and\nlatencies (docs/performance.md).", out, stderr); done {
		return code
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	raw := make([]byte, 16)
	for i := range raw {
		raw[i] = byte(i*29 + 7)
	}
	zpkHex := hex.EncodeToString(raw)
	key, _ := secret.NewKey(secret.TDES, raw)
	zpk, _ := pinblock.NewZPK(key, pinblock.ISO0)
	const apiSecret = "load-test-secret-0123456789abcde"
	sims, err := simrun.Start(simrun.Options{BankID: "LOAD", APIKey: "load-key", ZPK: zpk, APISecret: apiSecret})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
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
	ari, err := aritest.Start(aritest.Options{PlaybackScale: *speed, OnPlay: func(ch *aritest.Channel, media string) {
		if strings.Contains(media, "/result-") {
			mu.Lock()
			outcomeAt[ch.ID] = time.Now()
			mu.Unlock()
		}
	}})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer ari.Close()

	pans := make([]string, *calls)
	for i := range pans {
		pans[i] = withLuhn(fmt.Sprintf("499999%09d", i))
		sims.CardHost.AddCard(pans[i], "2812", "", "active", "7392")
	}
	metricsAddr, err := loopbackAddr()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	dir, _ := os.MkdirTemp("", "ivr-pin-load")
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	child := exec.CommandContext(ctx, self, "serve")
	child.Env = append(os.Environ(),
		"IVRPIN_ARI_URL="+ari.URL, "IVRPIN_ARI_PASSWORD=test-password",
		"IVRPIN_NI_URL="+sims.CardHostURL, "IVRPIN_NI_BANK_ID=LOAD", "IVRPIN_NI_ZPK="+zpkHex, "IVRPIN_NI_TIMEOUT=30s",
		"IVRPIN_KEYSECURE_URL="+sims.KeySecureURL, "IVRPIN_KEYSECURE_API_KEY=load-key", "IVRPIN_KEYSECURE_API_SECRET="+apiSecret,
		"IVRPIN_METRICS_ADDR="+metricsAddr, "IVRPIN_LIMIT_STORE="+filepath.Join(dir, "attempts.db"),
		"IVRPIN_LIMIT_CARD_MAX=0", "IVRPIN_LIMIT_CALLER_MAX=0", "IVRPIN_LOG_LEVEL=warn",
		"IVRPIN_AUDIT_FILE="+filepath.Join(dir, "audit.jsonl"),
		"IVRPIN_FIRST_DIGIT_TIMEOUT=5m", "IVRPIN_INTER_DIGIT_TIMEOUT=1m", "IVRPIN_ARI_TIMEOUT=30s")
	child.Stderr = stderr
	if err := child.Start(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := ari.WaitConnected("ivr-pin", 30*time.Second); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	idleHeap := heapOf(metricsAddr)

	// Ramp up: every call waits at the main menu.
	chans := make([]*aritest.Channel, *calls)
	for start := 0; start < *calls; start += *ramp {
		end := min(start+*ramp, *calls)
		for i := start; i < end; i++ {
			ch, err := ari.PlaceCall(aritest.CallOptions{CallerNumber: fmt.Sprintf("1555%07d", i)})
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			chans[i] = ch
		}
		for i := start; i < end; i++ {
			if err := chans[i].WaitPlayed(2*time.Minute, "menu-repeat", 1); err != nil {
				fmt.Fprintf(stderr, "call %d never reached the menu: %v\n", i, err)
				return 1
			}
		}
	}
	time.Sleep(time.Second)
	heldHeap := heapOf(metricsAddr)
	active := metricOf(metricsAddr, "ivrpin_active_calls")

	// Every caller completes a change; the last key's time is noted.
	lastKey := make([]time.Time, *calls)
	var wg sync.WaitGroup
	for i := range chans {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if *rate > 0 {
				time.Sleep(time.Duration(float64(i) / *rate * float64(time.Second)))
			}
			ch := chans[i]
			for _, g := range []string{"1", pans[i] + "#", "2812", "7392#", "4829#", "4829#"} {
				if ch.WaitQuiet(20*time.Millisecond, 5*time.Minute) != nil || ch.Press(g, time.Millisecond) != nil {
					return
				}
			}
			lastKey[i] = time.Now()
			_, _ = ch.WaitEnded(5 * time.Minute)
		}(i)
	}
	wg.Wait()

	var toHost, toOutcome []time.Duration
	mu.Lock()
	for i, ch := range chans {
		if h, ok := hostAt[pans[i]]; ok && !lastKey[i].IsZero() {
			toHost = append(toHost, h.Sub(lastKey[i]))
		}
		if o, ok := outcomeAt[ch.ID]; ok && !lastKey[i].IsZero() {
			toOutcome = append(toOutcome, o.Sub(lastKey[i]))
		}
	}
	mu.Unlock()
	changed := sims.CardHost.Applied()
	cancel()
	_ = child.Wait()

	fmt.Fprintf(out, "calls held at the menu: %d (app reports %.0f active)\n", *calls, active)
	fmt.Fprintf(out, "app heap: idle %.1f MiB, holding %.1f MiB: %.1f KiB per active call\n",
		idleHeap/(1<<20), heldHeap/(1<<20), (heldHeap-idleHeap)/float64(*calls)/1024)
	fmt.Fprintf(out, "PINs changed: %d of %d\n", changed, *calls)
	fmt.Fprintf(out, "last key -> host request: p50 %s p99 %s (n=%d)\n", pct(toHost, 50), pct(toHost, 99), len(toHost))
	fmt.Fprintf(out, "last key -> outcome prompt: p50 %s p99 %s (n=%d)\n", pct(toOutcome, 50), pct(toOutcome, 99), len(toOutcome))
	if changed != *calls {
		return 1
	}
	return 0
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
