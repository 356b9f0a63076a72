package load

import (
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // read paved's PostgreSQL database after it stops

	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
	"github.com/paved-idp/paved/internal/waitfor"
	h "github.com/paved-idp/paved/test/harness"
	"github.com/paved-idp/paved/test/load/probe"
	_ "modernc.org/sqlite" // read paved's database after it stops
)

// intakeStore is the store an intake scenario runs paved on; suffix ends
// the name of each of its figures.
type intakeStore struct {
	postgres bool
	suffix   string
}

var (
	sqliteStore   = intakeStore{}
	postgresStore = intakeStore{postgres: true, suffix: ", PostgreSQL"}
)

// intakeStacks is how many stacks the intake runs spread over: the first
// run of each is dispatched during the warm-up and its pipeline runs for an
// hour (harness.LongPipeline), so every later run waits queued and the
// dispatcher has nothing to do during the trials.
const intakeStacks = 256

// testIntake: paved against the bare gin baseline, closed loop at each
// concurrency (A/B alternating within each repeat), then paved's latency at
// a fixed rate, then proof that every 202 is a stored run.
func testIntake(t *testing.T, m mode, st intakeStore) {
	bare := startBare(t)
	bareURL := bare.URL + "/webhooks/port"
	var got202, missing, unanswered, c5xx int
	estimate := 2000.0 // paved req/s, for sizing the next trial's pool of distinct runs

	// Each concurrency, and the open loop, gets a paved of its own with the
	// same start (the warm-up): queued runs pile up in every trial, and a
	// backlog left by one concurrency would weigh on the next.
	for _, c := range append(slices.Clone(m.concurrency), 0) {
		name := fmt.Sprintf("c=%d", c)
		if c == 0 {
			name = "open_loop"
		}
		t.Run(name, func(t *testing.T) {
			e, check := intakeWorld(t, st)
			defer func() {
				g, miss, un, five := verifyStored(t, e, check.answers)
				got202, missing, unanswered, c5xx = got202+g, missing+miss, unanswered+un, c5xx+five
			}()
			pavedURL := e.URL + "/webhooks/port"
			if c == 0 {
				openLoopTrials(t, e, m, st, check)
				return
			}
			barePool := makePool(t, e, 4000, intakeStacks, "svc")
			var pavedRates, bareRates, ratios []float64
			// CPU a request, of the server and of this process (the load
			// generator, the simulators idle), in each side's trials: on a
			// shared 2-core box the rates swing with the neighbours, the
			// CPU a request much less, and it says where the time goes.
			var pavedCPU, genCPU, bareCPU, bareGenCPU []float64
			for rep := range m.intakeRepeats {
				n := int(estimate*m.intakeDuration.Seconds()*1.5) + 500
				p := makePool(t, e, n, intakeStacks, "svc")
				var a, b tally
				runA := func() {
					cpu := probe.MeterCPU(t, e.PID(), 0)
					a = closedLoop(e.Port, pavedURL, p, false, c, m.intakeDuration)
					used := cpu.Used(t)
					pavedCPU, genCPU = append(pavedCPU, perRequest(used[0], a.sent)), append(genCPU, perRequest(used[1], a.sent))
					check.add(t, "paved "+name, a)
				}
				runB := func() {
					cpu := probe.MeterCPU(t, bare.cmd.Process.Pid, 0)
					b = closedLoop(e.Port, bareURL, barePool, true, c, m.intakeDuration)
					used := cpu.Used(t)
					bareCPU, bareGenCPU = append(bareCPU, perRequest(used[0], b.sent)), append(bareGenCPU, perRequest(used[1], b.sent))
				}
				if rep%2 == 0 {
					runA()
					runB()
				} else {
					runB()
					runA()
				}
				if b.c5xx+b.errs+b.other > 0 {
					t.Errorf("bare %s: %d 5xx, %d other, %d errors (first: %s)", name, b.c5xx, b.other, b.errs, b.firstErr)
				}
				if a.sent >= len(p.bodies) {
					note("paved %s repeat %d used its whole pool of %d runs in %s", name, rep+1, len(p.bodies), a.elapsed.Round(time.Millisecond))
				}
				estimate = max(estimate, a.rate())
				pavedRates, bareRates = append(pavedRates, a.rate()), append(bareRates, b.rate())
				ratios = append(ratios, a.rate()/b.rate())
				note("%s repeat %d (%s first): paved %.0f req/s (%d in %s, p50 %.1f ms, p99 %.1f ms), bare %.0f req/s (%d in %s, p99 %.1f ms), ratio %.3f",
					name, rep+1, map[bool]string{true: "paved", false: "bare"}[rep%2 == 0], a.rate(), a.sent, a.elapsed.Round(time.Millisecond),
					toMS(quantile(a.latencies, .5)), toMS(quantile(a.latencies, .99)), b.rate(), b.sent, b.elapsed.Round(time.Millisecond), toMS(quantile(b.latencies, .99)), a.rate()/b.rate())
			}
			report("intake", fmt.Sprintf("paved req/s, closed loop c=%d%s", c, st.suffix), spread(pavedRates, rps), "", "")
			report("intake", fmt.Sprintf("bare gin req/s, closed loop c=%d%s", c, st.suffix), spread(bareRates, rps), "", "")
			report("intake", fmt.Sprintf("paved CPU a request, c=%d%s", c, st.suffix), spread(pavedCPU, usec), "", "")
			report("intake", fmt.Sprintf("bare gin CPU a request, c=%d%s", c, st.suffix), spread(bareCPU, usec), "", "")
			report("intake", fmt.Sprintf("load generator CPU a request, c=%d, paved / bare trials%s", c, st.suffix), spread(genCPU, usec)+" / "+spread(bareGenCPU, usec), "", "")
			if st.postgres {
				// The ratio target is SQLite's; PostgreSQL's is reported.
				report("intake", fmt.Sprintf("ratio paved/bare c=%d%s", c, st.suffix), spread(ratios, ratio), "reported", "")
				return
			}
			r := median(ratios)
			v := verdict(r >= 0.30)
			if r >= 0.5 {
				v += " (stretch met)"
			} else if r >= 0.30 {
				v += " (stretch 0.5 missed)"
			}
			report("intake", fmt.Sprintf("ratio paved/bare c=%d", c), spread(ratios, ratio), "≥ 0.30 (stretch 0.5)", v)
		})
	}
	report("intake", "answers 202 (all trials and warm-ups)"+st.suffix, count(float64(got202)), "", "")
	report("intake", "202s without a stored run"+st.suffix, count(float64(missing)), "0", verdict(missing == 0))
	report("intake", "stored runs without a 202"+st.suffix, count(float64(unanswered)), "0", verdict(unanswered == 0))
	report("intake", "5xx answers"+st.suffix, count(float64(c5xx)), "0", verdict(c5xx == 0))
}

