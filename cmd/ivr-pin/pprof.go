//go:build pprof

package main

// Built only with -tags pprof (docs/performance.md): the production binary
// has no profiling endpoint at all. With that tag, IVR_PIN_PPROF_ADDR (a
// loopback address; deliberately outside the IVRPIN_ settings) serves
// net/http/pprof, with mutex and block profiling on, for `ivr-pin-lab load
// --profile`.

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
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
	go func() { _ = http.ListenAndServe(addr, mux) }()
}
