package asterisktest_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/asterisktest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
)

// BenchmarkRealAsteriskCalls runs N complete PIN changes at once through
// the real Asterisk over Local channels (real dialplan, Stasis, prompt
// playback and DTMF), on each ARI transport, and reports, per call, the
// CPU seconds Asterisk and ivr-pin serve spent, serve's share of
// Asterisk's CPU on the same calls in the same run (the figure a capacity
// planner sizes from, free of the machine), and serve's peak heap. Run it
// by hand:
//
//	IVRPIN_TEST_ASTERISK=... go test -run XXX -bench RealAsteriskCalls -benchtime 1x ./asterisk/asterisktest/
//
// With IVRPIN_TEST_TAGS=pprof and IVRPIN_BENCH_PROFILE=DIR it writes serve's
// CPU profile of each batch to DIR. docs/performance.md has the figures.
func BenchmarkRealAsteriskCalls(b *testing.B) {
	for _, tr := range []string{"inbound", "outbound"} {
		for _, n := range []int{10, 50} {
			benchCalls(b, tr, n)
		}
	}
}

func benchCalls(b *testing.B, transport string, n int) {
	{
		b.Run(fmt.Sprintf("transport=%s/calls=%d", transport, n), func(b *testing.B) {
			profileDir := os.Getenv("IVRPIN_BENCH_PROFILE")
			var env []string
			pprofAddr := ""
			if profileDir != "" {
				pprofAddr = testkit.FreeAddr(b)
				env = append(env, "IVR_PIN_PPROF_ADDR="+pprofAddr)
			}
			l := startLineWith(b, lineOptions{outbound: transport == "outbound", env: env})
			metrics := ""
			for _, e := range l.env {
				if v, ok := strings.CutPrefix(e, "IVRPIN_METRICS_ADDR="); ok {
					metrics = "http://" + v + "/metrics"
				}
			}
			d := l.ast.NewDriver(b)
			for b.Loop() {
				type card struct{ pan, exp string }
				cards := make([]card, n)
				for i := range cards {
					cards[i].pan, cards[i].exp = l.changeCard("6284")
				}
				l.typed("", "4829")
				baseHeap := heapInUse(b, metrics)
				astCPU0, serveCPU0 := cpuSeconds(b, l.ast.PID()), cpuSeconds(b, l.serve.Process.Pid)
				peak := baseHeap
				stop := make(chan struct{})
				var sampler sync.WaitGroup
				sampler.Add(1)
				go func() {
					defer sampler.Done()
					for {
						select {
						case <-stop:
							return
						case <-time.After(200 * time.Millisecond):
							if h := heapInUse(b, metrics); h > peak {
								peak = h
							}
						}
					}
				}()
				var profiled chan []byte
				if pprofAddr != "" {
					profiled = make(chan []byte, 1)
					go func() { profiled <- fetchProfile(pprofAddr, stop) }()
				}
				start := time.Now()
				var wg sync.WaitGroup
				for _, c := range cards {
					wg.Add(1)
					go func() {
						defer wg.Done()
						call := d.Call(b, asterisktest.CallOptions{})
						run(b, call, step{media: "menu-change", keys: "1"}, step{media: "enter-card", keys: c.pan + "#"},
							step{media: "enter-expiry", keys: printed(c.exp)}, step{media: "enter-current-pin", keys: "6284#"},
							step{media: "enter-new-pin", keys: "4829#"}, step{media: "confirm-new-pin", keys: "4829#"},
							step{media: "result-changed"})
						if err := call.WaitGone(60 * time.Second); err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				close(stop)
				sampler.Wait()
				for _, c := range cards {
					if !l.sims.CardHost.PINIs(c.pan, "4829") {
						b.Fatal("a call did not change its PIN")
					}
				}
				astCPU := cpuSeconds(b, l.ast.PID()) - astCPU0
				serveCPU := cpuSeconds(b, l.serve.Process.Pid) - serveCPU0
				b.ReportMetric(astCPU/float64(n), "asterisk-cpu-s/call")
				b.ReportMetric(serveCPU/float64(n), "ivrpin-cpu-s/call")
				b.ReportMetric(100*serveCPU/astCPU, "ivrpin-%-of-asterisk")
				if profiled != nil {
					name := filepath.Join(profileDir, fmt.Sprintf("serve-%s-%d.pprof", transport, n))
					if err := os.WriteFile(name, <-profiled, 0o644); err != nil {
						b.Error(err)
					}
				}
				b.ReportMetric(float64(peak-baseHeap)/float64(n)/1024, "ivrpin-heap-KiB/call")
				b.ReportMetric(elapsed.Seconds(), "batch-s")
			}
		})
	}
}

// cpuSeconds is a process's user plus system CPU time (/proc/PID/stat).
func cpuSeconds(tb testing.TB, pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name in parentheses: utime is the 14th
	// field of the line, stime the 15th (clock ticks, 100 a second).
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / 100
}

// heapInUse reads go_memstats_heap_inuse_bytes from serve's metrics.
func heapInUse(tb testing.TB, url string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	tb.Fatal("no heap figure in serve's metrics")
	return 0
}

// fetchProfile takes serve's CPU profile (pprof build) from now until
// stop closes: exactly the batch.
func fetchProfile(addr string, stop <-chan struct{}) []byte {
	resp, err := http.Get("http://" + addr + "/debug/cpu/start")
	if err != nil {
		return nil
	}
	resp.Body.Close()
	<-stop
	resp, err = http.Get("http://" + addr + "/debug/cpu/stop")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}
