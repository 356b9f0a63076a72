package load

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/waitfor"
	h "github.com/paved-idp/paved/test/harness"
)

// dispatchCap is gitlab.requestsPerMinute in the dispatch scenario.
const dispatchCap = 2000

// windowSpan is the span internal/gitlab's cap counts over: a minute and
// a margin for a request's way to GitLab.
const windowSpan = 62 * time.Second

// testDispatch: a backlog of queued runs against a GitLab that answers in
// 50 ms, under a cap of 2,000 requests a minute, without faults (A) and
// with 20 % 5xx (B), alternating.
func testDispatch(t *testing.T, m mode) {
	var clean, faulty, cleanWin, faultyWin []float64
	for rep := range m.dispatchRepeats {
		for _, withFaults := range []bool{rep%2 == 1, rep%2 == 0} {
			d, win, ok := dispatchOnce(t, m, withFaults)
			if !ok {
				note("dispatch: a repeat failed (see above); its figures are left out")
				continue
			}
			if withFaults {
				faulty, faultyWin = append(faulty, d), append(faultyWin, float64(win))
			} else {
				clean, cleanWin = append(clean, d), append(cleanWin, float64(win))
			}
		}
	}
	// The least the cap allows: its window lets a minute's worth go at once,
	// then one more for every one a minute (and the window's margin) old.
	floor := 0.0
	if m.dispatchRuns > dispatchCap {
		floor = float64((m.dispatchRuns-1)/dispatchCap) * windowSpan.Seconds()
	}
	note("dispatch: the cap alone needs ≥ %.1f s for %d creates (%d in any %s)", floor, m.dispatchRuns, dispatchCap, windowSpan)
	report("dispatch", fmt.Sprintf("%d queued runs → all triggered, 50 ms GitLab", m.dispatchRuns), spread(clean, secs), "≤ 35 s", verdict(median(clean) <= 35))
	report("dispatch", "the same with 20 % 5xx", spread(faulty, secs), "≤ 35 s", verdict(median(faulty) <= 35))
	window := "max GitLab requests in any 60 s window"
	if m.dispatchObserve < time.Minute {
		window += fmt.Sprintf(" (observed only %s: not a full window)", m.dispatchObserve)
	}
	report("dispatch", window, spread(cleanWin, count)+fmt.Sprintf(", worst %.0f", maxOf(cleanWin)), fmt.Sprintf("≤ %d", dispatchCap), verdict(maxOf(cleanWin) <= dispatchCap))
	report("dispatch", window+", 20 % 5xx", spread(faultyWin, count)+fmt.Sprintf(", worst %.0f", maxOf(faultyWin)), fmt.Sprintf("≤ %d", dispatchCap), verdict(maxOf(faultyWin) <= dispatchCap))
}

// dispatchOnce queues m.dispatchRuns runs (on as many stacks) while GitLab
// is held, releases it, and returns the seconds until every run had its
// pipeline and the most GitLab requests in any 60 s window.
func dispatchOnce(t *testing.T, m mode, withFaults bool) (float64, int, bool) {
	label := "no faults"
	faults := gitlabsim.Faults{Latency: 50 * time.Millisecond}
	if withFaults {
		label, faults.ServerErrorRate = "20 % 5xx", 0.2
	}
	var secs float64
	var win int
	ok := t.Run(strings.ReplaceAll(label, " ", "_"), func(t *testing.T) {
		proxy := newGitLabProxy(t)
		proxy.hold()
		e := world(t, h.Options{Outcome: h.LongPipeline, GitLabFaults: faults}, map[string]string{
			"PAVED_GITLAB_BASEURL":           proxy.URL,
			"PAVED_GITLAB_REQUESTSPERMINUTE": fmt.Sprint(dispatchCap),
			// Requests wait at the proxy while the backlog is queued.
			"PAVED_GITLAB_TIMEOUT": "30s",
			"PAVED_WORKERS_LEASE":  "2m", // paved wants the lease longer than the timeout
		})
		proxy.bind(e.GitLab)
		p := makePool(t, e, m.dispatchRuns, m.dispatchRuns, "dsp")
		r := closedLoop(e.Port, e.URL+"/webhooks/port", p, false, 32, 5*time.Minute)
		if r.accepted != m.dispatchRuns {
			t.Fatalf("queue the backlog: %d of %d accepted (first error: %s)", r.accepted, m.dispatchRuns, r.firstErr)
		}
		want := map[string]bool{}
		for _, a := range r.answers {
			want[a.runID] = true
			if a.state != "queued" {
				t.Errorf("run %s answered %s, want queued", a.runID, a.state)
			}
		}
		held := len(proxy.requests())
		released := time.Now()
		proxy.release()
		waitfor.Within(t, 10*time.Minute, "every queued run's pipeline", func() bool {
			n := 0
			for id := range e.GitLab.RunIDCounts() {
				if want[id] {
					n++
				}
			}
			return n == len(want)
		})
		var last time.Time
		for _, pl := range e.GitLab.Pipelines() {
			if id, _ := pl.Var(gitlabsim.RunIDVariable); want[id] && pl.CreatedAt.After(last) {
				last = pl.CreatedAt
			}
		}
		secs = last.Sub(released).Seconds()
		if rest := time.Until(released.Add(m.dispatchObserve)); rest > 0 {
			time.Sleep(rest) // keep counting: the poller and late retries still make requests
		}
		reqs := proxy.requests()
		win = maxInWindow(reqs, time.Minute)
		dups := 0
		for id, n := range e.GitLab.RunIDCounts() {
			if want[id] && n > 1 {
				dups++
			}
		}
		if dups > 0 {
			t.Errorf("%d runs got more than one pipeline", dups)
		}
		kinds := map[string]int{}
		codes := map[int]int{}
		for _, q := range reqs {
			kinds[q.kind]++
			codes[q.status]++
		}
		st := e.GitLab.Stats()
		if n := strings.Count(e.Log(), "report refused by portal"); n > 0 {
			note("dispatch (%s): paved's log has %d reports Port refused for good (e.g. 404: a run Port does not know)", label, n)
		}
		note("dispatch (%s): all %d triggered %.1f s after release; %d GitLab requests in %s (%d held at the proxy before release), by kind %s, by answer %s; simulator injected %d 5xx; max in any 60 s window %d; duplicated pipelines %d",
			label, len(want), secs, len(reqs), time.Since(released).Round(time.Second), held, sorted(kinds), sortedCodes(codes), st.ServerErrors, win, dups)
	})
	return secs, win, ok
}

func sorted(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

func sortedCodes(m map[int]int) string {
	s := map[string]int{}
	for k, v := range m {
		s[fmt.Sprint(k)] = v
	}
	return sorted(s)
}
