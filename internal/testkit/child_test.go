package testkit

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The helper process: starts a shell that forks a sleep (a child and its
// grandchild, as Kamailio's workers are), prints both pids, then dies the
// way a test binary does on its -timeout: with no cleanup at all.
func TestHelperStartsAndDies(t *testing.T) {
	if os.Getenv("TESTKIT_HELPER") != "1" {
		t.Skip("the helper of TestStartedProcessesDieWithTheTestBinary")
	}
	cmd := exec.Command("/bin/sh", "-c", "sleep 300 & echo $$ $!; wait")
	cmd.Stdout = os.Stdout
	if err := Start(t, cmd); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	os.Exit(3)
}

func TestStartedProcessesDieWithTheTestBinary(t *testing.T) {
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperStartsAndDies$", "-test.count=1")
	helper.Env = append(os.Environ(), "TESTKIT_HELPER=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the helper printed no pids: %v", err)
	}
	_ = helper.Wait()
	var pids []int
	for _, f := range strings.Fields(line) {
		p, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("helper said %q", line)
		}
		pids = append(pids, p)
	}
	if len(pids) != 2 {
		t.Fatalf("helper said %q", line)
	}
	// Each dies at once; the wait is for the kernel to reap them (bounded).
	for _, p := range pids {
		for i := 0; alive(p); i++ {
			if i > 500 {
				t.Fatalf("process %d outlived the test binary that started it", p)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// alive: the process exists and is not a zombie waiting to be reaped.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
