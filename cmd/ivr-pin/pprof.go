//go:build pprof

package main

// Built only with -tags pprof (docs/performance.md): the production binary
// has no profiling endpoint at all. With that tag, IVR_PIN_PPROF_ADDR (a
// loopback address; deliberately outside the IVRPIN_ settings) serves
// net/http/pprof, with mutex and block profiling on, for `ivr-pin-lab load
// --profile`.

import (
	"bytes"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	rpprof "runtime/pprof"
	"sync"
)

func init() {
	addr := os.Getenv("IVR_PIN_PPROF_ADDR")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		os.Stderr.WriteString("IVR_PIN_PPROF_ADDR must be a loopback address and port; profiling is off\n")
		return
	}
	runtime.SetMutexProfileFraction(20)
	runtime.SetBlockProfileRate(10_000) // one sample per 10 µs blocked
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	// A CPU profile of exactly a measured window: start, then stop
	// answers the profile (BenchmarkRealAsteriskCalls brackets a batch).
	var window bytes.Buffer
	var mu sync.Mutex
	mux.HandleFunc("/debug/cpu/start", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		window.Reset()
		if err := rpprof.StartCPUProfile(&window); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
		}
	})
	mux.HandleFunc("/debug/cpu/stop", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		rpprof.StopCPUProfile()
		_, _ = w.Write(window.Bytes())
	})
	go func() { _ = http.ListenAndServe(addr, mux) }()
}
