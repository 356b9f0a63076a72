// Package load is paved's load harness (issue #8, "Measure"): it drives the
// real paved binary between the Port and GitLab simulators (test/harness)
// and prints every figure beside its target. It runs only when asked:
//
//	make load                         # PAVED_LOAD=1, full mode (tens of minutes)
//	PAVED_LOAD_MODE=quick make load   # a few minutes, to check the harness works
//
// PAVED_LOAD_BUSY=2 keeps the box busy: two processes spin beside paved
// for the whole run. During the open-loop trials the load generator runs at
// nice -10 (when allowed; PAVED_LOAD_PROTECT=0 turns that off), so that the
// latencies measured are paved's, and paved's own histogram of the webhook
// route is read beside them.
//
// The default `go test ./...` skips it at once. It fails only on
// correctness (a 5xx, a lost or duplicated run), never on a figure: a
// missed target is printed as MISSED. BENCHMARKS.md holds the figures of
// the last full run and how they were made.
package load

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
	h "github.com/paved-idp/paved/test/harness"
	"github.com/paved-idp/paved/test/load/probe"
)

var (
	pavedBin, bareBin string
	enabled           = os.Getenv("PAVED_LOAD") == "1"
)

func TestMain(m *testing.M) {
	if !enabled {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "paved-load-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// PAVED_LOAD_BIN runs a paved built elsewhere (another commit, say),
	// so that two builds can be measured by turns against the same baseline.
	if pavedBin = os.Getenv("PAVED_LOAD_BIN"); pavedBin == "" {
		if pavedBin, err = h.Build(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	bareBin = filepath.Join(dir, "bare")
	build := exec.Command("go", "build", "-o", bareBin, "./test/load/bare")
	build.Dir = h.RepoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build bare server:", err)
		os.Exit(1)
	}
	code := pgtest.Main(m) // the PostgreSQL intake's throwaway cluster, if it ran
	os.RemoveAll(dir)
	os.Exit(code)
}

// mode sizes the scenarios.
type mode struct {
	name string
	// intake: closed-loop trials at each concurrency, repeats of A/B pairs.
	concurrency    []int
	intakeDuration time.Duration
	intakeRepeats  int
	// intake: the open-loop latency trials.
	openRate     int
	openDuration time.Duration
	openRepeats  int
	// dispatch.
	dispatchRuns    int
	dispatchRepeats int
	dispatchObserve time.Duration // keep counting GitLab requests this long after release
	// tracking.
	trackRuns, trackCalibration int
	trackFinishWindow           time.Duration // the pipelines finish spread over this window
	trackRepeats                int
	// the drain under Port's rate limit.
	drainRuns        int
	drainLimit       int           // 0: portsim's default, Port's documented 1,000
	drainLimitPeriod time.Duration // 0: portsim's default, Port's documented 5 min
	// start-up and idle RSS.
	startRepeats int
}

var modes = map[string]mode{
	"quick": {name: "quick", concurrency: []int{8, 32, 128}, intakeDuration: 2 * time.Second, intakeRepeats: 2,
		openRate: 1000, openDuration: 3 * time.Second, openRepeats: 2,
		dispatchRuns: 100, dispatchRepeats: 1, dispatchObserve: 5 * time.Second,
		trackRuns: 500, trackCalibration: 100, trackFinishWindow: 10 * time.Second, trackRepeats: 1,
		drainRuns: 40, drainLimit: 100, drainLimitPeriod: 10 * time.Second,
		startRepeats: 3},
	"full": {name: "full", concurrency: []int{8, 32, 128}, intakeDuration: 8 * time.Second, intakeRepeats: 3,
		openRate: 1000, openDuration: 15 * time.Second, openRepeats: 3,
		dispatchRuns: 1000, dispatchRepeats: 3, dispatchObserve: 62 * time.Second,
		trackRuns: 10_000, trackCalibration: 500, trackFinishWindow: 100 * time.Second, trackRepeats: 1,
		drainRuns:    200,
		startRepeats: 5},
}

func currentMode(t *testing.T) mode {
	name := os.Getenv("PAVED_LOAD_MODE")
	if name == "" {
		name = "full"
	}
	m, ok := modes[name]
	if !ok {
		t.Fatalf("PAVED_LOAD_MODE=%q: want quick or full", name)
	}
	return m
}

// TestLoad runs every scenario in turn, one at a time (the machine has two
// cores: paved, the simulators and the load generator share them), then
// prints the figures as a table. `-run '^TestLoad$/^intake$'` runs one;
// intake_postgres is the intake on PostgreSQL (a throwaway cluster, as the
// store's tests start; skipped where PostgreSQL is not installed).
func TestLoad(t *testing.T) {
	if !enabled {
		t.Skip("the load harness runs with PAVED_LOAD=1 (make load)")
	}
	m := currentMode(t)
	printMachine()
	fmt.Printf("MODE %s\n", m.name)
	if n := probe.BusyNeighbours(t); n > 0 {
		probe.StartNeighbours(t, n)
		note("%d busy neighbours spin beside paved for the whole run (PAVED_LOAD_BUSY)", n)
	}
	start := time.Now()
	t.Cleanup(func() {
		printSummary()
		fmt.Printf("load harness (%s mode) took %s\n", m.name, time.Since(start).Round(time.Second))
	})
	t.Run("startup", func(t *testing.T) { testStartup(t, m) })
	t.Run("intake", func(t *testing.T) { testIntake(t, m, sqliteStore) })
	t.Run("intake_postgres", func(t *testing.T) { testIntake(t, m, postgresStore) })
	t.Run("dispatch", func(t *testing.T) { testDispatch(t, m) })
	t.Run("tracking", func(t *testing.T) { testTracking(t, m) })
	t.Run("drain", func(t *testing.T) { testDrain(t, m) })
}

// world starts paved between fresh simulators with the load harness's
// settings on top of the harness's: Port's user lookups are cached for an
// hour (see BENCHMARKS.md, intake) and env adds PAVED_* overrides.
func world(t *testing.T, opt h.Options, env map[string]string) *h.Env {
	t.Helper()
	t.Setenv("PAVED_PORT_USERCACHETTL", "1h")
	for k, v := range env {
		t.Setenv(k, v)
	}
	e := h.Start(t, pavedBin, opt)
	for k := range env {
		os.Unsetenv(k) // the next world starts from the harness's settings again
	}
	return e
}