// perRequest is cpu over n requests, in µs.
func perRequest(cpu time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(n)
}

// answers collects every answer paved gave in one world.
type answers struct{ answers []answer }

func (as *answers) add(t *testing.T, what string, r tally) {
	as.answers = append(as.answers, r.answers...)
	if r.c5xx > 0 || r.errs > 0 || r.other > 0 {
		t.Errorf("%s: %d sent, %d answered 202, %d 5xx, %d other, %d transport errors (first: %s)", what, r.sent, r.accepted, r.c5xx, r.other, r.errs, r.firstErr)
	}
}

// intakeWorld starts paved and warms it up: one run per stack (each
// dispatched, its pipeline running for an hour: harness.LongPipeline), and
// enough more that the reports use up Port's documented rate limit (1,000
// a 5 min, portsim's default), so the reporter waits for the reset instead
// of competing with the intake.
func intakeWorld(t *testing.T, st intakeStore) (*h.Env, *answers) {
	opt := h.Options{Outcome: h.LongPipeline}
	if st.postgres {
		opt.DatabaseURL = pgtest.DSN(t) // skips the test where PostgreSQL is not installed
	}
	e := world(t, opt, nil)
	as := &answers{}
	warm := makePool(t, e, 3*intakeStacks, intakeStacks, "svc")
	w := closedLoop(e.Port, e.URL+"/webhooks/port", warm, false, 32, time.Minute)
	as.add(t, "warm-up", w)
	// The pipelines' hooks (pending, running) are delivered before the
	// trials too: GitLab's hooks reaching paved during a trial cost paved
	// CPU the bare handler's trials do not pay (7 % of it, in a trace).
	waitfor.Within(t, 2*time.Minute, "warm-up: every stack's pipeline running, its hooks delivered, and Port's rate limit reached", func() bool {
		return len(e.GitLab.RunIDCounts()) >= intakeStacks && hooksSettled(e, intakeStacks) && portThrottled(e)
	})
	note("intake warm-up: %d runs accepted at %.0f req/s; %d pipelines running; Port answered 429 (the reporter waits for the reset)", w.accepted, w.rate(), len(e.GitLab.RunIDCounts()))
	return e, as
}

