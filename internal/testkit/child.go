package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// Start starts cmd so that it, and every process it forks, dies with this
// test binary however the binary ends: a test that panics on its -timeout
// runs no cleanup, and a Redis, Kamailio or Asterisk left behind holds its
// ports for the next run on the machine. cmd gets a process group of its
// own, SIGKILL when the thread that started it dies (Pdeathsig), and a
// watchdog: a shell that waits on a pipe only this process holds open and
// kills the whole group when the pipe closes, which the kernel does when
// this process ends, by any means. When the test ends normally the
// watchdog is dismissed; stopping cmd is the caller's job (t.Cleanup).
func Start(t testing.TB, cmd *exec.Cmd) error {
	t.Helper()
	stop, err := StartGroup(cmd)
	if err != nil {
		return err
	}
	t.Cleanup(stop)
	return nil
}

// StartGroup is Start for a caller that is not a test (a lab tool's child
// serve): dismiss stops the watchdog once the caller has ended cmd.
func StartGroup(cmd *exec.Cmd) (dismiss func(), err error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("watchdog pipe: %w", err)
	}
	// The group's id is the child's pid (Setpgid with Pgid 0).
	pgid := strconv.Itoa(cmd.Process.Pid)
	dog := exec.Command("/bin/sh", "-c", "read _; kill -9 -"+pgid+" 2>/dev/null")
	dog.Stdin = r
	// In a group of its own, so a signal to the test's group does not
	// take the watchdog before it has done its job.
	dog.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = dog.Start()
	r.Close()
	if err != nil {
		w.Close()
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			// Dismissed first, so it never kills a group id the kernel
			// may since have given to someone else.
			_ = dog.Process.Kill()
			_ = dog.Wait()
			w.Close()
		})
	}, nil
}
