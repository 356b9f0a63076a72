// Package storetest is the conformance suite every run store passes.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Backend is the store under test.
type Backend interface {
	CreateRun(ctx context.Context, r *run.Run, ch store.Change) (*run.Run, bool, error)
	Update(ctx context.Context, id string, fn func(*run.Run) (store.Change, error)) (*run.Run, error)
	Run(ctx context.Context, id string) (*run.Run, error)
	RunByPortal(ctx context.Context, portal, portalRunID string) (*run.Run, error)
	RunByPipeline(ctx context.Context, pipelineID int64) (*run.Run, error)
	ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error)
	Events(ctx context.Context, id string) ([]run.Event, error)
	StackQueue(ctx context.Context, stackKey string) ([]string, error)
	StackDepth(ctx context.Context, stackKey string) (int, error)
	Claim(ctx context.Context, kind string, lease time.Duration, limit int) ([]store.Task, error)
	Complete(ctx context.Context, ids ...int64) error
	Retry(ctx context.Context, id int64, at time.Time, lastErr string) error
	Release(ctx context.Context, ids ...int64) error
	Pending(ctx context.Context, kind string) (int, error)
	Backlog(ctx context.Context, kind string) (store.Backlog, error)
	Ping(ctx context.Context) error
	Writable(ctx context.Context) error
	AppendLogs(ctx context.Context, id string, lines []string, max int) error
	Logs(ctx context.Context, id string, after int64, limit int) ([]store.LogLine, error)
}

// NewRun makes a queued run on the given stack, created at t.
func NewRun(portalRunID, service string, t time.Time) *run.Run {
	return &run.Run{
		ID:      run.NewID(),
		Request: run.Request{Portal: "port", PortalRunID: portalRunID, Action: "add-s3-bucket", Inputs: map[string]any{"bucketName": "b1"}},
		Stack:   run.Stack{Tenant: "acme", Environment: "dev", Service: service},
		State:   run.Queued, Project: "platform/provision", Ref: "main",
		CreatedAt: t, UpdatedAt: t,
	}
}

