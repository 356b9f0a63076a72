package load

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/sim/portsim"
	"github.com/paved-idp/paved/internal/waitfor"
	h "github.com/paved-idp/paved/test/harness"
	"github.com/paved-idp/paved/test/load/probe"
)

// finishPlan schedules when the tracking scenario's pipelines finish: the
// i-th created finishes at first + i·spacing, so that all of them run at
// once and then end in a steady stream. Until set, none is scheduled.
type finishPlan struct {
	first   atomic.Int64 // unix nanoseconds
	spacing atomic.Int64
	next    atomic.Int64
	late    atomic.Int64 // created after their slot: they finish at once
}

func (p *finishPlan) outcome() gitlabsim.Outcome {
	i := p.next.Add(1) - 1
	finish := time.Unix(0, p.first.Load()+i*p.spacing.Load())
	const created, pending = 10 * time.Millisecond, 10 * time.Millisecond
	running := time.Until(finish) - created - pending
	if running < 50*time.Millisecond {
		running = 50 * time.Millisecond
		p.late.Add(1)
	}
	return gitlabsim.Outcome{Status: gitlabsim.StatusSuccess, Created: created, Pending: pending, Running: running}
}

// rssSampler reads paved's VmRSS every 500 ms.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	max  float64
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, _, err := probe.Status(pid); err == nil {
				s.mu.Lock()
				s.max = max(s.max, rss)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) end() float64 {
	close(s.stop)
	<-s.done
	return s.max
}

// testTracking: N pipelines running at once, every status by webhook
// (polling every hour only), Port without a rate limit; then the p99 from
// a pipeline's end in GitLab to its final status in Port, and paved's
// peak memory.
func testTracking(t *testing.T, m mode) {
	var p50s, p99s, maxes, drains, hwms, atOnce []float64
	var callsPerRun float64
	for rep := range m.trackRepeats {
		t.Run(fmt.Sprint("repeat_", rep+1), func(t *testing.T) {
			r := trackOnce(t, m)
			p50s, p99s, maxes = append(p50s, toMS(quantile(r.lat, .5))), append(p99s, toMS(quantile(r.lat, .99))), append(maxes, toMS(quantile(r.lat, 1)))
			drains, hwms, atOnce = append(drains, r.drain.Seconds()), append(hwms, r.hwm), append(atOnce, float64(r.runningAtOnce))
			callsPerRun = r.portCallsPerRun
		})
	}
	n := m.trackRuns
	report("tracking", fmt.Sprintf("pipelines running at once (of %d)", n), spread(atOnce, count), fmt.Sprint(n), verdict(median(atOnce) >= float64(n)))
	report("tracking", "GitLab end → final status in Port, p50", spread(p50s, ms), "", "")
	report("tracking", "GitLab end → final status in Port, p99", spread(p99s, ms), "≤ 1 s", verdict(median(p99s) <= 1000))
	report("tracking", "GitLab end → final status in Port, max", spread(maxes, ms), "", "")
	report("tracking", "drain: last pipeline end → last final status", spread(drains, secs), "", "")
	report("tracking", "paved peak RSS (VmHWM)", spread(hwms, mib), "≤ 150 MB (143 MiB)", verdict(maxOf(hwms) <= 150e6/(1<<20)))
	if callsPerRun > 0 {
		// Port's documented limit: 1,000 requests per 5 minutes per organisation.
		windows := float64(n) * callsPerRun / 1000
		report("tracking", fmt.Sprintf("Port calls per run; %d runs under Port's 1,000/5 min would take", n),
			fmt.Sprintf("%.1f calls; ≈ %.1f h", callsPerRun, windows*5/60), "", "(computed; see drain)")
	}
}

type trackResult struct {
	lat             []time.Duration
	drain           time.Duration
	hwm             float64
	runningAtOnce   int
	portCallsPerRun float64
}