// hooksSettled says every hook GitLab queued was delivered (or dropped),
// the running one of at least n pipelines among them.
func hooksSettled(e *h.Env, n int) bool {
	running := map[int64]bool{}
	for _, d := range e.GitLab.Hooks() {
		if !d.Delivered && !d.Dropped {
			return false
		}
		if d.Status == "running" {
			running[d.PipelineID] = true
		}
	}
	return len(running) >= n
}

// verifyStored stops paved and checks its database: every 202 is a stored
// run, and every stored run got a 202.
func verifyStored(t *testing.T, e *h.Env, got []answer) (accepted, missing, unanswered, c5xx int) {
	e.Stop()
	driver, dsn := "sqlite", "file:"+e.DBPath+"?mode=ro&"+url.Values{"_pragma": {"busy_timeout(5000)"}}.Encode()
	if e.DatabaseURL() != "" {
		driver, dsn = "pgx", e.DatabaseURL()
	}
	stored, states := storedRuns(t, driver, dsn)
	for _, a := range got {
		switch {
		case a.code >= 500:
			c5xx++
		case a.code == 202:
			accepted++
			if _, ok := stored[a.runID]; !ok {
				missing++
			}
		}
	}
	unanswered = len(stored) - (accepted - missing)
	// Every stored run was logged, however fast they came (zap's preset
	// sampler used to drop 99 in 100 above 100 a second).
	if logged := strings.Count(e.Log(), `"msg":"run recorded"`); logged != len(stored) {
		t.Errorf("paved logged %d \"run recorded\" lines for %d stored runs", logged, len(stored))
	}
	note("paved's database after it stopped: %d runs, by state %v; %d answers 202, %d of them not stored, %d stored runs without a 202, %d 5xx", len(stored), states, accepted, missing, unanswered, c5xx)
	if missing > 0 || unanswered != 0 || c5xx > 0 {
		t.Errorf("intake: %d 202s not stored, %d stored runs without a 202, %d 5xx", missing, unanswered, c5xx)
	}
	return accepted, missing, unanswered, c5xx
}

