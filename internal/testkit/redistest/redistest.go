// Package redistest starts a real redis-server on a free loopback port for
// a test (and a master, two replicas and a Sentinel for a failover drill).
// CI installs redis-server and redis-sentinel (.ci/run); elsewhere a
// missing binary skips the test, naming it. The servers die with the test
// binary however it ends (testkit.Start).
package redistest

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
)

// Start runs redis-server until the test ends; stop ends it early (a drill).
func Start(t testing.TB) (url string, stop func()) {
	t.Helper()
	port, stop := start(t)
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port), stop
}

// StartTLS runs redis-server speaking TLS only, with the certificate and
// key files given (a server certificate for 127.0.0.1), and returns its
// rediss:// URL.
func StartTLS(t testing.TB, certFile, keyFile string) string {
	t.Helper()
	port, _ := start(t, "--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-auth-clients", "no")
	return fmt.Sprintf("rediss://127.0.0.1:%d/0", port)
}

// start runs redis-server on a free loopback port, TLS on that port when
// args name a certificate.
func start(t testing.TB, args ...string) (port int, stop func()) {
	t.Helper()
	bin := testkit.Program(t, "redis-server", "redis-server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	portArgs := []string{"--port", strconv.Itoa(port)}
	if len(args) > 0 {
		portArgs = []string{"--port", "0", "--tls-port", strconv.Itoa(port)}
	}
	cmd := exec.Command(bin, append(append(portArgs, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()), args...)...)
	if err := testkit.Start(t, cmd); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	for i := 0; i < 150; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return port, stop
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("redis-server did not start")
	return 0, stop
}
