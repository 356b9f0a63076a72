package report

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
	"github.com/paved-idp/paved/internal/store/storetest"
)

var (
	errTransient = errors.New("502 Bad Gateway")
	errPermanent = errors.New("404 Not Found")
	errLimited   = errors.New("429 Too Many Requests")
)

// portal records what it is sent and fails as told.
type portal struct {
	mu       sync.Mutex
	got      map[string][]string
	failNext map[string][]error
	// lost makes the next report to a run go through but answer an error.
	lost    map[string]bool
	resetAt time.Time
	// finishedErr makes Finished fail.
	finishedErr error
}

func (p *portal) Report(_ context.Context, id string, rep run.Report) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost[id] {
		p.lost[id] = false
		p.got[id] = append(p.got[id], rep.Log+rep.Final)
		return errTransient
	}
	if errs := p.failNext[id]; len(errs) > 0 {
		p.failNext[id] = errs[1:]
		return errs[0]
	}
	p.got[id] = append(p.got[id], rep.Log+rep.Final)
	return nil
}

// Finished reports whether a final status went through.
func (p *portal) Finished(_ context.Context, id string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finishedErr != nil {
		return false, p.finishedErr
	}
	for _, got := range p.got[id] {
		if got == run.Success {
			return true, nil
		}
	}
	return false, nil
}

func (p *portal) Permanent(err error) bool { return errors.Is(err, errPermanent) }

func (p *portal) RetryAt(err error) (time.Time, bool) {
	if errors.Is(err, errLimited) {
		return p.resetAt, true
	}
	return time.Time{}, false
}

func setup(t *testing.T) (*Worker, *sqlite.Store, *portal) {
	t.Helper()
	st := sqlitetest.Open(t)
	p := &portal{got: map[string][]string{}, failNext: map[string][]error{}, lost: map[string]bool{}}
	w := &Worker{Store: st, Portals: map[string]Portal{"port": p}, Log: zap.NewNop(), Interval: time.Hour, Lease: time.Minute, Concurrency: 4}
	return w, st, p
}

func addRun(t *testing.T, st *sqlite.Store, portal, portalRunID string, lines ...string) *run.Run {
	t.Helper()
	r := storetest.NewRun(portalRunID, portalRunID, time.Now().UTC())
	r.Request.Portal = portal
	var ch store.Change
	for _, l := range lines {
		if l == run.Success {
			ch.Report(run.Report{Final: l})
			continue
		}
		ch.Report(run.Report{Log: l})
	}
	if _, _, err := st.CreateRun(context.Background(), r, ch); err != nil {
		t.Fatal(err)
	}
	return r
}

// drain ticks until nothing is due, moving the clock past every backoff.
func drain(t *testing.T, w *Worker, clock *sqlitetest.Clock) {
	t.Helper()
	for i := 0; i < 50; i++ {
		n, err := w.Tick(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			pending, _ := w.Store.(*sqlite.Store).Pending(context.Background(), store.KindReport)
			if pending == 0 {
				return
			}
			clock.Add(10 * time.Minute)
		}
	}
	t.Fatal("reports never drained")
}

func TestReportsArriveInOrderThroughFailures(t *testing.T) {
	w, st, p := setup(t)
	clock := sqlitetest.WithClock(st)
	w.Now = clock.Now
	addRun(t, st, "port", "a", "1", "2", "3", run.Success)
	addRun(t, st, "port", "b", "1", "2", run.Success)
	p.failNext["a"] = []error{errTransient, errTransient}
	p.failNext["b"] = []error{errLimited}
	p.resetAt = clock.T.Add(30 * time.Second)
	drain(t, w, clock)
	if got := p.got["a"]; len(got) != 4 || got[0] != "1" || got[1] != "2" || got[2] != "3" || got[3] != run.Success {
		t.Fatalf("run a received %v", got)
	}
	if got := p.got["b"]; len(got) != 3 || got[2] != run.Success {
		t.Fatalf("run b received %v", got)
	}
}

