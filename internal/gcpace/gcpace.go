// Package gcpace sets the garbage collector's pace by paved's load. Idle,
// paved keeps Go's default pace (GOGC=100), so its memory stays small;
// under load, when a request's garbage is most of what it allocates, a
// collection every few megabytes costs a large share of the CPU (paved's
// live heap is only a few megabytes, so at 100 the heap goal is its floor
// of 4 MB and a busy paved collected many times a second): busy, the pace
// is relaxed, within a bound on the heap goal.
package gcpace

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of New.
const (
	// BusyPercent is the GC percentage under load.
	BusyPercent = 400
	// HeapGoalCap bounds the heap goal the busy percentage may give: a
	// large live heap gets a smaller percentage (never below the idle one).
	HeapGoalCap = 32 << 20
	// BusyRate is the allocation rate (bytes a second) that makes a busy
	// second: a few hundred requests' worth. Idle, paved's workers
	// allocate a few hundred kilobytes a second.
	BusyRate = 8 << 20
	// QuietSeconds is how many seconds below BusyRate in a row end a busy
	// spell, so that a lull between bursts does not flap the pace.
	QuietSeconds = 10
)

// Pacer watches the allocation rate and sets the GC percentage.
type Pacer struct {
	Idle, Busy   int     // GC percentages
	HeapGoalCap  uint64  // bytes
	BusyRate     float64 // bytes a second
	QuietSeconds int

	// read returns the bytes allocated so far and the live heap's size;
	// set sets the GC percentage. Both are the runtime's, or a test's.
	read func() (allocated, live uint64)
	set  func(int)

	last    uint64
	percent int // in force; Idle until a busy second
	quiet   int
}

// New returns a pacer for this process, or nil when the process runs with
// GOGC set: the operator's choice stands. The idle percentage is the one
// in force now.
func New() *Pacer {
	if os.Getenv("GOGC") != "" {
		return nil
	}
	idle := debug.SetGCPercent(100)
	debug.SetGCPercent(idle)
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	read := func() (uint64, uint64) {
		metrics.Read(samples)
		return samples[0].Value.Uint64(), samples[1].Value.Uint64()
	}
	return newPacer(idle, read, func(p int) { debug.SetGCPercent(p) })
}

func newPacer(idle int, read func() (uint64, uint64), set func(int)) *Pacer {
	p := &Pacer{Idle: idle, Busy: BusyPercent, HeapGoalCap: HeapGoalCap, BusyRate: BusyRate, QuietSeconds: QuietSeconds,
		read: read, set: set, percent: idle}
	p.last, _ = read()
	return p
}

// Run steps the pacer every second until ctx ends, then restores the idle
// percentage.
func (p *Pacer) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.apply(p.Idle)
			return
		case <-t.C:
			p.Step(time.Second)
		}
	}
}

// Step looks at what was allocated over the last elapsed and sets the
// percentage it calls for; it returns the percentage in force.
func (p *Pacer) Step(elapsed time.Duration) int {
	allocated, live := p.read()
	rate := float64(allocated-p.last) / elapsed.Seconds()
	p.last = allocated
	switch {
	case rate >= p.BusyRate:
		p.quiet = 0
		p.apply(p.busyPercent(live))
	case p.percent != p.Idle:
		if p.quiet++; p.quiet >= p.QuietSeconds {
			p.quiet = 0
			p.apply(p.Idle)
		} else {
			// Still busy: the live heap may have grown.
			p.apply(p.busyPercent(live))
		}
	}
	return p.percent
}

// busyPercent is Busy, less when a live heap that large would make the
// heap goal (live × (1 + percent/100)) exceed the cap; never below Idle.
func (p *Pacer) busyPercent(live uint64) int {
	pct := p.Busy
	if live > 0 && live*uint64(100+pct)/100 > p.HeapGoalCap {
		pct = int(p.HeapGoalCap*100/live) - 100
	}
	return max(pct, p.Idle)
}

func (p *Pacer) apply(pct int) {
	if pct != p.percent {
		p.percent = pct
		p.set(pct)
	}
}