// Run runs the suite; open returns a fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Millisecond)

	t.Run("create is idempotent on the portal run id", func(t *testing.T) {
		s := open(t)
		a := NewRun("port-1", "svc", t0)
		got, created, err := s.CreateRun(ctx, a, *(&store.Change{}).Add("received"))
		if err != nil || !created || got.ID != a.ID {
			t.Fatalf("first create: %v %v %v", got, created, err)
		}
		b := NewRun("port-1", "svc", t0)
		got, created, err = s.CreateRun(ctx, b, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}})
		if err != nil || created || got.ID != a.ID {
			t.Fatalf("second create: got %+v created=%v err=%v; want the first run", got, created, err)
		}
		if n, _ := s.Pending(ctx, store.KindDispatch); n != 0 {
			t.Fatalf("duplicate delivery wrote %d dispatch tasks", n)
		}
		if _, err := s.Run(ctx, b.ID); !errors.Is(err, run.ErrNotFound) {
			t.Fatalf("second run stored: %v", err)
		}
	})

	t.Run("concurrent duplicate deliveries make one run", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		ids := make(chan string, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, _, err := s.CreateRun(ctx, NewRun("dup", "svc", t0), store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- r.ID
			}()
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		if len(seen) != 1 {
			t.Fatalf("got %d distinct runs, want 1", len(seen))
		}
		if n, _ := s.Pending(ctx, store.KindDispatch); n != 1 {
			t.Fatalf("got %d dispatch tasks, want 1", n)
		}
	})

	t.Run("update writes run, events and tasks together or not at all", func(t *testing.T) {
		s := open(t)
		r := NewRun("p", "svc", t0)
		if _, _, err := s.CreateRun(ctx, r, *(&store.Change{}).Add("received")); err != nil {
			t.Fatal(err)
		}
		_, err := s.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
			r.PipelineID = 7
			if err := r.MoveTo(run.Dispatching, t0); err != nil {
				return store.Change{}, err
			}
			var ch store.Change
			ch.Add("dispatching").Report(run.Report{Log: "triggering"})
			return ch, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// A failing update leaves nothing behind.
		boom := errors.New("boom")
		_, err = s.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
			r.State = run.Failed
			return store.Change{Events: []string{"never"}}, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		got, err := s.Run(ctx, r.ID)
		if err != nil || got.State != run.Dispatching || got.PipelineID != 7 {
			t.Fatalf("run = %+v, %v", got, err)
		}
		evs, err := s.Events(ctx, r.ID)
		if err != nil || len(evs) != 2 || evs[1].Message != "dispatching" || evs[1].State != run.Dispatching || evs[1].Seq != 2 {
			t.Fatalf("events = %+v, %v", evs, err)
		}
		if byPipe, err := s.RunByPipeline(ctx, 7); err != nil || byPipe.ID != r.ID {
			t.Fatalf("by pipeline: %v %v", byPipe, err)
		}
		if byPortal, err := s.RunByPortal(ctx, "port", "p"); err != nil || byPortal.ID != r.ID {
			t.Fatalf("by portal: %v %v", byPortal, err)
		}
		if _, err := s.Update(ctx, "r_missing", func(*run.Run) (store.Change, error) { return store.Change{}, nil }); !errors.Is(err, run.ErrNotFound) {
			t.Fatalf("update of a missing run: %v", err)
		}
		// ErrNoChange writes nothing.
		if _, err := s.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) { r.State = run.Failed; return store.Change{}, store.ErrNoChange }); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Run(ctx, r.ID); got.State != run.Dispatching {
			t.Fatalf("ErrNoChange wrote state %s", got.State)
		}
	})

	t.Run("reports are claimed one at a time per run, in order", func(t *testing.T) {
		s := open(t)
		a, b := NewRun("a", "svc-a", t0), NewRun("b", "svc-b", t0)
		for _, r := range []*run.Run{a, b} {
			var ch store.Change
			ch.Report(run.Report{Log: r.ID + " 1"}).Report(run.Report{Log: r.ID + " 2"})
			if _, _, err := s.CreateRun(ctx, r, ch); err != nil {
				t.Fatal(err)
			}
		}
		first, err := s.Claim(ctx, store.KindReport, time.Minute, 10)
		if err != nil || len(first) != 2 {
			t.Fatalf("claim = %d tasks, %v; want the head of each run", len(first), err)
		}
		if again, _ := s.Claim(ctx, store.KindReport, time.Minute, 10); len(again) != 0 {
			t.Fatalf("claimed %d tasks while the heads are leased", len(again))
		}
		for _, task := range first {
			var rep run.Report
			if err := json.Unmarshal(task.Payload, &rep); err != nil || rep.Log != task.RunID+" 1" || task.Attempts != 1 {
				t.Fatalf("head task %+v: %+v %v", task, rep, err)
			}
		}
		if err := s.Complete(ctx, first[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Retry(ctx, first[1].ID, time.Now().Add(-time.Second), "503"); err != nil {
			t.Fatal(err)
		}
		next, err := s.Claim(ctx, store.KindReport, time.Minute, 10)
		if err != nil || len(next) != 2 {
			t.Fatalf("second claim = %+v, %v", next, err)
		}
		for _, task := range next {
			var rep run.Report
			_ = json.Unmarshal(task.Payload, &rep)
			want := task.RunID + " 1"
			if task.RunID == first[0].RunID {
				want = task.RunID + " 2"
			}
			if rep.Log != want {
				t.Fatalf("claimed %q, want %q", rep.Log, want)
			}
		}
		if err := s.Release(ctx, next[0].ID, next[1].ID); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.Claim(ctx, store.KindReport, time.Minute, 10); len(again) != 2 {
			t.Fatalf("released tasks not claimable: %d", len(again))
		}
	})

	t.Run("one run per stack dispatches at a time, oldest first", func(t *testing.T) {
		s := open(t)
		runs := []*run.Run{NewRun("1", "svc", t0), NewRun("2", "svc", t0.Add(time.Millisecond)), NewRun("3", "other", t0.Add(2*time.Millisecond))}
		for _, r := range runs {
			if _, _, err := s.CreateRun(ctx, r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
				t.Fatal(err)
			}
		}
		claimed, err := s.Claim(ctx, store.KindDispatch, time.Minute, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := runIDs(claimed); fmt.Sprint(got) != fmt.Sprint([]string{runs[0].ID, runs[2].ID}) {
			t.Fatalf("claimed %v, want the first run of each stack", got)
		}
		q, err := s.StackQueue(ctx, runs[0].Stack.Key())
		if err != nil || fmt.Sprint(q) != fmt.Sprint([]string{runs[0].ID, runs[1].ID}) {
			t.Fatalf("stack queue %v, %v", q, err)
		}
		if n, err := s.StackDepth(ctx, runs[0].Stack.Key()); err != nil || n != 2 {
			t.Fatalf("stack depth %d, %v; want 2", n, err)
		}
		// The first run starts; the second still waits until it ends.
		move := func(id string, to run.State) {
			t.Helper()
			if _, err := s.Update(ctx, id, func(r *run.Run) (store.Change, error) { return store.Change{}, r.MoveTo(to, time.Now()) }); err != nil {
				t.Fatal(err)
			}
		}
		move(runs[0].ID, run.Dispatching)
		_ = s.Complete(ctx, claimed[0].ID)
		if c, _ := s.Claim(ctx, store.KindDispatch, time.Minute, 10); len(c) != 0 {
			t.Fatalf("claimed %v while the stack is busy", runIDs(c))
		}
		move(runs[0].ID, run.Running)
		if n, err := s.StackDepth(ctx, runs[0].Stack.Key()); err != nil || n != 2 {
			t.Fatalf("stack depth with one running, one queued: %d, %v; want 2", n, err)
		}
		move(runs[0].ID, run.Succeeded)
		if n, err := s.StackDepth(ctx, runs[0].Stack.Key()); err != nil || n != 1 {
			t.Fatalf("stack depth after the first run ended: %d, %v; want 1", n, err)
		}
		if n, err := s.StackDepth(ctx, "acme/dev/no-such-service"); err != nil || n != 0 {
			t.Fatalf("depth of a stack never used: %d, %v; want 0", n, err)
		}
		c, _ := s.Claim(ctx, store.KindDispatch, time.Minute, 10)
		if fmt.Sprint(runIDs(c)) != fmt.Sprint([]string{runs[1].ID}) {
			t.Fatalf("after the first run ended claimed %v, want the second", runIDs(c))
		}
	})

	t.Run("a winding-down pipeline holds its stack", func(t *testing.T) { stackHeldByWindingDownPipeline(t, open) })

	t.Run("list filters by state and age", func(t *testing.T) {
		s := open(t)
		a, b := NewRun("a", "x", t0), NewRun("b", "y", t0.Add(time.Millisecond))
		b.State = run.Running
		for _, r := range []*run.Run{a, b} {
			if _, _, err := s.CreateRun(ctx, r, store.Change{}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.ListRuns(ctx, store.Query{})
		if err != nil || len(all) != 2 || all[0].ID != b.ID {
			t.Fatalf("list all = %v, %v", runIDsOf(all), err)
		}
		running, _ := s.ListRuns(ctx, store.Query{States: []run.State{run.Running}})
		if len(running) != 1 || running[0].ID != b.ID {
			t.Fatalf("running = %v", runIDsOf(running))
		}
		old, _ := s.ListRuns(ctx, store.Query{States: []run.State{run.Running}, UpdatedBefore: t0})
		if len(old) != 0 {
			t.Fatalf("updated before t0 = %v", runIDsOf(old))
		}
		if notPort, _ := s.ListRuns(ctx, store.Query{NotPortal: "port"}); len(notPort) != 0 {
			t.Fatalf("runs not of port = %v", runIDsOf(notPort))
		}
		if notPaved, _ := s.ListRuns(ctx, store.Query{NotPortal: run.PortalPaved}); len(notPaved) != 2 {
			t.Fatalf("runs not of paved = %v", runIDsOf(notPaved))
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Writable(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("list filters by stack and expiry", func(t *testing.T) { stackAndExpiry(t, open) })
	t.Run("pages by id reach every run", func(t *testing.T) { pagesByID(t, open) })
	t.Run("batches complete together and keep each run's order", func(t *testing.T) { batchComplete(t, open) })
	t.Run("log lines are rows, capped per run", func(t *testing.T) { logLines(t, open) })
	filters(t, open)
}

// pagesByID checks that ByID/AfterID paging visits every matching run
// exactly once, and that HasPipeline keeps only runs with a pipeline.
func pagesByID(t *testing.T, open func(t *testing.T) Backend) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	want := map[string]bool{}
	for i := range 23 {
		r := NewRun(fmt.Sprint("page-", i), fmt.Sprint("svc", i), t0)
		r.State = run.Running
		if i%2 == 0 {
			r.PipelineID = int64(100 + i)
			want[r.ID] = true
		}
		if _, _, err := s.CreateRun(ctx, r, store.Change{}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		page, err := s.ListRuns(ctx, store.Query{States: []run.State{run.Running}, HasPipeline: true, ByID: true, AfterID: after, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if seen[r.ID] || !want[r.ID] {
				t.Fatalf("run %s seen twice or without a pipeline", r.ID)
			}
			if r.ID <= after {
				t.Fatalf("page not in id order: %s after %s", r.ID, after)
			}
			seen[r.ID] = true
			after = r.ID
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("paging saw %d runs, want %d", len(seen), len(want))
	}
}

// logLines checks the log callbacks' storage: rows in order, one report per
// line, nothing stored past the cap or after the run ended.
func logLines(t *testing.T, open func(t *testing.T) Backend) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	r := NewRun("logs", "svc", t0)
	r.State = run.Running
	if _, _, err := s.CreateRun(ctx, r, store.Change{}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, r.ID, []string{"one", "two"}, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, r.ID, []string{"three", "four"}, 3); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("past the cap: %v, want ErrLimit", err)
	}
	if err := s.AppendLogs(ctx, r.ID, []string{"three"}, 3); err != nil {
		t.Fatal(err)
	}
	lines, err := s.Logs(ctx, r.ID, 0, 10)
	if err != nil || len(lines) != 3 || lines[0].Line != "one" || lines[2].Line != "three" || lines[2].Seq != 3 {
		t.Fatalf("lines = %+v, %v", lines, err)
	}
	if tail, _ := s.Logs(ctx, r.ID, 2, 10); len(tail) != 1 || tail[0].Line != "three" {
		t.Fatalf("lines after 2 = %+v", tail)
	}
	if n, _ := s.Pending(ctx, store.KindReport); n != 2 {
		t.Fatalf("%d report tasks, want one per post that stored lines", n)
	}
	if err := s.AppendLogs(ctx, "r_missing", []string{"x"}, 3); !errors.Is(err, run.ErrNotFound) {
		t.Fatalf("missing run: %v", err)
	}
	if _, err := s.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) { return store.Change{}, r.MoveTo(run.Succeeded, t0) }); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, r.ID, []string{"late"}, 0); !errors.Is(err, store.ErrFinished) {
		t.Fatalf("after the end: %v, want ErrFinished", err)
	}
}

func runIDs(ts []store.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.RunID)
	}
	return out
}

func runIDsOf(rs []*run.Run) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// stackHeldByWindingDownPipeline checks that a canceled run whose
// pipeline still runs keeps its stack.
func stackHeldByWindingDownPipeline(t *testing.T, open func(t *testing.T) Backend) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	a, b := NewRun("a", "svc", t0), NewRun("b", "svc", t0.Add(time.Millisecond))
	a.State, a.PipelineID, a.PipelineStatus = run.Canceled, 5, "running"
	for _, r := range []*run.Run{a, b} {
		if _, _, err := s.CreateRun(ctx, r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
			t.Fatal(err)
		}
	}
	claimed, _ := s.Claim(ctx, store.KindDispatch, time.Minute, 10)
	for _, c := range claimed {
		if c.RunID == b.ID {
			t.Fatal("dispatched while a canceled run's pipeline still runs on the stack")
		}
	}
	active, err := s.ListRuns(ctx, store.Query{States: []run.State{run.Canceled}, ActivePipeline: true, OldestFirst: true})
	if err != nil || len(active) != 1 || active[0].ID != a.ID {
		t.Fatalf("active pipelines = %v, %v", runIDsOf(active), err)
	}
	if _, err := s.Update(ctx, a.ID, func(r *run.Run) (store.Change, error) { r.PipelineStatus = "canceled"; return store.Change{}, nil }); err != nil {
		t.Fatal(err)
	}
	claimed, _ = s.Claim(ctx, store.KindDispatch, time.Minute, 10)
	if len(runIDs(claimed)) == 0 || runIDs(claimed)[len(claimed)-1] != b.ID {
		t.Fatalf("after the pipeline ended claimed %v, want %s", runIDs(claimed), b.ID)
	}
}

// batchComplete checks that one Complete call finishes many tasks, that
// each run's next task then heads its line, that a batch claim takes at
// most one task per run, and that completing twice is harmless.
func batchComplete(t *testing.T, open func(t *testing.T) Backend) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	for i := range 5 {
		r := NewRun(fmt.Sprint("batch-", i), fmt.Sprint("svc", i), t0)
		var ch store.Change
		for j := range 3 {
			ch.Report(run.Report{Log: fmt.Sprint(j)})
		}
		if _, _, err := s.CreateRun(ctx, r, ch); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		tasks, err := s.Claim(ctx, store.KindReport, time.Minute, 100)
		if err != nil || len(tasks) != 5 {
			t.Fatalf("round %d: claimed %d, %v; want one per run", round, len(tasks), err)
		}
		var done []int64
		for _, task := range tasks {
			var rep run.Report
			if err := json.Unmarshal(task.Payload, &rep); err != nil || rep.Log != fmt.Sprint(round) {
				t.Fatalf("round %d: run %s got report %q, want %d (order kept)", round, task.RunID, rep.Log, round)
			}
			done = append(done, task.ID)
		}
		if err := s.Complete(ctx, done...); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, done...); err != nil {
			t.Fatalf("completing twice: %v", err)
		}
	}
	if n, _ := s.Pending(ctx, store.KindReport); n != 0 {
		t.Fatalf("%d reports left", n)
	}
}