// storedRuns reads paved's runs (database/sql driver and DSN: its SQLite file read-only, or its
// PostgreSQL database) after paved has stopped.
func storedRuns(t *testing.T, driver, dsn string) (map[string]string, map[string]int) {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, state FROM runs`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out, states := map[string]string{}, map[string]int{}
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			t.Fatal(err)
		}
		out[id] = state
		states[state]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out, states
}

// portThrottled reports whether the Port simulator has answered 429.
func portThrottled(e *h.Env) bool {
	for _, c := range e.Port.Calls() {
		if c.Status == 429 {
			return true
		}
	}
	return false
}

// openLoopTrials measures paved's latency at a fixed rate, three ways: from
// each request's scheduled send (a late sender shows as latency), from its
// actual send, and paved's own histogram of the webhook route (router to
// answer) scraped before and after each repeat, so that a busy box's share
// of the figure can be told from paved's.
func openLoopTrials(t *testing.T, e *h.Env, m mode, st intakeStore, check *answers) {
	const route = "/webhooks/port"
	pavedURL := e.URL + route
	var p50s, p99s, maxes, lags, lag99s, sent99s, server99s, serverIn25 []float64
	for rep := range m.openRepeats {
		p := makePool(t, e, int(float64(m.openRate)*m.openDuration.Seconds()), intakeStacks, "svc")
		before, err := probe.ScrapeHist(loadClient, e.URL, route)
		if err != nil {
			t.Fatal(err)
		}
		protected, restore := probe.ProtectGenerator()
		r, lag := openLoop(e.Port, pavedURL, p, m.openRate, m.openDuration)
		restore()
		check.add(t, "open loop", r)
		// paved observes a request as its handler returns, which can be
		// just after the client has read the answer.
		var server probe.Hist
		waitfor.Within(t, 30*time.Second, "paved's histogram counts every answered webhook of the trial", func() bool {
			after, err := probe.ScrapeHist(loadClient, e.URL, route)
			if err != nil {
				t.Fatal(err)
			}
			server = after.Since(before)
			return int(server.Total()) >= r.sent-r.errs
		})
		var fromSend, late []time.Duration
		for _, a := range r.answers {
			late = append(late, a.began.Sub(a.sent))
			if a.err == nil {
				fromSend = append(fromSend, a.done.Sub(a.began))
			}
		}
		p50s, p99s = append(p50s, toMS(quantile(r.latencies, .5))), append(p99s, toMS(quantile(r.latencies, .99)))
		maxes, lags = append(maxes, toMS(quantile(r.latencies, 1))), append(lags, toMS(lag))
		lag99s, sent99s = append(lag99s, toMS(quantile(late, .99))), append(sent99s, toMS(quantile(fromSend, .99)))
		server99s, serverIn25 = append(server99s, toMS(server.Quantile(.99))), append(serverIn25, 100*server.Within(.025))
		note("open loop repeat %d (%s): %d sent at %d/s, all answered after %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms from the schedule; p99 %.1f ms from the actual send; paved's own p99 %.1f ms, %.2f %% within 25 ms; sender late p99 %.1f ms, at worst %.1f ms",
			rep+1, protected, r.sent, m.openRate, r.elapsed.Round(time.Millisecond), p50s[rep], p99s[rep], maxes[rep], sent99s[rep], server99s[rep], serverIn25[rep], lag99s[rep], lags[rep])
	}
	report("intake", fmt.Sprintf("paved p50 at %d req/s open loop (from scheduled send)%s", m.openRate, st.suffix), spread(p50s, ms), "", "")
	report("intake", fmt.Sprintf("paved p99 at %d req/s open loop%s", m.openRate, st.suffix), spread(p99s, ms), "≤ 25 ms", verdict(median(p99s) <= 25))
	report("intake", "paved max latency at that rate"+st.suffix, spread(maxes, ms), "", "")
	report("intake", "… p99 from the actual send"+st.suffix, spread(sent99s, ms), "", "")
	report("intake", "… p99 by paved's own histogram (router to answer)"+st.suffix, spread(server99s, ms), "", "")
	report("intake", "… share within 25 ms by paved's histogram"+st.suffix, spread(serverIn25, pct), "", "")
	report("intake", "sender's lag behind its schedule, p99 / worst"+st.suffix, spread(lag99s, ms)+" / "+spread(lags, ms), "", "")
}
