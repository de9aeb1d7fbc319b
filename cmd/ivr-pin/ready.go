package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// ready asks a running serve's /readyz (IVRPIN_METRICS_ADDR) and exits 0 when
// it is ready: a health check for images without a shell or curl
// (distroless), as the Dockerfile's HEALTHCHECK and compose use it.
func ready(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr-pin ready", flag.ContinueOnError)
	addr := fs.String("addr", "", "serve's metrics address (default: IVRPIN_METRICS_ADDR, else 127.0.0.1:9464)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if code, done := parseFlags(fs, args, "Asks a running serve's /readyz; exits 0 when it is ready, 1 when not (printing why).", stdout, stderr); done {
		return code
	}
	a := *addr
	if a == "" {
		a = os.Getenv("IVRPIN_METRICS_ADDR")
	}
	if a == "" {
		a = "127.0.0.1:9464"
	}
	if host, port, err := net.SplitHostPort(a); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		a = net.JoinHostPort("127.0.0.1", port)
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get("http://" + a + "/readyz")
	if err != nil {
		fmt.Fprintf(stderr, "ivr-pin ready: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "ivr-pin ready: not ready (HTTP %d): %s", resp.StatusCode, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s", body)
	return 0
}