// stackAndExpiry: Query.Stack keeps one stack's runs, Query.Expiring the
// runs holding an expiry, and an update that clears the expiry drops the
// run from the expiring ones.
func stackAndExpiry(t *testing.T, open func(t *testing.T) Backend) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a, b, c := NewRun("a", "x", t0), NewRun("b", "y", t0.Add(time.Millisecond)), NewRun("c", "x", t0.Add(2*time.Millisecond))
	b.ExpiresAt = t0.Add(time.Hour)
	for _, r := range []*run.Run{a, b, c} {
		if _, _, err := s.CreateRun(ctx, r, store.Change{}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.ListRuns(ctx, store.Query{Stack: a.Stack.Key()}); err != nil || fmt.Sprint(runIDsOf(got)) != fmt.Sprint([]string{c.ID, a.ID}) {
		t.Fatalf("runs of stack %s = %v, %v; want %v", a.Stack.Key(), runIDsOf(got), err, []string{c.ID, a.ID})
	}
	got, err := s.ListRuns(ctx, store.Query{Expiring: true})
	if err != nil || len(got) != 1 || got[0].ID != b.ID || !got[0].ExpiresAt.Equal(b.ExpiresAt) {
		t.Fatalf("expiring runs = %v, %v; want %s expiring at %s", runIDsOf(got), err, b.ID, b.ExpiresAt)
	}
	if _, err := s.Update(ctx, b.ID, func(r *run.Run) (store.Change, error) {
		r.ExpiresAt = time.Time{}
		return store.Change{Events: []string{"expiry cleared"}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ListRuns(ctx, store.Query{Expiring: true}); err != nil || len(got) != 0 {
		t.Fatalf("expiring runs after the expiry was cleared = %v, %v; want none", runIDsOf(got), err)
	}
}
