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
	bin := testkit.Program(t, "redis-server", "redis-server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
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
			return fmt.Sprintf("redis://127.0.0.1:%d/0", port), stop
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("redis-server did not start")
	return "", stop
}
