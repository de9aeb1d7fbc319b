// Package procs fits the number of processors the Go scheduler uses
// (GOMAXPROCS) to serve's load.
//
// A line's work arrives as many small wake-ups: a key, the end of a prompt,
// the answer to a REST request. With a processor for every core, each
// wake-up also wakes idle threads to look for work that is not there
// (futex, nanosleep and epoll calls, and spinning in user space). On the
// real-Asterisk benchmark (docs/performance.md) that search was a fifth of
// serve's CPU at 50 calls on 2 cores: serve spent 1.8% of Asterisk's CPU
// with two processors and 1.6% with one.
//
// So serve starts with one processor, which carries far more calls than one
// Asterisk host makes, and adds processors as soon as it uses most of what
// it has (a burst, a fleet's worth of calls), up to the runtime's own
// default (the CPUs, or the container's CPU limit); it gives them back one
// halving at a time after a quiet spell. An operator who sets GOMAXPROCS
// keeps it: the adapter does not run.
//
// Hand code rather than a library: the libraries (go.uber.org/automaxprocs,
// and the runtime itself since Go 1.25) size GOMAXPROCS to a container's
// limit, not to the load.
package procs

import (
	"context"
	"runtime"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// Config is how the adapter reads the load and sets processors.
type Config struct {
	// Max is the most processors it sets (default: the runtime's default
	// when Run starts, which follows the CPUs and a container's limit).
	Max int
	// Interval is how often the load is read (default 1 s).
	Interval time.Duration
	// QuietIntervals is how many intervals in a row the load must stay
	// under Quiet before a processor count is halved (default 30).
	QuietIntervals int
	Log            *logrus.Entry

	// For tests: the process's CPU time so far (default getrusage) and the
	// setter (default runtime.GOMAXPROCS).
	cpu func() time.Duration
	set func(int) int
}

// Busy is the share of its processors serve must use over one interval for
// the adapter to double them; Quiet the share under which, held for
// QuietIntervals, it halves them. Apart by more than a halving, so a load
// that just caused a change does not undo it.
const (
	Busy  = 0.5
	Quiet = 0.2
)

// Run adapts GOMAXPROCS until ctx ends, starting at one processor. It does
// nothing when the GOMAXPROCS environment variable is set or when the
// runtime has one processor to give.
func Run(ctx context.Context, cfg Config, env func(string) string) {
	if env("GOMAXPROCS") != "" {
		cfg.log().Debug("GOMAXPROCS is set: the scheduler's processors stay as the operator set them")
		return
	}
	a := newAdapter(cfg)
	if a.max <= 1 {
		return
	}
	a.cfg.set(1)
	a.procs = 1
	a.cfg.log().WithField("max", a.max).Info("the scheduler starts with one processor and adds more under load")
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	last, lastCPU := time.Now(), a.cfg.cpu()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c := a.cfg.cpu()
			a.observe((c - lastCPU).Seconds() / now.Sub(last).Seconds())
			last, lastCPU = now, c
		}
	}
}

type adapter struct {
	cfg   Config
	max   int
	procs int
	quiet int // intervals in a row under Quiet
}

func newAdapter(cfg Config) *adapter {
	if cfg.set == nil {
		cfg.set = runtime.GOMAXPROCS
	}
	if cfg.cpu == nil {
		cfg.cpu = processCPU
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.QuietIntervals <= 0 {
		cfg.QuietIntervals = 30
	}
	if cfg.Max <= 0 {
		cfg.Max = cfg.set(0)
	}
	return &adapter{cfg: cfg, max: cfg.Max, procs: cfg.set(0)}
}

// observe takes one interval's load (cores used) and changes the processors
// when it calls for it.
func (a *adapter) observe(used float64) {
	switch {
	case used >= Busy*float64(a.procs) && a.procs < a.max:
		a.change(min(a.max, 2*a.procs), used)
	case used < Quiet*float64(a.procs) && a.procs > 1:
		a.quiet++
		if a.quiet >= a.cfg.QuietIntervals {
			a.change(max(1, a.procs/2), used)
		}
	default:
		a.quiet = 0
	}
}

func (a *adapter) change(to int, used float64) {
	a.cfg.log().WithFields(logrus.Fields{"from": a.procs, "to": to, "cores_used": float64(int(used*100)) / 100}).
		Info("the scheduler's processors follow the load")
	a.cfg.set(to)
	a.procs, a.quiet = to, 0
}

func (c Config) log() *logrus.Entry {
	if c.Log == nil {
		return logrus.NewEntry(logrus.StandardLogger())
	}
	return c.Log
}

// processCPU is the process's user and system time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
