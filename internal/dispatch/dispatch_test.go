package dispatch

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
	"github.com/paved-idp/paved/internal/store/storetest"
	"github.com/paved-idp/paved/internal/track"
	"github.com/paved-idp/paved/internal/waitfor"
)

type fixture struct {
	w   *Worker
	st  *sqlite.Store
	sim *gitlabsim.Sim
	gl  *gitlab.Client
}

func setup(t *testing.T, cfg gitlabsim.Config) *fixture {
	t.Helper()
	st := sqlitetest.Open(t)
	cfg.Token = "tok"
	if cfg.Decide == nil {
		cfg.Decide = func(gitlabsim.Pipeline) gitlabsim.Outcome {
			return gitlabsim.Outcome{Status: "success", Running: time.Hour}
		}
	}
	sim := gitlabsim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); srv.Close() })
	gl, err := gitlab.New(srv.URL, "tok", gitlab.Options{Retries: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load("../../actions")
	if err != nil {
		t.Fatal(err)
	}
	tr := &track.Tracker{Store: st, Pipelines: gl, Catalog: cat, Log: zap.NewNop(), PollInterval: time.Minute}
	w := &Worker{Store: st, Queue: st, Pipelines: gl, Adopter: tr, Log: zap.NewNop(), PublicURL: "https://paved.test", RunTokenKey: []byte("k"), Interval: time.Hour, Lease: time.Minute}
	return &fixture{w: w, st: st, sim: sim, gl: gl}
}

func (f *fixture) queue(t *testing.T, portRunID string) *run.Run {
	t.Helper()
	r := storetest.NewRun(portRunID, "checkout", time.Now().UTC())
	r.Request.User = run.User{Email: "dana@acme.example"}
	if _, _, err := f.st.CreateRun(context.Background(), r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) tick(t *testing.T) {
	t.Helper()
	if _, err := f.w.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) get(t *testing.T, id string) *run.Run {
	t.Helper()
	r, err := f.st.Run(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDispatchTriggersOncePassingInputsAsVariables(t *testing.T) {
	f := setup(t, gitlabsim.Config{})
	r := f.queue(t, "p1")
	f.tick(t)
	got := f.get(t, r.ID)
	if got.State != run.Running || got.PipelineID == 0 || got.PipelineURL == "" || got.DispatchedAt.IsZero() {
		t.Fatalf("run after dispatch: %+v", got)
	}
	pipes := f.sim.Pipelines()
	if len(pipes) != 1 {
		t.Fatalf("%d pipelines", len(pipes))
	}
	p := pipes[0]
	if tok, _ := p.Var("PAVED_RUN_TOKEN"); !run.ValidToken([]byte("k"), r.ID, tok) {
		t.Fatal("PAVED_RUN_TOKEN does not open the run")
	}
	var req run.PipelineRequest
	raw, _ := p.Var("PAVED_REQUEST")
	if err := json.Unmarshal([]byte(raw), &req); err != nil || req.RunID != r.ID || req.Inputs["bucketName"] != "b1" || req.Stack.Key() != "acme-dev-checkout" {
		t.Fatalf("PAVED_REQUEST = %s (%v)", raw, err)
	}
	if url, _ := p.Var("PAVED_URL"); url != "https://paved.test" {
		t.Fatalf("PAVED_URL = %q", url)
	}
	// The task is done: more ticks trigger nothing.
	f.tick(t)
	f.tick(t)
	if n := f.sim.CreateCalls(); n != 1 {
		t.Fatalf("%d create calls, want 1", n)
	}
}

func TestCrashAfterTriggerIsReconciledNotRetriggered(t *testing.T) {
	f := setup(t, gitlabsim.Config{})
	ctx := context.Background()
	r := f.queue(t, "p1")
	// A worker marked the run dispatching and triggered, then died before
	// recording the pipeline: the task's lease runs out and it is claimed again.
	if _, err := f.st.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
		r.DispatchedAt = time.Now().UTC()
		return store.Change{}, r.MoveTo(run.Dispatching, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	p, err := f.gl.Trigger(ctx, r.Project, r.Ref, []gitlab.Variable{{Key: "PAVED_RUN_ID", Value: r.ID}})
	if err != nil {
		t.Fatal(err)
	}
	f.tick(t)
	got := f.get(t, r.ID)
	if got.State != run.Running || got.PipelineID != p.ID {
		t.Fatalf("run = %s pipeline %d, want running with adopted pipeline %d", got.State, got.PipelineID, p.ID)
	}
	if n := f.sim.CountByRunID(r.ID); n != 1 {
		t.Fatalf("%d pipelines for the run, want 1", n)
	}
	evs, _ := f.st.Events(ctx, r.ID)
	if !strings.Contains(evs[len(evs)-1].Message, "adopted") {
		t.Fatalf("last event %q does not say the pipeline was adopted", evs[len(evs)-1].Message)
	}
}

func TestLostTriggerAnswerIsReconciledAfterItSettles(t *testing.T) {
	// GitLab creates the pipeline but the answer is lost (502).
	f := setup(t, gitlabsim.Config{Faults: gitlabsim.Faults{LostCreateRate: 1}})
	ctx := context.Background()
	clock := time.Now().UTC()
	f.w.Now = func() time.Time { return clock }
	f.st.SetClock(f.w.Now)
	f.w.Settle = time.Minute
	r := f.queue(t, "p1")
	f.tick(t)
	if got := f.get(t, r.ID); got.State != run.Dispatching || got.TriggeredAt.IsZero() {
		t.Fatalf("after a lost answer the run is %s (triggered %v), want dispatching", got.State, got.TriggeredAt)
	}
	f.sim.SetFaults(gitlabsim.Faults{})
	clock = clock.Add(30 * time.Second)
	if n, _ := f.w.Tick(ctx); n != 0 {
		t.Fatal("looked for the pipeline before the trigger settled")
	}
	clock = clock.Add(time.Minute)
	f.tick(t)
	if got := f.get(t, r.ID); got.State != run.Running {
		t.Fatalf("run %s, want running", got.State)
	}
	if n := f.sim.CountByRunID(r.ID); n != 1 {
		t.Fatalf("%d pipelines for the run, want exactly 1", n)
	}
}

// GitLab created the pipeline but the answer was lost, every hook was
// lost, and the pipeline finished before reconcile: adopting it finishes
// the run at once (it must not stay running with a finished pipeline, nor
// time out and have its finished pipeline "canceled").
func TestReconcileOfAFinishedPipelineFinishesTheRun(t *testing.T) {
	f := setup(t, gitlabsim.Config{Faults: gitlabsim.Faults{LostCreateRate: 1}, Decide: func(gitlabsim.Pipeline) gitlabsim.Outcome {
		return gitlabsim.Outcome{Status: "success"}
	}})
	ctx := context.Background()
	clock := time.Now().UTC()
	f.w.Now = func() time.Time { return clock }
	f.st.SetClock(f.w.Now)
	f.w.Settle = time.Minute
	r := f.queue(t, "p1")
	f.tick(t)
	f.sim.SetFaults(gitlabsim.Faults{})
	waitfor.Until(t, "the lost pipeline to finish", func() bool {
		ps := f.sim.Pipelines()
		return len(ps) == 1 && ps[0].Status == "success"
	})
	clock = clock.Add(2 * time.Minute)
	f.tick(t)
	got := f.get(t, r.ID)
	if got.State != run.Succeeded || got.PipelineStatus != "success" {
		t.Fatalf("run %s with pipeline %s, want succeeded", got.State, got.PipelineStatus)
	}
	if n, _ := f.st.Pending(ctx, store.KindCancel); n != 0 {
		t.Fatalf("%d cancel tasks for a finished pipeline", n)
	}
	reps := sqlitetest.Reports(t, f.st)
	if last := reps[len(reps)-1]; last.Final != run.Success {
		t.Fatalf("last report %+v, want the final SUCCESS", last)
	}
}

func TestSecondPipelineFromARaceIsCanceled(t *testing.T) {
	f := setup(t, gitlabsim.Config{})
	ctx := context.Background()
	r := f.queue(t, "p1")
	// The webhook of an earlier attempt's pipeline is recorded while this
	// trigger is in flight.
	var first gitlab.Pipeline
	f.w.Pipelines = interceptTrigger{Pipelines: f.gl, before: func() {
		var err error
		if first, err = f.gl.Trigger(ctx, r.Project, r.Ref, []gitlab.Variable{{Key: "PAVED_RUN_ID", Value: r.ID}}); err != nil {
			t.Error(err)
		}
		_, err = f.st.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
			r.PipelineID = first.ID
			return store.Change{}, r.MoveTo(run.Running, time.Now())
		})
		if err != nil {
			t.Error(err)
		}
	}}
	f.tick(t) // triggers a second pipeline, sees the first recorded, queues its cancel
	f.tick(t) // cancels it
	if got := f.get(t, r.ID); got.PipelineID != first.ID || got.State != run.Running {
		t.Fatalf("run %s pipeline %d, want running with #%d", got.State, got.PipelineID, first.ID)
	}
	var canceled, live int
	for _, p := range f.sim.Pipelines() {
		if p.Status == gitlabsim.StatusCanceled {
			canceled++
		} else {
			live++
		}
	}
	if canceled != 1 || live != 1 {
		t.Fatalf("%d canceled and %d live pipelines, want 1 and 1", canceled, live)
	}
}

func TestPermanentRefusalFailsTheRun(t *testing.T) {
	f := setup(t, gitlabsim.Config{Projects: []gitlabsim.Project{{ID: 1, Path: "other/project"}}})
	r := f.queue(t, "p1")
	f.tick(t)
	got := f.get(t, r.ID)
	if got.State != run.Failed || len(got.Reasons) != 1 || !strings.Contains(got.Reasons[0], "GitLab refused") {
		t.Fatalf("run = %s %v, want failed saying GitLab refused", got.State, got.Reasons)
	}
	if n, _ := f.st.Pending(context.Background(), store.KindDispatch); n != 0 {
		t.Fatalf("%d dispatch tasks left", n)
	}
}

func TestCanceledRunIsNotDispatched(t *testing.T) {
	f := setup(t, gitlabsim.Config{})
	r := f.queue(t, "p1")
	if _, err := f.st.Update(context.Background(), r.ID, func(r *run.Run) (store.Change, error) {
		return store.Change{}, r.MoveTo(run.Canceled, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	f.tick(t)
	if n := f.sim.CreateCalls(); n != 0 {
		t.Fatalf("a canceled run triggered %d pipelines", n)
	}
}

func TestCancelTaskStopsThePipeline(t *testing.T) {
	f := setup(t, gitlabsim.Config{})
	ctx := context.Background()
	r := f.queue(t, "p1")
	f.tick(t)
	// The run is canceled while its pipeline runs.
	if _, err := f.st.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
		return store.Change{Tasks: []store.NewTask{{Kind: store.KindCancel}}}, r.MoveTo(run.Canceled, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	f.tick(t)
	p, _ := f.sim.Pipeline(f.get(t, r.ID).PipelineID)
	if p.Status != gitlabsim.StatusCanceled {
		t.Fatalf("pipeline %s, want canceled", p.Status)
	}
}

func TestRunCanceledDuringTriggerHasItsPipelineCanceled(t *testing.T) {
	f := setup(t, gitlabsim.Config{})
	ctx := context.Background()
	r := f.queue(t, "p1")
	// Cancel lands between "dispatching" and the trigger's answer: the cancel
	// task finds nothing yet, then the trigger's pipeline must be stopped.
	f.w.Pipelines = interceptTrigger{Pipelines: f.gl, before: func() {
		_, err := f.st.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
			return store.Change{}, r.MoveTo(run.Canceled, time.Now())
		})
		if err != nil {
			t.Error(err)
		}
	}}
	f.tick(t) // triggers, sees the run canceled, queues a cancel task
	f.tick(t) // runs the cancel task
	got := f.get(t, r.ID)
	if got.State != run.Canceled || got.PipelineID == 0 {
		t.Fatalf("run %s pipeline %d", got.State, got.PipelineID)
	}
	if p, _ := f.sim.Pipeline(got.PipelineID); p.Status != gitlabsim.StatusCanceled {
		t.Fatalf("late pipeline is %s, want canceled", p.Status)
	}
}

type interceptTrigger struct {
	Pipelines
	before func()
}

func (i interceptTrigger) Trigger(ctx context.Context, project, ref string, vars []gitlab.Variable) (gitlab.Pipeline, error) {
	i.before()
	return i.Pipelines.Trigger(ctx, project, ref, vars)
}

func TestDeadlineIsSetAtDispatch(t *testing.T) {
	f := setup(t, gitlabsim.Config{})
	r := storetest.NewRun("p1", "svc", time.Now().UTC())
	r.Timeout = 20 * time.Minute
	if _, _, err := f.st.CreateRun(context.Background(), r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
		t.Fatal(err)
	}
	f.tick(t)
	got := f.get(t, r.ID)
	if d := got.Deadline.Sub(got.DispatchedAt); d != 20*time.Minute {
		t.Fatalf("deadline %v after dispatch, want 20m", d)
	}
}

func TestShutdownReleasesUnfinishedTasks(t *testing.T) {
	f := setup(t, gitlabsim.Config{})
	for _, id := range []string{"a", "b"} {
		r := storetest.NewRun(id, "svc-"+id, time.Now().UTC())
		if _, _, err := f.st.CreateRun(context.Background(), r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
			t.Fatal(err)
		}
	}
	// The drain runs out while the first trigger is in flight.
	live, stop := context.WithCancel(context.Background())
	f.w.Pipelines = interceptTrigger{Pipelines: f.gl, before: stop}
	if _, err := f.w.Tick(live); err != nil {
		t.Fatal(err)
	}
	// The first trigger ran with a context canceled under it; both tasks are back.
	tasks, err := f.st.Claim(context.Background(), store.KindDispatch, time.Minute, 10)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("claimable after shutdown: %d tasks, %v; want both released", len(tasks), err)
	}
}

func TestQueuedRunsLearnTheirNewPlace(t *testing.T) {
	f := setup(t, gitlabsim.Config{})
	ctx := context.Background()
	var runs []*run.Run
	for i, id := range []string{"a", "b", "c"} {
		r := storetest.NewRun(id, "checkout", time.Now().UTC().Add(time.Duration(i)*time.Millisecond))
		r.QueueAhead = i
		if _, _, err := f.st.CreateRun(ctx, r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	f.tick(t) // a starts; b and c keep their places
	if _, err := f.st.Update(ctx, runs[0].ID, func(r *run.Run) (store.Change, error) {
		return store.Change{}, r.MoveTo(run.Succeeded, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	f.tick(t) // b starts; c moves up
	got := f.get(t, runs[2].ID)
	if got.State != run.Queued || got.QueueAhead != 1 {
		t.Fatalf("c is %s with %d ahead, want queued with 1", got.State, got.QueueAhead)
	}
	var labels []string
	for _, rep := range sqlitetest.Reports(t, f.st) {
		if rep.StatusLabel != "" {
			labels = append(labels, rep.StatusLabel)
		}
	}
	if !slices.Contains(labels, "Queued: 1 run(s) ahead on acme-dev-checkout") {
		t.Fatalf("labels %q lack c's new place", labels)
	}
}

// interceptFind runs during before a reconcile's search answers.
type interceptFind struct {
	Pipelines
	during func()
}

func (i interceptFind) FindByRunID(ctx context.Context, project, ref string, since time.Time, runID string, after int64) (gitlab.Pipeline, bool, error) {
	p, found, err := i.Pipelines.FindByRunID(ctx, project, ref, since, runID, after)
	i.during()
	return p, found, err
}

// A worker whose lease ran out mid-reconcile must not trigger when another
// worker, which claimed the task after it, recorded a trigger meanwhile.
func TestSecondWorkerOnAnExpiredLeaseDoesNotTriggerTwice(t *testing.T) {
	f := setup(t, gitlabsim.Config{})
	ctx := context.Background()
	r := f.queue(t, "p1")
	old := time.Now().UTC().Add(-time.Hour)
	if _, err := f.st.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
		r.DispatchedAt, r.TriggeredAt = old, old
		return store.Change{}, r.MoveTo(run.Dispatching, old)
	}); err != nil {
		t.Fatal(err)
	}
	f.w.Pipelines = interceptFind{Pipelines: f.gl, during: func() {
		// The other worker records its trigger attempt now.
		if _, err := f.st.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
			r.TriggeredAt = time.Now().UTC()
			return store.Change{}, nil
		}); err != nil {
			t.Error(err)
		}
	}}
	f.tick(t)
	if n := f.sim.CountByRunID(r.ID); n != 0 {
		t.Fatalf("%d pipelines triggered by the worker that lost the race, want 0", n)
	}
	if got := f.get(t, r.ID); got.State != run.Dispatching {
		t.Fatalf("run %s, want still dispatching (the other worker's trigger is in flight)", got.State)
	}
}

// A run whose trigger (and then reconcile) meets a 5xx again and again is
// tried again every Settle, not after a backoff that grows with its
// attempts: GitLab answered, so the wait is only for its state to settle.
func TestFailedTriggersRetryEverySettle(t *testing.T) {
	f := setup(t, gitlabsim.Config{Faults: gitlabsim.Faults{ServerErrorRate: 1}})
	ctx := context.Background()
	clock := time.Now().UTC()
	f.w.Now = func() time.Time { return clock }
	f.st.SetClock(f.w.Now)
	f.w.Settle = 2 * time.Second
	r := f.queue(t, "p1")
	for attempt := 1; attempt <= 6; attempt++ {
		if n, _ := f.w.Tick(ctx); n != 1 {
			t.Fatalf("attempt %d: %d tasks taken, want the run's dispatch", attempt, n)
		}
		clock = clock.Add(f.w.Settle - time.Millisecond)
		if n, _ := f.w.Tick(ctx); n != 0 {
			t.Fatalf("attempt %d: tried again before Settle", attempt)
		}
		clock = clock.Add(time.Millisecond)
	}
	f.sim.SetFaults(gitlabsim.Faults{})
	f.tick(t)
	if got := f.get(t, r.ID); got.State != run.Running || f.sim.CountByRunID(r.ID) != 1 {
		t.Fatalf("after GitLab recovered: run %s with %d pipelines, want running with 1", got.State, f.sim.CountByRunID(r.ID))
	}
}

type guard string

func (g guard) Obsolete(context.Context, *run.Run) (string, error) { return string(g), nil }

// A run its Guard finds no longer wanted at dispatch ends canceled with the
// reason, and triggers nothing; one it lets go is triggered.
func TestGuardStopsAnObsoleteRun(t *testing.T) {
	f := setup(t, gitlabsim.Config{})
	f.w.Guard = guard("stack acme-dev-x was extended")
	r := f.queue(t, "p1")
	f.tick(t)
	if got := f.get(t, r.ID); got.State != run.Canceled || len(got.Reasons) != 1 || got.Reasons[0] != "stack acme-dev-x was extended" {
		t.Fatalf("run = %s %v, want canceled with the guard's reason", got.State, got.Reasons)
	}
	if n := f.sim.CreateCalls(); n != 0 {
		t.Fatalf("an obsolete run triggered %d pipelines", n)
	}
	f.w.Guard = guard("")
	r2 := f.queue(t, "p2")
	f.tick(t)
	if n := f.sim.CreateCalls(); n != 1 || f.get(t, r2.ID).State != run.Running {
		t.Fatalf("a wanted run: %d pipelines, state %s", n, f.get(t, r2.ID).State)
	}
}
