package gcpace

import (
	"context"
	"testing"
	"time"
)

// fake is the runtime as a test drives it.
type fake struct {
	allocated, live uint64
	sets            []int
}

func (f *fake) pacer(idle int) *Pacer {
	return newPacer(idle, func() (uint64, uint64) { return f.allocated, f.live }, func(p int) { f.sets = append(f.sets, p) })
}

// second allocates n bytes over one second and steps the pacer.
func (f *fake) second(p *Pacer, n uint64) int {
	f.allocated += n
	return p.Step(time.Second)
}

func TestIdleKeepsThePaceAndLoadRelaxesIt(t *testing.T) {
	f := &fake{live: 4 << 20}
	p := f.pacer(100)
	if got := f.second(p, 1<<20); got != 100 || len(f.sets) != 0 {
		t.Fatalf("idle second: percent %d, sets %v; want 100 and nothing set", got, f.sets)
	}
	if got := f.second(p, BusyRate); got != BusyPercent {
		t.Fatalf("busy second: percent %d, want %d", got, BusyPercent)
	}
	// A lull shorter than QuietSeconds keeps the busy pace.
	for i := range QuietSeconds - 1 {
		if got := f.second(p, 0); got != BusyPercent {
			t.Fatalf("quiet second %d: percent %d, want %d still", i+1, got, BusyPercent)
		}
	}
	if got := f.second(p, BusyRate*2); got != BusyPercent {
		t.Fatalf("busy again: percent %d", got)
	}
	for range QuietSeconds - 1 {
		f.second(p, 0)
	}
	if got := f.second(p, 0); got != 100 {
		t.Fatalf("after %d quiet seconds: percent %d, want 100", QuietSeconds, got)
	}
	if want := []int{BusyPercent, 100}; len(f.sets) != 2 || f.sets[0] != want[0] || f.sets[1] != want[1] {
		t.Fatalf("set %v, want %v (each change once)", f.sets, want)
	}
}

func TestALargeLiveHeapGetsLessThanBusy(t *testing.T) {
	f := &fake{live: 12 << 20} // goal at 400 % would be 60 MiB
	p := f.pacer(100)
	if got, want := f.second(p, BusyRate), int(HeapGoalCap*100/(12<<20))-100; got != want {
		t.Fatalf("percent %d, want %d (heap goal at the cap)", got, want)
	}
	f.live = 20 << 20 // the cap would ask for 60 %: never below idle
	if got := f.second(p, BusyRate); got != 100 {
		t.Fatalf("percent %d with a live heap near the cap, want the idle 100", got)
	}
}

func TestRunRestoresIdleAtTheEnd(t *testing.T) {
	f := &fake{live: 4 << 20}
	p := f.pacer(100)
	f.second(p, BusyRate)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.Run(ctx)
	if got := f.sets[len(f.sets)-1]; got != 100 {
		t.Fatalf("last set %d after Run ended, want 100", got)
	}
}

func TestGOGCSetByTheOperatorStands(t *testing.T) {
	t.Setenv("GOGC", "200")
	if p := New(); p != nil {
		t.Fatal("New with GOGC set returned a pacer; the operator's GOGC must stand")
	}
}
