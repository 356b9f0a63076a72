package outbox_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/postgres"
	"github.com/paved-idp/paved/internal/store/postgres/outbox"
	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
	"github.com/paved-idp/paved/internal/store/storetest"
)

// Two replicas on one database, each with claim loops of its own, never
// hold the same task at once: every task is handed out exactly once, a
// run's reports one at a time and in order, and one run per stack
// dispatches at a time, oldest first.
func TestReplicasNeverShareATask(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn := pgtest.DSN(t)
	replicas := []*postgres.Store{open(t, dsn), open(t, dsn)}
	const runs, reportsPerRun, stacks = 40, 5, 8
	t0 := time.Now().UTC()
	created := map[string][]string{} // stack -> run ids, oldest first
	for i := range runs {
		r := storetest.NewRun(fmt.Sprint("rep-", i), fmt.Sprint("svc", i%stacks), t0.Add(time.Duration(i)*time.Millisecond))
		ch := store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}
		for j := range reportsPerRun {
			ch.Report(run.Report{Log: fmt.Sprint(j)})
		}
		if _, _, err := replicas[i%2].CreateRun(ctx, r, ch); err != nil {
			t.Fatal(err)
		}
		created[r.Stack.Key()] = append(created[r.Stack.Key()], r.ID)
	}

	var mu sync.Mutex
	handed := map[int64]int{}      // task id -> times handed out
	reportHeld := map[string]int{} // run -> the report it holds now
	nextReport := map[string]int{} // run -> the report it must get next
	stackHeld := map[string]string{}
	dispatched := map[string][]string{}
	var reportsDone, dispatchesDone atomic.Int64
	fail := func(format string, args ...any) { t.Errorf(format, args...); cancel() }

	reports := func(s *postgres.Store) {
		for ctx.Err() == nil && reportsDone.Load() < runs*reportsPerRun {
			tasks, err := s.Claim(ctx, store.KindReport, time.Minute, 3)
			if err != nil {
				if ctx.Err() == nil {
					fail("claim reports: %v", err)
				}
				return
			}
			var ids []int64
			mu.Lock()
			for _, task := range tasks {
				handed[task.ID]++
				var rep run.Report
				mustJSON(t, task.Payload, &rep)
				if held, ok := reportHeld[task.RunID]; ok {
					fail("run %s got report %s while holding report %d", task.RunID, rep.Log, held)
				}
				if rep.Log != fmt.Sprint(nextReport[task.RunID]) {
					fail("run %s got report %s, want %d", task.RunID, rep.Log, nextReport[task.RunID])
				}
				nextReport[task.RunID]++
				ids = append(ids, task.ID)
			}
			// Let go before completing: once Complete commits, the next
			// report may go to the other replica at once.
			mu.Unlock()
			if err := s.Complete(ctx, ids...); err != nil {
				fail("complete reports: %v", err)
				return
			}
			reportsDone.Add(int64(len(ids)))
		}
	}
	dispatches := func(s *postgres.Store) {
		for ctx.Err() == nil && dispatchesDone.Load() < runs {
			tasks, err := s.Claim(ctx, store.KindDispatch, time.Minute, 2)
			if err != nil {
				if ctx.Err() == nil {
					fail("claim dispatches: %v", err)
				}
				return
			}
			for _, task := range tasks {
				r, err := s.Run(ctx, task.RunID)
				if err != nil {
					fail("run: %v", err)
					return
				}
				key := r.Stack.Key()
				mu.Lock()
				handed[task.ID]++
				if other, ok := stackHeld[key]; ok {
					fail("run %s dispatched while %s holds stack %s", r.ID, other, key)
				}
				stackHeld[key] = r.ID
				dispatched[key] = append(dispatched[key], r.ID)
				mu.Unlock()
				move := func(to run.State, last bool) {
					_, err := s.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
						if last {
							mu.Lock()
							delete(stackHeld, key)
							mu.Unlock()
						}
						return store.Change{}, r.MoveTo(to, time.Now())
					})
					if err != nil {
						fail("move %s to %s: %v", r.ID, to, err)
					}
				}
				move(run.Dispatching, false)
				move(run.Running, false)
				move(run.Succeeded, true)
				if err := s.Complete(ctx, task.ID); err != nil {
					fail("complete dispatch: %v", err)
					return
				}
				dispatchesDone.Add(1)
			}
		}
	}
	var wg sync.WaitGroup
	for _, s := range replicas {
		for range 3 {
			wg.Add(2)
			go func() { defer wg.Done(); reports(s) }()
			go func() { defer wg.Done(); dispatches(s) }()
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if ctx.Err() != nil {
		t.Fatalf("not done in time: %d reports, %d dispatches", reportsDone.Load(), dispatchesDone.Load())
	}
	if len(handed) != runs*reportsPerRun+runs {
		t.Fatalf("%d tasks handed out, want %d", len(handed), runs*reportsPerRun+runs)
	}
	for id, n := range handed {
		if n != 1 {
			t.Fatalf("task %d handed out %d times", id, n)
		}
	}
	for key, want := range created {
		if fmt.Sprint(dispatched[key]) != fmt.Sprint(want) {
			t.Fatalf("stack %s dispatched %v, want oldest first %v", key, dispatched[key], want)
		}
	}
	for _, s := range replicas {
		for _, kind := range []string{store.KindReport, store.KindDispatch} {
			if n, _ := s.Pending(ctx, kind); n != 0 {
				t.Fatalf("%d %s tasks left", n, kind)
			}
		}
	}
}

// A replica that claimed a task and died never completes it: when its lease
// runs out, another replica takes the task over, and the dead one's late
// word (had it come back) changes nothing harmful.
func TestLeaseRunsOutAndAnotherReplicaTakesOver(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	clockA, clockB := newClock(), newClock()
	a.SetClock(clockA.Now)
	b.SetClock(clockB.Now)
	r := storetest.NewRun("lease", "svc", clockA.Now())
	var ch store.Change
	ch.Report(run.Report{Log: "one"}).Report(run.Report{Log: "two"})
	ch.Tasks = append(ch.Tasks, store.NewTask{Kind: store.KindDispatch})
	if _, _, err := a.CreateRun(ctx, r, ch); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{store.KindReport, store.KindDispatch} {
		t.Run(kind, func(t *testing.T) {
			got, err := a.Claim(ctx, kind, time.Minute, 10)
			if err != nil || len(got) != 1 || got[0].Attempts != 1 {
				t.Fatalf("a claims %v, %v", got, err)
			}
			clockB.Set(clockA.Now().Add(30 * time.Second))
			if again, err := b.Claim(ctx, kind, time.Minute, 10); err != nil || len(again) != 0 {
				t.Fatalf("b claimed %v, %v while a's lease runs", again, err)
			}
			clockB.Set(clockA.Now().Add(61 * time.Second))
			taken, err := b.Claim(ctx, kind, time.Minute, 10)
			if err != nil || len(taken) != 1 || taken[0].ID != got[0].ID || taken[0].Attempts != 2 {
				t.Fatalf("after the lease b claims %v, %v; want task %d, attempt 2", taken, err, got[0].ID)
			}
			if err := b.Complete(ctx, taken[0].ID); err != nil {
				t.Fatal(err)
			}
			if err := a.Complete(ctx, got[0].ID); err != nil { // a comes back late
				t.Fatal(err)
			}
		})
	}
	// b's completion handed the run's second report to whoever claims next.
	next, err := a.Claim(ctx, store.KindReport, time.Minute, 10)
	if err != nil || len(next) != 1 {
		t.Fatalf("next report: %v, %v", next, err)
	}
	var rep run.Report
	mustJSON(t, next[0].Payload, &rep)
	if rep.Log != "two" {
		t.Fatalf("next report %q, want two", rep.Log)
	}
}

// A dispatch waiting for its stack is parked, and the run that lets the
// stack go wakes it in the same transaction. Should a wake-up be missed
// (here: the stack freed behind the store's back), the parked task is
// looked at again after parkFor.
func TestParkedDispatchWakes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := open(t, dsn)
	clock := newClock()
	s.SetClock(clock.Now)
	t0 := clock.Now()
	holder := storetest.NewRun("holder", "svc", t0)
	holder.State = run.Running
	waiting := []*run.Run{storetest.NewRun("w1", "svc", t0.Add(time.Millisecond)), storetest.NewRun("w2", "svc", t0.Add(2*time.Millisecond))}
	for _, r := range append([]*run.Run{holder}, waiting...) {
		if _, _, err := s.CreateRun(ctx, r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
			t.Fatal(err)
		}
	}
	// The holder's own task (a reconcile) may go; the others wait.
	got, err := s.Claim(ctx, store.KindDispatch, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].RunID != holder.ID {
		t.Fatalf("claimed %v, %v; want only the holder's", got, err)
	}
	if err := s.Complete(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, holder.ID, func(r *run.Run) (store.Change, error) { return store.Change{}, r.MoveTo(run.Succeeded, t0) }); err != nil {
		t.Fatal(err)
	}
	got, err = s.Claim(ctx, store.KindDispatch, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].RunID != waiting[0].ID {
		t.Fatalf("after the holder ended claimed %v, %v; want %s at once", got, err, waiting[0].ID)
	}
	if err := s.Complete(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	// w2 is parked behind w1 now. Free the stack behind the store's back.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE runs SET state = 'succeeded' WHERE id = $1`, waiting[0].ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Claim(ctx, store.KindDispatch, time.Minute, 10); len(got) != 0 {
		t.Fatalf("claimed %v before the parked task is due", got)
	}
	clock.Set(t0.Add(outbox.ParkFor + time.Second))
	got, err = s.Claim(ctx, store.KindDispatch, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].RunID != waiting[1].ID {
		t.Fatalf("after parkFor claimed %v, %v; want %s", got, err, waiting[1].ID)
	}
}

