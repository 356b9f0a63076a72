package load

import (
	"fmt"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/sim/portsim"
	h "github.com/paved-idp/paved/test/harness"
)

// testDrain: runs under Port's rate limit (portsim's default is Port's
// documented 1,000 requests per 5 minutes per organisation): how long from
// the pipelines' end until Port has every final status, and why.
func testDrain(t *testing.T, m mode) {
	n := m.drainRuns
	limit, period := m.drainLimit, m.drainLimitPeriod
	if limit == 0 {
		limit, period = 1000, 5*time.Minute
	}
	short := func(gitlabsim.Pipeline) gitlabsim.Outcome {
		return gitlabsim.Outcome{Status: gitlabsim.StatusSuccess, Created: 10 * time.Millisecond, Pending: 10 * time.Millisecond, Running: 500 * time.Millisecond}
	}
	e := world(t, h.Options{Outcome: short, PortRateLimit: m.drainLimit, PortRateLimitPeriod: m.drainLimitPeriod}, nil)
	p := makePool(t, e, n, n, "drn")
	start := time.Now()
	r := closedLoop(e.Port, e.URL+"/webhooks/port", p, false, 8, 5*time.Minute)
	if r.accepted != n {
		t.Fatalf("drain: %d of %d accepted (first error: %s)", r.accepted, n, r.firstErr)
	}
	ids := runIDs(r)
	// Each window lets `limit` calls through; allow for three times what
	// the calls could need, and some.
	waitPortFinal(t, e, p.portIDs, time.Duration(3*(12*n/limit+1))*period+5*time.Minute)
	var lastEnd, lastFinal time.Time
	for _, pl := range e.GitLab.Pipelines() {
		if id, _ := pl.Var(gitlabsim.RunIDVariable); ids[id] && pl.FinishedAt.After(lastEnd) {
			lastEnd = pl.FinishedAt
		}
	}
	ok := 0
	for _, id := range p.portIDs {
		pr, _ := e.Port.Run(id)
		if pr.Status == portsim.StatusSuccess {
			ok++
		}
		if pr.EndedAt.After(lastFinal) {
			lastFinal = pr.EndedAt
		}
	}
	if ok != n {
		t.Errorf("drain: %d of %d ended SUCCESS in Port", ok, n)
	}
	calls := e.Port.Calls()
	throttled, answered := 0, 0
	var firstCall time.Time
	for _, c := range calls {
		if firstCall.IsZero() {
			firstCall = c.At
		}
		if c.Status == 429 {
			throttled++
		} else {
			answered++
		}
	}
	perRun := float64(answered) / float64(n)
	windows := float64(answered) / float64(limit)
	note("drain: %d runs, Port limit %d per %s: %d Port calls answered, %d answered 429; %.1f calls per run; %.2f windows' worth; first Port call %s after the first webhook",
		n, limit, period, answered, throttled, perRun, windows, firstCall.Sub(start).Round(time.Millisecond))
	lim := fmt.Sprintf("%d per %s", limit, period)
	report("drain", fmt.Sprintf("%d runs, Port %s: first webhook → last final status", n, lim), secs(time.Since(start).Seconds())+" (1 run)", "", "")
	report("drain", "the same: last pipeline end → last final status", secs(lastFinal.Sub(lastEnd).Seconds())+" (1 run)", "", "")
	report("drain", "Port calls per run (answered, not 429)", fmt.Sprintf("%.1f", perRun), "", "")
	report("drain", "Port calls answered 429 (each retried after the reset)", count(float64(throttled)), "", "")
}
