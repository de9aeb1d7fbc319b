package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"
)

// burstProfiler records where a burst waits, in this load process and,
// when the serve binary was built with -tags pprof, in the serve child:
// CPU over the burst, and mutex and block profiles taken before and after
// it (compare with `go tool pprof -base before after`).
type burstProfiler struct {
	dir, transport, childAddr string
	cpu                       *os.File
	childCPU                  chan error
	stderr                    io.Writer
}

func newBurstProfiler(dir, transport, childAddr string, stderr io.Writer) *burstProfiler {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "ivr-pin-lab load: --profile: %v\n", err)
	}
	runtime.SetMutexProfileFraction(20)
	runtime.SetBlockProfileRate(10_000) // one sample per 10 µs blocked
	return &burstProfiler{dir: dir, transport: transport, childAddr: childAddr, stderr: stderr}
}

func (p *burstProfiler) path(who, what string) string {
	return filepath.Join(p.dir, fmt.Sprintf("%s-%s-%s.pprof", p.transport, who, what))
}

// start is called as the burst is released.
func (p *burstProfiler) start(window time.Duration) {
	if p == nil {
		return
	}
	p.snapshot("before")
	if f, err := os.Create(p.path("load", "cpu")); err == nil && pprof.StartCPUProfile(f) == nil {
		p.cpu = f
	}
	p.childCPU = make(chan error, 1)
	go func() {
		p.childCPU <- p.fetch(fmt.Sprintf("profile?seconds=%d", int(window.Seconds())), p.path("serve", "cpu"))
	}()
}

// stop is called when every call of the burst has ended.
func (p *burstProfiler) stop() {
	if p == nil {
		return
	}
	if p.cpu != nil {
		pprof.StopCPUProfile()
		p.cpu.Close()
	}
	p.snapshot("after")
	if err := <-p.childCPU; err != nil {
		fmt.Fprintf(p.stderr, "ivr-pin-lab load: no profiles of serve (%v): build it with -tags pprof for them; this process's are in %s\n", err, p.dir)
	}
}

func (p *burstProfiler) snapshot(when string) {
	for _, what := range []string{"mutex", "block", "goroutine"} {
		if f, err := os.Create(p.path("load", what+"-"+when)); err == nil {
			_ = pprof.Lookup(what).WriteTo(f, 0)
			f.Close()
		}
		_ = p.fetch(what, p.path("serve", what+"-"+when))
	}
}

// fetch saves one profile of the serve child (nothing when it was built
// without -tags pprof).
func (p *burstProfiler) fetch(what, to string) error {
	resp, err := http.Get("http://" + p.childAddr + "/debug/pprof/" + what)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: HTTP %d", what, resp.StatusCode)
	}
	f, err := os.Create(to)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