func TestRateLimitResetIsHonoured(t *testing.T) {
	w, st, p := setup(t)
	clock := sqlitetest.WithClock(st)
	w.Now = clock.Now
	addRun(t, st, "port", "a", "1")
	p.failNext["a"] = []error{errLimited}
	p.resetAt = clock.T.Add(time.Hour)
	if _, err := w.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Backoff alone would allow a retry within a second; the reset says an hour.
	clock.Add(2 * time.Minute)
	tasks, err := st.Claim(context.Background(), store.KindReport, time.Minute, 10)
	if err != nil || len(tasks) != 0 {
		t.Fatalf("report claimable before the portal's reset: %v %v", tasks, err)
	}
	clock.Add(time.Hour)
	if tasks, _ := st.Claim(context.Background(), store.KindReport, time.Minute, 10); len(tasks) != 1 {
		t.Fatalf("report not claimable after the reset: %v", tasks)
	}
}

func TestPermanentFailureIsRecordedAndSkipped(t *testing.T) {
	w, st, p := setup(t)
	clock := sqlitetest.WithClock(st)
	w.Now = clock.Now
	r := addRun(t, st, "port", "a", "1", "2")
	p.failNext["a"] = []error{errPermanent}
	drain(t, w, clock)
	if got := p.got["a"]; len(got) != 1 || got[0] != "2" {
		t.Fatalf("received %v, want only the second line", got)
	}
	evs, _ := st.Events(context.Background(), r.ID)
	if len(evs) == 0 || evs[len(evs)-1].Message != "report to port failed for good: 404 Not Found" {
		t.Fatalf("events %+v", evs)
	}
}

func TestRunsOfPortalsWithoutReporterAreSkipped(t *testing.T) {
	w, st, p := setup(t)
	clock := sqlitetest.WithClock(st)
	w.Now = clock.Now
	addRun(t, st, "api", "x", "1", run.Success)
	drain(t, w, clock)
	if len(p.got) != 0 {
		t.Fatalf("api run reported to port: %v", p.got)
	}
}

func TestFinalStatusIsNotSentTwiceAfterALostAnswer(t *testing.T) {
	w, st, p := setup(t)
	clock := sqlitetest.WithClock(st)
	w.Now = clock.Now
	addRun(t, st, "port", "a", run.Success)
	p.lost["a"] = true
	drain(t, w, clock)
	if got := p.got["a"]; len(got) != 1 {
		t.Fatalf("run a received %v, want one final status", got)
	}
}

func TestRateLimitPausesTheWholePortal(t *testing.T) {
	w, st, p := setup(t)
	clock := sqlitetest.WithClock(st)
	w.Now = clock.Now
	w.Concurrency = 1
	addRun(t, st, "port", "a", "1")
	addRun(t, st, "port", "b", "1")
	p.failNext["a"] = []error{errLimited}
	p.resetAt = clock.T.Add(time.Minute)
	for i := 0; i < 3; i++ {
		if _, err := w.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(p.got["b"]) != 0 {
		t.Fatal("another run's report went to a rate-limited portal before the reset")
	}
	clock.Add(2 * time.Minute)
	drain(t, w, clock)
	if len(p.got["a"]) != 1 || len(p.got["b"]) != 1 {
		t.Fatalf("after the reset: %v", p.got)
	}
}

func TestFinalStatusWaitsWhenThePortalCannotSay(t *testing.T) {
	w, st, p := setup(t)
	clock := sqlitetest.WithClock(st)
	w.Now = clock.Now
	addRun(t, st, "port", "a", run.Success)
	p.lost["a"] = true
	p.finishedErr = errTransient
	if _, err := w.Tick(context.Background()); err != nil { // goes through, answer lost
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	if _, err := w.Tick(context.Background()); err != nil { // cannot check: must not resend
		t.Fatal(err)
	}
	if got := p.got["a"]; len(got) != 1 {
		t.Fatalf("final status sent %d times while its fate was unknown", len(got))
	}
	p.finishedErr = nil
	drain(t, w, clock)
	if got := p.got["a"]; len(got) != 1 {
		t.Fatalf("final status sent %d times", len(got))
	}
}
