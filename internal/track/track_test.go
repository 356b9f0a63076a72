package track

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
	"github.com/paved-idp/paved/internal/store/storetest"
)

type fakePipelines map[int64]gitlab.Pipeline

func (f fakePipelines) Pipeline(_ context.Context, _ string, id int64) (gitlab.Pipeline, error) {
	p, ok := f[id]
	if !ok {
		return p, errors.New("404 Not found")
	}
	return p, nil
}

func setup(t *testing.T) (*Tracker, *sqlite.Store, fakePipelines) {
	t.Helper()
	st := sqlitetest.Open(t)
	cat, err := catalog.Load("../../actions")
	if err != nil {
		t.Fatal(err)
	}
	pipes := fakePipelines{}
	return &Tracker{Store: st, Pipelines: pipes, Catalog: cat, Log: zap.NewNop(), PollInterval: time.Minute}, st, pipes
}

// running stores a run whose pipeline 42 is running.
func running(t *testing.T, st *sqlite.Store, state run.State) *run.Run {
	t.Helper()
	r := storetest.NewRun("p-"+string(state), "checkout", time.Now().UTC())
	r.State, r.Team = state, "payments"
	r.Request.Inputs = map[string]any{"tenant": "acme", "environment": "dev", "bucketName": "receipts"}
	if state == run.Running {
		r.PipelineID, r.PipelineURL, r.PipelineStatus = 42, "https://gitlab.test/p/-/pipelines/42", "created"
	}
	if _, _, err := st.CreateRun(context.Background(), r, store.Change{}); err != nil {
		t.Fatal(err)
	}
	return r
}

func reports(t *testing.T, st *sqlite.Store) []run.Report { return sqlitetest.Reports(t, st) }