// A claim parks a dispatch only behind a run it can lock: while the run
// ahead is being changed (it may be letting the stack go, and its wake may
// already have looked at the stack), the dispatch is left due instead of
// parked; once the change commits, the next claim takes it or parks it. A
// dispatch with another run ahead that the claim can lock is parked all the
// same: that run cannot let the stack go before the claim commits.
func TestNoParkBehindARunBeingChanged(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s, conn := open(t, dsn), connect(t, dsn)
	t0 := time.Now().UTC().Add(-time.Hour)
	holder := runningHolder(t, s, t0)
	parked := func(id string) bool { t.Helper(); return dispatchParked(t, conn, id) }
	queue := func(i int) *run.Run {
		t.Helper()
		w := storetest.NewRun(fmt.Sprint("w", i), "svc", t0.Add(time.Duration(i+1)*time.Millisecond))
		if _, _, err := s.CreateRun(ctx, w, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
			t.Fatal(err)
		}
		return w
	}
	// Both waiting runs are written while every run ahead of them is being
	// changed, so neither is parked as it is written (TestDispatchParkedAsWritten):
	// the claims below meet them due.
	release := holdUpdate(t, s, holder.ID, false)
	waiting := []*run.Run{queue(0)}
	releaseFirst := holdUpdate(t, s, waiting[0].ID, false)
	waiting = append(waiting, queue(1))
	releaseFirst()
	if parked(waiting[0].ID) || parked(waiting[1].ID) {
		t.Fatal("a dispatch was parked as written behind runs being changed")
	}
	if got, err := s.Claim(ctx, store.KindDispatch, time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("claimed %v, %v while the stack is held", got, err)
	}
	if parked(waiting[0].ID) {
		t.Fatal("a dispatch was parked behind a run being changed")
	}
	if !parked(waiting[1].ID) {
		t.Fatal("a dispatch waiting behind a queued run the claim can lock was not parked")
	}
	release() // the holder keeps running: now the waiting are parked
	if got, err := s.Claim(ctx, store.KindDispatch, time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("claimed %v, %v while the stack is held", got, err)
	}
	if !parked(waiting[0].ID) || !parked(waiting[1].ID) {
		t.Fatal("the dispatches waiting behind a running run were not parked")
	}

	// The holder ends: its wake makes the first waiting due at once.
	holdUpdate(t, s, holder.ID, true)()
	got, err := s.Claim(ctx, store.KindDispatch, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].RunID != waiting[0].ID {
		t.Fatalf("after the holder ended claimed %v, %v; want %s", got, err, waiting[0].ID)
	}
}

