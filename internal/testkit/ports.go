package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Ports handed to a server a test starts come from below the kernel's
// ephemeral range (ip_local_port_range, 32768-60999 on Linux): a port
// picked there, closed, then bound by a child process a moment later can
// meanwhile become the local port of any outgoing connection on the
// machine (it did: "bind: address already in use" for serve's listener in
// a busy real-Asterisk run). Asterisk's RTP ranges in the harness lie above
// this one.
const (
	portLow  = 10000
	portHigh = 19999
)

var (
	portMu   sync.Mutex
	handed   = map[int]bool{}
	nextPort = portLow + rand.IntN(portHigh-portLow)
)

// FreePort is a loopback port no one listens on, TCP and UDP, outside the
// ephemeral range and never handed out before by this process.
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range portHigh - portLow {
		p := nextPort
		nextPort++
		if nextPort > portHigh {
			nextPort = portLow
		}
		if handed[p] || !bindable(p) {
			continue
		}
		handed[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free port from %d to %d", portLow, portHigh)
}

// FreeAddr is 127.0.0.1:FreePort(), or the test fails.
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(p)
}

// bindable: both a TCP listener and a UDP socket can take p on loopback.
func bindable(p int) bool {
	addr := "127.0.0.1:" + strconv.Itoa(p)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}
