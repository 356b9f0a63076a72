package app

import (
	"runtime/debug"
	"sync"
)

// startupGCPercent is the GC percentage while Build runs. Build allocates
// about 6.5 MB (OPA parses and compiles the policy for the engine and again
// for the Rego tests, the actions' schemas are compiled, the store
// migrated), of which about 1.3 MB stays live, on top of the 2.5 MB the
// packages' init left: at the default 100 that was two or three
// collections during Build, each taking a share of the two cores from it.
// At 400 Build runs without one; Run hands the garbage back to the OS soon
// after paved serves (freeStartupHeap), so the idle heap is no larger for
// it.
const startupGCPercent = 400

// startup counts the Builds in progress (tests build several apps at once),
// so that the percentage the process had is restored once, by the last.
var startup struct {
	mu  sync.Mutex
	n   int
	old int
}

// relaxGC raises the GC percentage to startupGCPercent for a Build, unless
// the process runs with GOGC=off or above it already; restore undoes it.
func relaxGC() (restore func()) {
	startup.mu.Lock()
	defer startup.mu.Unlock()
	if startup.n == 0 {
		startup.old = debug.SetGCPercent(startupGCPercent)
		if startup.old < 0 || startup.old > startupGCPercent {
			debug.SetGCPercent(startup.old)
		}
	}
	startup.n++
	return sync.OnceFunc(func() {
		startup.mu.Lock()
		defer startup.mu.Unlock()
		if startup.n--; startup.n == 0 {
			debug.SetGCPercent(startup.old)
		}
	})
}

// freeStartupHeap collects start-up's garbage and returns its pages to the
// OS, which the runtime's background scavenger would only do gradually.
func freeStartupHeap() { debug.FreeOSMemory() }