func trackOnce(t *testing.T, m mode) trackResult {
	n := m.trackRuns
	plan := &finishPlan{}
	decide := func(p gitlabsim.Pipeline) gitlabsim.Outcome {
		if svc, _ := p.Var("PAVED_SERVICE"); strings.HasPrefix(svc, "cal-") {
			return gitlabsim.Outcome{Status: gitlabsim.StatusSuccess, Created: 5 * time.Millisecond, Pending: 5 * time.Millisecond, Running: 50 * time.Millisecond}
		}
		return plan.outcome()
	}
	proxy := newGitLabProxy(t)
	e := world(t, h.Options{Outcome: decide, PollInterval: time.Hour, PortRateLimit: 1 << 30}, map[string]string{
		"PAVED_GITLAB_BASEURL": proxy.URL,
		// The cap is the dispatch scenario's business: here it would only
		// slow the dispatch of N runs.
		"PAVED_GITLAB_REQUESTSPERMINUTE": "1000000",
		"PAVED_GITLAB_TIMEOUT":           "2m",
		"PAVED_WORKERS_LEASE":            "5m", // paved wants the lease longer than the timeout
	})
	proxy.bind(e.GitLab)
	const relayWorkers = 16
	relay := newHookRelay(t, e.URL+"/webhooks/gitlab", relayWorkers, 8*(n+m.trackCalibration)/relayWorkers+1000)
	e.GitLab.SetHook(relay.URL, h.HookToken)
	rss := sampleRSS(e.PID())
	url := e.URL + "/webhooks/port"

	// Calibration: how fast does this paved dispatch?
	// Queued while GitLab is held, then released, as the N runs will be.
	cal := makePool(t, e, m.trackCalibration, m.trackCalibration, "cal")
	proxy.hold()
	r := closedLoop(e.Port, url, cal, false, 32, 5*time.Minute)
	proxy.release()
	if r.accepted != len(cal.bodies) {
		t.Fatalf("calibration: %d of %d accepted (first error: %s)", r.accepted, len(cal.bodies), r.firstErr)
	}
	calIDs := runIDs(r)
	waitfor.Within(t, 5*time.Minute, "the calibration runs' pipelines", func() bool { return countCreated(e, calIDs) == len(calIDs) })
	first, last := createdSpan(e, calIDs)
	rate := float64(len(calIDs)-1) / last.Sub(first).Seconds()
	waitPortFinal(t, e, cal.portIDs, 5*time.Minute)
	note("tracking calibration: %d runs dispatched at %.0f/s", len(calIDs), rate)

	// The N runs: queued while GitLab is held, then dispatched; each
	// pipeline is given an end after the estimated time to dispatch all.
	p := makePool(t, e, n, n, "trk")
	proxy.hold()
	intakeStart := time.Now()
	r = closedLoop(e.Port, url, p, false, 32, 30*time.Minute)
	if r.accepted != n {
		t.Fatalf("tracking: %d of %d accepted (first error: %s)", r.accepted, n, r.firstErr)
	}
	ids := runIDs(r)
	rssQueued, _, _ := probe.Status(e.PID())
	// A margin for the larger backlog: dispatch at 60 % of the calibration's pace.
	estimate := time.Duration(float64(n)/(0.6*rate)*float64(time.Second)) + 5*time.Second
	firstEnd := time.Now().Add(estimate)
	plan.first.Store(firstEnd.UnixNano())
	plan.spacing.Store(int64(m.trackFinishWindow) / int64(n))
	note("tracking: %d runs queued in %s (%.0f req/s), VmRSS %.1f MiB; releasing GitLab; the first pipeline ends in %s, then one every %s",
		n, time.Since(intakeStart).Round(time.Millisecond), r.rate(), rssQueued, estimate.Round(time.Second), m.trackFinishWindow/time.Duration(n))
	released := time.Now()
	proxy.release()
	waitfor.Within(t, 3*estimate+5*time.Minute, "every tracked run's pipeline", func() bool { return countCreated(e, ids) == n })
	dFirst, dLast := createdSpan(e, ids)
	note("tracking: all %d pipelines created %s after release (%.0f/s); %d were created after their slot",
		n, dLast.Sub(released).Round(time.Millisecond), float64(n-1)/dLast.Sub(dFirst).Seconds(), plan.late.Load())
	if d := time.Until(firstEnd); d > 0 {
		time.Sleep(d - 5*time.Millisecond)
	}
	running := 0
	for _, pl := range e.GitLab.Pipelines() {
		if id, _ := pl.Var(gitlabsim.RunIDVariable); ids[id] && pl.Status == gitlabsim.StatusRunning {
			running++
		}
	}
	rssRunning, _, _ := probe.Status(e.PID())
	note("tracking: %d pipelines running at once as the first is about to end; paved VmRSS %.1f MiB", running, rssRunning)

	waitPortFinal(t, e, p.portIDs, m.trackFinishWindow+15*time.Minute)
	_, hwm, _ := probe.Status(e.PID())
	maxRSS := rss.end()

	// GitLab's end of each pipeline against Port's end of its run.
	ended := map[string]time.Time{}
	dup := 0
	var lastEnd time.Time
	for _, pl := range e.GitLab.Pipelines() {
		id, _ := pl.Var(gitlabsim.RunIDVariable)
		if !ids[id] {
			continue
		}
		if _, seen := ended[id]; seen {
			dup++
		}
		ended[id] = pl.FinishedAt
		if pl.FinishedAt.After(lastEnd) {
			lastEnd = pl.FinishedAt
		}
	}
	if dup > 0 {
		t.Errorf("%d runs got more than one pipeline", dup)
	}
	var lat []time.Duration
	var lastFinal time.Time
	statuses := map[string]int{}
	for _, a := range r.answers {
		pr, _ := e.Port.Run(a.portID)
		statuses[pr.Status]++
		if pr.Status != portsim.StatusSuccess && pr.Status != portsim.StatusFailure {
			continue
		}
		lat = append(lat, pr.EndedAt.Sub(ended[a.runID]))
		if pr.EndedAt.After(lastFinal) {
			lastFinal = pr.EndedAt
		}
	}
	hooks := map[string]int{}
	for _, rec := range relay.snapshot() {
		key := rec.status + "→" + fmt.Sprint(rec.code)
		if rec.err != "" {
			key = rec.status + "→error"
		}
		hooks[key]++
	}
	calls := e.Port.Calls()
	byCode := map[int]int{}
	for _, c := range calls {
		byCode[c.Status]++
	}
	gl := map[string]int{}
	for _, q := range proxy.requests() {
		gl[q.kind]++
	}
	note("tracking: Port statuses %s; hooks relayed (status→paved's answer) %s; Port calls %d (%s); GitLab requests %s; peak VmRSS sampled %.1f MiB, VmHWM %.1f MiB",
		sorted(statuses), sorted(hooks), len(calls), sortedCodes(byCode), sorted(gl), maxRSS, hwm)
	if statuses[portsim.StatusSuccess] != n {
		t.Errorf("tracking: %d of %d runs ended SUCCESS in Port: %v", statuses[portsim.StatusSuccess], n, statuses)
	}
	return trackResult{lat: lat, drain: lastFinal.Sub(lastEnd), hwm: hwm, runningAtOnce: running,
		portCallsPerRun: float64(len(calls)) / float64(n+m.trackCalibration)}
}

