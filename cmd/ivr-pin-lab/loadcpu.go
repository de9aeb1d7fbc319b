package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuSample is the CPU time (user plus system) this load process and the
// serve child had used at one instant, read from /proc/PID/stat.
type cpuSample struct{ load, serve time.Duration }

// cpuShare is the cores each process used over a window: a burst that
// fills the machine is told apart from one that queues with CPU to spare.
type cpuShare struct{ load, serve float64 }

func (c cpuShare) String() string {
	if c.load < 0 {
		return "not measured (no /proc)"
	}
	return fmt.Sprintf("serve %.2f cores, load process (driver, ARI test server, simulators) %.2f cores", c.serve, c.load)
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

func cpuSeconds(loadPID, servePID int) cpuSample {
	return cpuSample{load: procCPU(loadPID), serve: procCPU(servePID)}
}

// since is the share of cores used between s0 and s over wall.
func (s cpuSample) since(s0 cpuSample, wall time.Duration) cpuShare {
	if s.load < 0 || s0.load < 0 || wall <= 0 {
		return cpuShare{load: -1, serve: -1}
	}
	return cpuShare{load: float64(s.load-s0.load) / float64(wall), serve: float64(s.serve-s0.serve) / float64(wall)}
}

// procCPU is utime+stime of pid, or -1 when it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces; fields after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(ut+st) * time.Second / clockTicks
}
