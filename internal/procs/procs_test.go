package procs

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

func quiet() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func TestProcessorsFollowTheLoad(t *testing.T) {
	cases := []struct {
		name  string
		max   int
		start int
		loads []float64 // cores used, one an interval
		want  []int     // processors after each
	}{
		{"a light load stays on one", 8, 1, []float64{0.02, 0.3, 0.49}, []int{1, 1, 1}},
		{"a burst doubles at once", 8, 1, []float64{0.5, 0.9, 1.9, 3.5}, []int{2, 2, 4, 8}},
		{"never past the most", 2, 1, []float64{0.9, 1.9, 1.9}, []int{2, 2, 2}},
		{"halved after a quiet spell", 8, 4, []float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1}, []int{4, 4, 2, 2, 2, 1}},
		{"a busy interval restarts the spell", 8, 2, []float64{0.1, 0.5, 0.1, 0.1, 0.1}, []int{2, 2, 2, 2, 1}},
		{"one is the least", 8, 1, []float64{0, 0, 0, 0}, []int{1, 1, 1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			procs := c.start
			a := newAdapter(Config{Max: c.max, QuietIntervals: 3, Log: quiet(),
				cpu: func() time.Duration { return 0 },
				set: func(n int) int {
					old := procs
					if n > 0 {
						procs = n
					}
					return old
				}})
			for i, load := range c.loads {
				a.observe(load)
				if procs != c.want[i] || a.procs != procs {
					t.Fatalf("after %v: %d processors (adapter says %d), want %d", c.loads[:i+1], procs, a.procs, c.want[i])
				}
			}
		})
	}
}

func TestAnOperatorsGOMAXPROCSIsKept(t *testing.T) {
	set := 0
	cfg := Config{Max: 8, Log: quiet(), set: func(n int) int { set++; return 8 }, cpu: func() time.Duration { return 0 }}
	Run(context.Background(), cfg, func(k string) string { return map[string]string{"GOMAXPROCS": "6"}[k] })
	if set != 0 {
		t.Fatal("the adapter changed an operator's GOMAXPROCS")
	}
}

func TestRunStartsOnOneAndStopsWithItsContext(t *testing.T) {
	procs := 8
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var cpu time.Duration
	cfg := Config{Max: 8, Interval: time.Millisecond, Log: quiet(),
		cpu: func() time.Duration { cpu += 10 * time.Millisecond; return cpu }, // busy: 10 cores a ms
		set: func(n int) int {
			old := procs
			if n > 0 {
				procs = n
			}
			if procs == 8 && old < 8 {
				cancel()
			}
			return old
		}}
	go func() { Run(ctx, cfg, func(string) string { return "" }); close(done) }()
	<-done
	if procs != 8 {
		t.Fatalf("a busy process ended on %d processors", procs)
	}
}
