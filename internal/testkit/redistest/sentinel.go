package redistest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
)

// Sentinel is a master, two replicas and one Sentinel (quorum 1) on
// loopback: the smallest set-up that fails over and still has a replica
// after it (a limit write waits for one).
type Sentinel struct {
	// Addr is the Sentinel's address; Master the name it monitors.
	Addr, Master string
	// MasterAddr and ReplicaAddr are the two servers as started.
	MasterAddr, ReplicaAddr, Replica2Addr string
	procs                                 map[string]*exec.Cmd
	t                                     testing.TB
	tls                                   *TLS
}

// TLS makes every server and the Sentinel speak TLS only (replication and
// Sentinel's links too), with a server certificate for 127.0.0.1 and the
// CA that signed it. Clients are not asked for certificates.
type TLS struct {
	CertFile, KeyFile, CAFile string
	Config                    *tls.Config // what the harness's own clients use
}

// StartSentinel runs the three until the test ends. The Sentinel declares
// a master down after down (Sentinel's down-after-milliseconds).
func StartSentinel(t testing.TB, down time.Duration) *Sentinel {
	t.Helper()
	return StartSentinelWith(t, down, nil)
}

// StartSentinelWith is StartSentinel, over TLS when tlsFiles is set.
func StartSentinelWith(t testing.TB, down time.Duration, tlsFiles *TLS) *Sentinel {
	t.Helper()
	server := testkit.Program(t, "redis-server", "redis-server")
	sentinel := testkit.Program(t, "redis-sentinel", "redis-sentinel")
	s := &Sentinel{Master: "ivrpin-test", procs: map[string]*exec.Cmd{}, t: t, tls: tlsFiles}
	s.MasterAddr, s.ReplicaAddr, s.Replica2Addr = testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	s.start("master", server, s.serverArgs(s.MasterAddr)...)
	_, mport, _ := net.SplitHostPort(s.MasterAddr)
	s.start("replica", server, append(s.serverArgs(s.ReplicaAddr), "--replicaof", "127.0.0.1", mport)...)
	s.start("replica2", server, append(s.serverArgs(s.Replica2Addr), "--replicaof", "127.0.0.1", mport)...)
	for _, a := range []string{s.MasterAddr, s.ReplicaAddr, s.Replica2Addr} {
		waitPort(t, a)
	}
	// Sentinel learns of replicas from the master's INFO, which it reads
	// again only every 10 s: started before both replicas are attached, it
	// may not know the second for that long (a busy machine once took more
	// than the 15 s the wait below allows). So both are attached first.
	mc := redis.NewClient(&redis.Options{Addr: s.MasterAddr, TLSConfig: s.clientTLS()})
	defer mc.Close()
	for i := 0; ; i++ {
		info, err := mc.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "connected_slaves:2") {
			break
		}
		if i > 600 {
			t.Fatalf("the replicas never attached to the master: %v\n%s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Addr = testkit.FreeAddr(t)
	_, sport, _ := net.SplitHostPort(s.Addr)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	listen := "port " + sport + "\n"
	if f := s.tls; f != nil {
		listen = fmt.Sprintf("port 0\ntls-port %s\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients no\ntls-replication yes\n",
			sport, f.CertFile, f.KeyFile, f.CAFile)
	}
	body := fmt.Sprintf("%sbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %s 1\n"+
		"sentinel down-after-milliseconds %s %d\nsentinel failover-timeout %s 2000\nsentinel parallel-syncs %s 1\n",
		listen, filepath.Dir(conf), s.Master, mport, s.Master, down.Milliseconds(), s.Master, s.Master)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start("sentinel", sentinel, conf)
	waitPort(t, s.Addr)
	// Sentinel learns of the replica from the master's INFO: only then can
	// it fail over to it.
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, TLSConfig: s.clientTLS()})
	defer sc.Close()
	for i := 0; ; i++ {
		reps, err := sc.Replicas(context.Background(), s.Master).Result()
		if err == nil && len(reps) == 2 {
			break
		}
		if i > 300 {
			t.Fatalf("Sentinel never saw the replica: %v %v", reps, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// serverArgs starts a server on addr with its files in a directory of the
// test's own: a master syncing a replica writes dump.rdb even with --save ""
// (once into the package's source directory, from the process's working
// directory).
func (s *Sentinel) serverArgs(addr string) []string {
	host, port, _ := net.SplitHostPort(addr)
	listen := []string{"--port", port}
	if f := s.tls; f != nil {
		listen = []string{"--port", "0", "--tls-port", port, "--tls-cert-file", f.CertFile, "--tls-key-file", f.KeyFile,
			"--tls-ca-cert-file", f.CAFile, "--tls-auth-clients", "no", "--tls-replication", "yes"}
	}
	return append(listen, "--bind", host, "--save", "", "--appendonly", "no", "--dir", s.t.TempDir())
}

// clientTLS is what the harness's own clients dial with (nil: plain).
func (s *Sentinel) clientTLS() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Config
}

func (s *Sentinel) start(name, bin string, args ...string) {
	cmd := exec.Command(bin, args...)
	if err := testkit.Start(s.t, cmd); err != nil {
		s.t.Fatal(err)
	}
	s.procs[name] = cmd
	s.t.Cleanup(func() { s.Kill(name) })
}

// Kill ends one of "master", "replica", "replica2" or "sentinel" at once
// (SIGKILL).
func (s *Sentinel) Kill(name string) {
	if cmd := s.procs[name]; cmd != nil && cmd.ProcessState == nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// HoldPromotion makes both replicas ineligible (replica-priority 0) and
// waits (bounded) until Sentinel has read that: a master killed after it
// stays down, and the gap lasts until ReleasePromotion, so a drill can
// place its calls in the gap instead of racing Sentinel's clock.
func (s *Sentinel) HoldPromotion(t testing.TB) { s.setPriority(t, 0) }

// ReleasePromotion makes both replicas eligible again: Sentinel promotes
// one at its next attempt (within twice failover-timeout).
func (s *Sentinel) ReleasePromotion(t testing.TB) { s.setPriority(t, 100) }

func (s *Sentinel) setPriority(t testing.TB, p int) {
	t.Helper()
	ctx := context.Background()
	for _, a := range []string{s.ReplicaAddr, s.Replica2Addr} {
		c := redis.NewClient(&redis.Options{Addr: a, TLSConfig: s.clientTLS()})
		err := c.ConfigSet(ctx, "replica-priority", fmt.Sprint(p)).Err()
		c.Close()
		if err != nil {
			t.Fatalf("replica %s: replica-priority %d: %v", a, p, err)
		}
	}
	if p != 0 {
		return // Sentinel reads it again at once while the master is down
	}
	// Sentinel reads a replica's INFO every 10 s while the master is up.
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, TLSConfig: s.clientTLS()})
	defer sc.Close()
	var reps []map[string]string
	for i := 0; i < 300; i++ {
		var err error
		reps, err = sc.Replicas(ctx, s.Master).Result()
		held := err == nil && len(reps) == 2
		for _, r := range reps {
			held = held && r["slave-priority"] == "0"
		}
		if held {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("Sentinel never saw replica-priority 0: %v", reps)
}

// WaitPromoted waits (bounded) until Sentinel names a master other than the
// one started, and returns when it saw that.
func (s *Sentinel) WaitPromoted(t testing.TB, timeout time.Duration) time.Time {
	t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
	defer sc.Close()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		addr, err := sc.GetMasterAddrByName(ctx, s.Master).Result()
		cancel()
		if err == nil && len(addr) == 2 && net.JoinHostPort(addr[0], addr[1]) != s.MasterAddr {
			return time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("Sentinel promoted no replica within %s", timeout)
	return time.Time{}
}

// RestartOldMaster starts the killed master again on its address: Sentinel
// turns it into a replica of the promoted one.
func (s *Sentinel) RestartOldMaster() {
	bin, _ := exec.LookPath("redis-server")
	s.start("master", bin, s.serverArgs(s.MasterAddr)...)
	waitPort(s.t, s.MasterAddr)
}

func waitPort(t testing.TB, addr string) {
	for i := 0; i < 250; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}
