// Package chaos proves paved loses no run and runs none twice: the crash
// suite kills the real binary with SIGKILL at random moments while actions
// flow; the fault suite makes Port and GitLab fail, throttle, stall and drop
// webhooks. Both judge only by the simulators' own records.
//
// Short mode (the default, run by `make test`): PAVED_CHAOS_RUNS=60,
// PAVED_CHAOS_KILLS=5. Long mode: `make chaos` (1,000 runs, 25 kills).
package chaos

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/sim/portsim"
	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
	h "github.com/paved-idp/paved/test/harness"
)

var pavedBin string

func TestMain(m *testing.M) { h.MainRun(m, &pavedBin, pgtest.Main) }

func setting(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// quick pipelines, one in ten failing, so both endings are exercised.
func quick(p gitlabsim.Pipeline) gitlabsim.Outcome {
	status := gitlabsim.StatusSuccess
	if p.ID%10 == 3 {
		status = gitlabsim.StatusFailed
	}
	return gitlabsim.Outcome{Status: status, Created: 5 * time.Millisecond, Pending: 10 * time.Millisecond, Running: 30 * time.Millisecond}
}

// accepted maps Port run ids to the paved run ids paved answered with.
type accepted struct {
	mu   sync.Mutex
	runs map[string]string
}

// send delivers n signed actions, 4 at a time, each retried until paved
// accepts it (a delivery to a dead paved fails like Port's would), and
// returns what was accepted. With several replicas, deliveries (and each
// retry) go round the replicas.
func send(t *testing.T, e *h.Env, n int, deadline time.Time, more ...*h.Env) *accepted {
	replicas := append([]*h.Env{e}, more...)
	acc := &accepted{runs: map[string]string{}}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				// Spread over many stacks so per-stack serialisation does not
				// turn the suite into a queue.
				inv := h.Bucket(h.Dana, "dev", map[string]any{"bucketName": fmt.Sprintf("b%04d", i)})
				entity := *h.Checkout
				entity.Identifier = fmt.Sprintf("svc-%d", i%40)
				inv.Entity = &entity
				portRun, err := e.Port.CreateRun(inv)
				if err != nil {
					t.Error(err)
					return
				}
				body := e.WebhookBody(portRun)
				for try := i; time.Now().Before(deadline); try++ {
					a, err := replicas[try%len(replicas)].TryDeliver(body, time.Now(), nil)
					if err == nil && a.Code == 202 && a.RunID != "" {
						acc.mu.Lock()
						acc.runs[portRun] = a.RunID
						acc.mu.Unlock()
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return acc
}

// figures are the suite's verdict, read from the simulators' records.
type figures struct {
	sent, accepted, pipelines, succeeded, failed int
	lost, duplicatedPipelines, duplicatedFinals  int
	paved                                        int
	// extraFinalAttempts counts final statuses Port refused because the run
	// already had one: a call that timed out at paved but still reached Port
	// later. Port keeps the first; only the crash suite, without network
	// faults, requires none.
	extraFinalAttempts int
}

func (f figures) String() string {
	return fmt.Sprintf("sent=%d accepted=%d pipelines=%d succeeded=%d failed=%d lost=%d duplicated_pipelines=%d duplicated_final_statuses=%d extra_final_attempts_refused_by_port=%d paved_runs=%d",
		f.sent, f.accepted, f.pipelines, f.succeeded, f.failed, f.lost, f.duplicatedPipelines, f.duplicatedFinals, f.extraFinalAttempts, f.paved)
}

// settle waits until every accepted run has its final status in Port, then
// counts.
func settle(t *testing.T, e *h.Env, sent int, acc *accepted, wait time.Duration) figures {
	deadline := time.Now().Add(wait)
	open := map[string]bool{}
	for portRun := range acc.runs {
		open[portRun] = true
	}
	// Check only the runs still open, once a second: reading a run copies
	// it under the simulator's lock, and a tight loop over a thousand runs
	// would slow the very simulator paved talks to.
	for len(open) > 0 && time.Now().Before(deadline) {
		for portRun := range open {
			if e.Finished(portRun) {
				delete(open, portRun)
			}
		}
		time.Sleep(time.Second)
	}
	time.Sleep(500 * time.Millisecond) // let any (wrong) late report or pipeline show up
	f := figures{sent: sent, accepted: len(acc.runs), pipelines: len(e.GitLab.Pipelines()), paved: e.StoredRuns()}
	for portRun, pavedRun := range acc.runs {
		r, _ := e.Port.Run(portRun)
		pipes := e.GitLab.CountByRunID(pavedRun)
		switch {
		case r.Status != "SUCCESS" && r.Status != "FAILURE", pipes == 0:
			f.lost++
			t.Logf("lost: Port run %s (paved %s): status %q, %d pipeline(s)", portRun, pavedRun, r.Status, pipes)
		case r.Status == "SUCCESS":
			f.succeeded++
		default:
			f.failed++
		}
		if pipes > 1 {
			f.duplicatedPipelines++
			t.Logf("duplicated: paved run %s has %d pipelines", pavedRun, pipes)
		}
		if n := acceptedFinals(r); n > 1 {
			f.duplicatedFinals++
			t.Logf("duplicated: Port run %s took %d final statuses", portRun, n)
		}
		if r.TerminalAttempts > 1 {
			f.extraFinalAttempts += r.TerminalAttempts - 1
			t.Logf("Port run %s was sent %d final statuses; it kept the first", portRun, r.TerminalAttempts)
		}
	}
	return f
}

// acceptedFinals counts the calls that Port accepted and that set the run's
// final status.
func acceptedFinals(r portsim.RunRecord) int {
	n := 0
	for _, ev := range r.Events {
		if (ev.Kind == "patch" || ev.Kind == "log") && ev.Status/100 == 2 && (strings.Contains(ev.Detail, `"status"`) || strings.Contains(ev.Detail, `"terminationStatus"`)) {
			n++
		}
	}
	return n
}

func check(t *testing.T, f figures) {
	t.Helper()
	if f.accepted != f.sent || f.lost != 0 || f.duplicatedPipelines != 0 || f.duplicatedFinals != 0 || f.paved != f.accepted || f.pipelines != f.accepted {
		t.Errorf("want every run accepted, one pipeline and one final status each, none lost: %s", f)
	}
}

func TestCrash(t *testing.T) {
	runs, kills := setting("PAVED_CHAOS_RUNS", 60), setting("PAVED_CHAOS_KILLS", 5)
	// Each run makes about ten Port calls; a thousand runs in minutes is far
	// beyond one organisation's real rate, so the limit is raised here (the
	// fault suite tests honouring it).
	e := h.Start(t, pavedBin, h.Options{Outcome: quick, PollInterval: 500 * time.Millisecond, PortRateLimit: 1_000_000})
	seed := uint64(setting("PAVED_CHAOS_SEED", int(time.Now().UnixNano()%1e9)))
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d (PAVED_CHAOS_SEED to repeat the kill times)", seed)

	start := time.Now()
	killed := make(chan int)
	go func() {
		n := 0
		defer func() { killed <- n }()
		for ; n < kills; n++ {
			// Kills land while actions arrive, dispatch and report: spread
			// them over about 80 ms per run.
			time.Sleep(time.Duration(rng.IntN(int(time.Duration(runs)*80*time.Millisecond/time.Duration(kills)) + 1)))
			e.Kill()
			e.Restart()
		}
	}()
	acc := send(t, e, runs, time.Now().Add(time.Duration(runs)*time.Second))
	k := <-killed
	f := settle(t, e, runs, acc, time.Minute+time.Duration(runs)*100*time.Millisecond)
	fmt.Printf("crash suite: kills=%d restarts=%d %s in %s\n", k, e.Starts()-1, f, time.Since(start).Round(time.Second))
	if k < kills {
		t.Errorf("only %d of %d kills happened", k, kills)
	}
	check(t, f)
	if f.extraFinalAttempts != 0 {
		t.Errorf("without network faults paved must send each final status once: %s", f)
	}
}

func TestFaults(t *testing.T) {
	runs := setting("PAVED_CHAOS_RUNS", 60)
	e := h.Start(t, pavedBin, h.Options{
		Outcome: quick, PollInterval: 500 * time.Millisecond, GitLabTimeout: 500 * time.Millisecond, PortTimeout: 500 * time.Millisecond,
		GitLabFaults: gitlabsim.Faults{ServerErrorRate: 0.2, RateLimitRate: 0.05, RateLimitReset: time.Second,
			SlowRate: 0.05, SlowLatency: 2 * time.Second, HookDropRate: 0.3, LostCreateRate: 0.05},
		PortRateLimit: 1_000_000, PortRateLimitPeriod: 2 * time.Second,
		PortFaults: portsim.Faults{Seed: 11, ErrorRate: 0.2, RateLimitRate: 0.003, LostResponseRate: 0.05,
			SlowRate: 0.05, SlowLatency: 2 * time.Second},
	})
	start := time.Now()
	acc := send(t, e, runs, time.Now().Add(time.Duration(runs)*time.Second))
	sent := time.Since(start)
	f := settle(t, e, runs, acc, 3*time.Minute+time.Duration(runs)*600*time.Millisecond)
	st := e.GitLab.Stats()
	fmt.Printf("fault suite: gitlab 5xx=%d 429=%d hooks dropped=%d; %s in %s (all sent after %s)\n", st.ServerErrors, st.RateLimited, st.HooksDropped, f,
		time.Since(start).Round(time.Second), sent.Round(time.Second))
	check(t, f)
}