func TestSuccessWritesTheEntityThenTheFinalStatus(t *testing.T) {
	tr, st, _ := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Running)
	if err := tr.RecordOutputs(ctx, r.ID, map[string]any{"region": "eu-west-1", "buckets": map[string]any{
		"receipts": map[string]any{"name": "acme-dev-checkout-receipts", "arn": "arn:aws:s3:::acme-dev-checkout-receipts"}}}); err != nil {
		t.Fatal(err)
	}
	for _, status := range []string{"pending", "running", "running", "success", "running"} {
		if err := tr.HandleHook(ctx, gitlab.HookEvent{PipelineID: 42, Status: status, Variables: map[string]string{"PAVED_RUN_ID": r.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := st.Run(ctx, r.ID)
	if got.State != run.Succeeded || got.PipelineStatus != "success" {
		t.Fatalf("run %s / %s, want succeeded", got.State, got.PipelineStatus)
	}
	reps := reports(t, st)
	var kinds []string
	for _, rep := range reps {
		switch {
		case rep.Entity != nil:
			kinds = append(kinds, "entity")
			if rep.Entity.Blueprint != "s3_bucket" || rep.Entity.Properties["arn"] != "arn:aws:s3:::acme-dev-checkout-receipts" {
				t.Errorf("entity = %+v", rep.Entity)
			}
		case rep.Final != "":
			kinds = append(kinds, "final:"+rep.Final)
		case rep.StatusLabel != "":
			kinds = append(kinds, "label:"+rep.StatusLabel)
		case rep.Log != "":
			kinds = append(kinds, "log")
		}
	}
	want := "label:Pipeline pending,label:Pipeline running,log,entity,log,final:SUCCESS"
	if strings.Join(kinds, ",") != want {
		t.Fatalf("reports %v, want %s (a repeated and a late status add nothing)", kinds, want)
	}
}

func TestFailureNamesTheFailedJob(t *testing.T) {
	tr, st, _ := setup(t)
	r := running(t, st, run.Running)
	err := tr.HandleHook(context.Background(), gitlab.HookEvent{PipelineID: 42, Status: "failed",
		Builds: []gitlab.Build{{Name: "preview", Status: "success"}, {Name: "up", Status: "failed"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := st.Run(context.Background(), r.ID)
	if got.State != run.Failed || len(got.Reasons) != 1 || !strings.Contains(got.Reasons[0], "job(s) up") || !strings.Contains(got.Reasons[0], got.PipelineURL) {
		t.Fatalf("run %s %v", got.State, got.Reasons)
	}
	for _, rep := range reports(t, st) {
		if rep.Entity != nil {
			t.Fatal("a failed run wrote an entity")
		}
	}
}

func TestHooksForOtherPipelinesChangeNothing(t *testing.T) {
	tr, st, _ := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Running)
	if err := tr.HandleHook(ctx, gitlab.HookEvent{PipelineID: 7, Status: "success"}); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("unknown pipeline: %v", err)
	}
	if err := tr.HandleHook(ctx, gitlab.HookEvent{PipelineID: 7, Status: "success", Variables: map[string]string{"PAVED_RUN_ID": r.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := tr.HandleHook(ctx, gitlab.HookEvent{PipelineID: 7, Status: "success", Variables: map[string]string{"PAVED_RUN_ID": "r_unknown"}}); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("unknown run id: %v", err)
	}
	if got, _ := st.Run(ctx, r.ID); got.State != run.Running {
		t.Fatalf("another pipeline's hook moved the run to %s", got.State)
	}
}

func TestHookBeforeTheDispatcherRecordedThePipeline(t *testing.T) {
	tr, st, _ := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Dispatching)
	if err := tr.HandleHook(ctx, gitlab.HookEvent{PipelineID: 9, Status: "running", URL: "https://gitlab.test/-/pipelines/9", Variables: map[string]string{"PAVED_RUN_ID": r.ID}}); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Run(ctx, r.ID)
	if got.State != run.Running || got.PipelineID != 9 || got.PipelineURL == "" {
		t.Fatalf("run %+v", got)
	}
}

func TestPollerCatchesLostHooks(t *testing.T) {
	tr, st, pipes := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Running)
	pipes[42] = gitlab.Pipeline{ID: 42, Status: "success", WebURL: r.PipelineURL}
	if err := tr.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Run(ctx, r.ID); got.State != run.Running {
		t.Fatal("polled a run that had news a moment ago")
	}
	tr.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if err := tr.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Run(ctx, r.ID); got.State != run.Succeeded {
		t.Fatalf("after polling the run is %s", got.State)
	}
}

func TestCallbacks(t *testing.T) {
	tr, st, _ := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Running)
	long := strings.Repeat("é", MaxLineLength) // 2 bytes a rune: cut inside a rune must not split it
	if err := tr.AppendLogs(ctx, r.ID, []string{"one\n", long}); err != nil {
		t.Fatal(err)
	}
	reps := reports(t, st)
	if len(reps) != 2 || reps[0].Log != "one" || !strings.HasSuffix(reps[1].Log, "…") || !utf8.ValidString(reps[1].Log) {
		t.Fatalf("reports %+v", reps)
	}
	if err := tr.AppendLogs(ctx, r.ID, make([]string, MaxLogLines+1)); !errors.Is(err, ErrTooMany) {
		t.Fatal("too many lines accepted")
	}
	_ = tr.HandleHook(ctx, gitlab.HookEvent{PipelineID: 42, Status: "canceled"})
	if err := tr.AppendLogs(ctx, r.ID, []string{"late"}); !errors.Is(err, ErrFinished) {
		t.Fatalf("log after the end: %v", err)
	}
	if err := tr.RecordOutputs(ctx, r.ID, map[string]any{"a": 1}); !errors.Is(err, ErrFinished) {
		t.Fatalf("outputs after the end: %v", err)
	}
}

func TestExpireEndsRunsPastTheirDeadline(t *testing.T) {
	tr, st, _ := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Running)
	if _, err := st.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
		r.Timeout, r.DispatchedAt = 20*time.Minute, time.Now().UTC()
		r.Deadline = r.DispatchedAt.Add(r.Timeout)
		return store.Change{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Run(ctx, r.ID); got.State != run.Running {
		t.Fatalf("expired before the deadline: %s", got.State)
	}
	tr.Now = func() time.Time { return time.Now().Add(21 * time.Minute) }
	if err := tr.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Run(ctx, r.ID)
	if got.State != run.TimedOut || !strings.Contains(got.Reasons[0], "allows 20m0s") {
		t.Fatalf("run %s %v", got.State, got.Reasons)
	}
	if n, _ := st.Pending(ctx, store.KindCancel); n != 1 {
		t.Fatalf("%d cancel tasks, want 1", n)
	}
	reps := reports(t, st)
	if last := reps[len(reps)-1]; last.Final != run.Failure || last.StatusLabel != "Timed out" {
		t.Fatalf("final report %+v", last)
	}
	// A late success changes nothing.
	_ = tr.HandleHook(ctx, gitlab.HookEvent{PipelineID: 42, Status: "success"})
	if got, _ := st.Run(ctx, r.ID); got.State != run.TimedOut {
		t.Fatalf("late hook moved a timed-out run to %s", got.State)
	}
}