// runningHolder stores a run running on stack svc, created at t0.
func runningHolder(t *testing.T, s *postgres.Store, t0 time.Time) *run.Run {
	t.Helper()
	holder := storetest.NewRun("holder", "svc", t0)
	holder.State = run.Running
	if _, _, err := s.CreateRun(context.Background(), holder, store.Change{}); err != nil {
		t.Fatal(err)
	}
	return holder
}

// holdUpdate holds run id's row lock inside the store's Update until the
// returned release is called, then ends the run (end) or leaves it as it is.
func holdUpdate(t *testing.T, s *postgres.Store, id string, end bool) (release func()) {
	t.Helper()
	locked, finish, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(finish) }) }) // a failing test lets the transaction go
	go func() {
		_, err := s.Update(context.Background(), id, func(r *run.Run) (store.Change, error) {
			close(locked)
			<-finish
			if !end {
				return store.Change{}, store.ErrNoChange
			}
			return store.Change{}, r.MoveTo(run.Succeeded, time.Now())
		})
		done <- err
	}()
	<-locked
	return func() {
		once.Do(func() { close(finish) })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// dispatchParked says whether run id's open dispatch task is parked.
func dispatchParked(t *testing.T, conn *pgx.Conn, id string) bool {
	t.Helper()
	var p bool
	if err := conn.QueryRow(context.Background(), `SELECT parked FROM outbox WHERE run_id = $1 AND kind = 'dispatch' AND done_at IS NULL`, id).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// A run queued behind a run that holds its stack has its dispatch parked
// as it is written, so that no claim need read it; but not while the run
// ahead is being changed (it may be letting the stack go): then the
// dispatch is left due for a claim to look at.
func TestDispatchParkedAsWritten(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s, conn := open(t, dsn), connect(t, dsn)
	t0 := time.Now().UTC().Add(-time.Hour)
	holder := runningHolder(t, s, t0)
	queue := func(name string, at time.Time) *run.Run {
		t.Helper()
		r := storetest.NewRun(name, "svc", at)
		r.State = run.Queued
		if _, _, err := s.CreateRun(ctx, r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	release := holdUpdate(t, s, holder.ID, false)
	first := queue("first", t0.Add(time.Millisecond))
	if dispatchParked(t, conn, first.ID) {
		t.Fatal("a dispatch was parked as written behind a run being changed")
	}
	release()
	second := queue("second", t0.Add(2*time.Millisecond))
	if !dispatchParked(t, conn, second.ID) {
		t.Fatal("a dispatch queued behind a running run was not parked as written")
	}
	// The holder ends: its wake makes the parked dispatch due again, and
	// the first goes.
	holdUpdate(t, s, holder.ID, true)()
	if dispatchParked(t, conn, second.ID) {
		t.Fatal("the holder's end left the second's dispatch parked")
	}
	got, err := s.Claim(ctx, store.KindDispatch, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].RunID != first.ID {
		t.Fatalf("after the holder ended claimed %v, %v; want %s", got, err, first.ID)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC()} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