func runIDs(r tally) map[string]bool {
	ids := map[string]bool{}
	for _, a := range r.answers {
		if a.code == 202 {
			ids[a.runID] = true
		}
	}
	return ids
}

func countCreated(e *h.Env, ids map[string]bool) int {
	n := 0
	for id := range e.GitLab.RunIDCounts() {
		if ids[id] {
			n++
		}
	}
	return n
}

// createdSpan is when the first and the last of the runs' pipelines were created.
func createdSpan(e *h.Env, ids map[string]bool) (first, last time.Time) {
	for _, pl := range e.GitLab.Pipelines() {
		id, _ := pl.Var(gitlabsim.RunIDVariable)
		if !ids[id] {
			continue
		}
		if first.IsZero() || pl.CreatedAt.Before(first) {
			first = pl.CreatedAt
		}
		if pl.CreatedAt.After(last) {
			last = pl.CreatedAt
		}
	}
	return first, last
}

// waitPortFinal waits until every Port run has its final status, reading
// only the runs still open, once a second (each read locks the simulator
// paved is talking to). A run still open at the deadline is lost.
func waitPortFinal(t *testing.T, e *h.Env, portIDs []string, d time.Duration) {
	t.Helper()
	open := map[string]bool{}
	for _, id := range portIDs {
		open[id] = true
	}
	deadline := time.Now().Add(d)
	for len(open) > 0 {
		for id := range open {
			if e.Finished(id) {
				delete(open, id)
			}
		}
		if len(open) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d runs have no final status in Port after %s: lost", len(open), len(portIDs), d)
		}
		time.Sleep(time.Second)
	}
}
