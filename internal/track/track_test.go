package track

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	gl "gitlab.com/gitlab-org/api/client-go"
	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/gitlab/pipelinehook"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
	"github.com/paved-idp/paved/internal/store/storetest"
)

// fakePipelines is GitLab as the tracker reads it: pipelines by project.
type fakePipelines struct {
	mu       sync.Mutex
	projects map[string]map[int64]gitlab.Pipeline
	reads    map[int64]int
}

func (f *fakePipelines) put(project string, p gitlab.Pipeline) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.projects[project] == nil {
		f.projects[project] = map[int64]gitlab.Pipeline{}
	}
	f.projects[project][p.ID] = p
}

func (f *fakePipelines) Pipeline(_ context.Context, project string, id int64) (gitlab.Pipeline, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads[id]++
	p, ok := f.projects[project][id]
	if !ok {
		return p, notFound(project, id)
	}
	p.RunID = "" // GET pipeline carries no variables
	return p, nil
}

func (f *fakePipelines) PipelineOfRun(_ context.Context, project string, id int64) (gitlab.Pipeline, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.projects[project][id]
	if !ok {
		return p, notFound(project, id)
	}
	return p, nil
}

func setup(t *testing.T) (*Tracker, *sqlite.Store, *fakePipelines) {
	t.Helper()
	st := sqlitetest.Open(t)
	cat, err := catalog.Load("../../actions")
	if err != nil {
		t.Fatal(err)
	}
	pipes := &fakePipelines{projects: map[string]map[int64]gitlab.Pipeline{}, reads: map[int64]int{}}
	return &Tracker{Store: st, Pipelines: pipes, Catalog: cat, Log: zap.NewNop(), PollInterval: time.Minute}, st, pipes
}

// The run's project, as GitLab knows it.
const (
	project   = "platform/provision"
	projectID = 7
)

// running stores a run in state; a running one has pipeline 42 in project 7.
func running(t *testing.T, st *sqlite.Store, state run.State) *run.Run {
	t.Helper()
	r := storetest.NewRun("p-"+string(state), "checkout", time.Now().UTC())
	r.State, r.Team = state, "payments"
	r.Request.Inputs = map[string]any{"tenant": "acme", "environment": "dev", "bucketName": "receipts"}
	if state == run.Running {
		r.PipelineID, r.PipelineURL, r.PipelineStatus, r.ProjectID = 42, "https://gitlab.test/p/-/pipelines/42", "created", projectID
	}
	if _, _, err := st.CreateRun(context.Background(), r, store.Change{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// hook is a pipeline hook from the run's project.
func hook(pipeline int64, status, runID string) pipelinehook.Event {
	ev := pipelinehook.Event{PipelineID: pipeline, ProjectID: projectID, ProjectPath: project, Status: status, Ref: "main",
		URL: fmt.Sprintf("https://gitlab.test/%s/-/pipelines/%d", project, pipeline), Variables: map[string]string{}}
	if runID != "" {
		ev.Variables["PAVED_RUN_ID"] = runID
	}
	return ev
}

func handle(t *testing.T, tr *Tracker, ev pipelinehook.Event) Outcome {
	t.Helper()
	out, err := tr.HandleHook(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
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
	applied := ""
	for _, status := range []string{"pending", "running", "running", "success", "running"} {
		if handle(t, tr, hook(42, status, r.ID)).Applied {
			applied += status + " "
		}
	}
	if applied != "pending running success " {
		t.Fatalf("applied %q; a repeated or late status must be answered as ignored", applied)
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
	ev := hook(42, "failed", "")
	ev.Builds = []pipelinehook.Build{{Name: "preview", Status: "success"}, {Name: "up", Status: "failed"}}
	if out := handle(t, tr, ev); !out.Applied {
		t.Fatalf("failure hook: %+v", out)
	}
	got, _ := st.Run(context.Background(), r.ID)
	if got.State != run.Failed || len(got.Reasons) != 1 || !strings.Contains(got.Reasons[0], "job(s) up") || !strings.Contains(got.Reasons[0], got.PipelineURL) {
		t.Fatalf("run %s %v", got.State, got.Reasons)
	}
	// The entity is marked failed, with the reason, and nothing else of it
	// changes: no outputs were mapped.
	var entities []*run.EntityUpsert
	for _, rep := range reports(t, st) {
		if rep.Entity != nil {
			entities = append(entities, rep.Entity)
		}
	}
	if len(entities) != 1 {
		t.Fatalf("a failed run wrote %d entities, want its status once", len(entities))
	}
	p := entities[0].Properties
	if p["status"] != "failed" || !strings.Contains(p["statusReason"].(string), "job(s) up") || p["pipelineUrl"] != got.PipelineURL || len(p) != 4 {
		t.Fatalf("entity properties %v", p)
	}
}

func TestHooksForOtherPipelinesChangeNothing(t *testing.T) {
	tr, st, _ := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Running)
	for name, ev := range map[string]pipelinehook.Event{
		"unknown pipeline":            hook(7, "success", ""),
		"another pipeline of the run": hook(7, "success", r.ID),
		"unknown run id":              hook(7, "success", "r_unknown"),
	} {
		if out := handle(t, tr, ev); out.Applied || out.What == "" {
			t.Errorf("%s: %+v, want ignored with a reason", name, out)
		}
	}
	if got, _ := st.Run(ctx, r.ID); got.State != run.Running {
		t.Fatalf("another pipeline's hook moved the run to %s", got.State)
	}
}

// Group webhooks deliver every project's events, and anyone who can run a
// pipeline can set PAVED_RUN_ID: a hook from another project moves nothing,
// even when it names the run and its pipeline id.
func TestHookFromAnotherProjectChangesNothing(t *testing.T) {
	tr, st, _ := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Running)
	byID := hook(42, "success", r.ID)
	byID.ProjectID, byID.ProjectPath = 999, "someone/else"
	samePath := hook(42, "success", r.ID) // the path matches, the id does not
	samePath.ProjectID = 999
	for _, ev := range []pipelinehook.Event{byID, samePath} {
		out := handle(t, tr, ev)
		if out.Applied || !strings.Contains(out.What, "not in run") {
			t.Fatalf("foreign hook: %+v", out)
		}
	}
	got, _ := st.Run(ctx, r.ID)
	if got.State != run.Running || got.PipelineStatus != "created" {
		t.Fatalf("a foreign hook moved the run: %s/%s", got.State, got.PipelineStatus)
	}
	if reps := reports(t, st); len(reps) != 0 {
		t.Fatalf("a foreign hook queued reports: %+v", reps)
	}
}

// A hook for a run whose pipeline is not recorded yet is never taken on
// its own word: the tracker reads the pipeline from the run's project and
// adopts only one on the run's ref carrying the run's id, with the status
// GitLab gives.
func TestHookForADispatchingRunIsCheckedWithGitLab(t *testing.T) {
	tr, st, pipes := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Dispatching)
	pipes.put("someone/else", gitlab.Pipeline{ID: 900, ProjectID: 999, Status: "success", Ref: "main", RunID: r.ID})
	pipes.put(project, gitlab.Pipeline{ID: 901, ProjectID: projectID, Status: "success", Ref: "main", RunID: "r_someone_else"})
	pipes.put(project, gitlab.Pipeline{ID: 902, ProjectID: projectID, Status: "success", Ref: "feature", RunID: r.ID})
	pipes.put(project, gitlab.Pipeline{ID: 903, ProjectID: projectID, Status: "manual", Ref: "main", RunID: r.ID, WebURL: "https://gitlab.test/p/-/pipelines/903"})

	foreign := hook(900, "success", r.ID)
	foreign.ProjectID, foreign.ProjectPath = 999, "someone/else"
	spoofedPath := hook(900, "success", r.ID) // claims the run's project; GitLab has no 900 there
	for name, ev := range map[string]pipelinehook.Event{
		"another project":                 foreign,
		"a pipeline not in the project":   spoofedPath,
		"another run's pipeline":          hook(901, "success", r.ID),
		"a pipeline on another ref":       hook(902, "success", r.ID),
		"a pipeline GitLab does not know": hook(904, "success", r.ID),
	} {
		if out := handle(t, tr, ev); out.Applied {
			t.Errorf("%s: adopted: %+v", name, out)
		}
	}
	if got, _ := st.Run(ctx, r.ID); got.State != run.Dispatching || got.PipelineID != 0 {
		t.Fatalf("run adopted a pipeline that is not its own: %+v", got)
	}
	// The real one: the hook says success, GitLab says manual; GitLab wins.
	out := handle(t, tr, hook(903, "success", r.ID))
	got, _ := st.Run(ctx, r.ID)
	if !out.Applied || got.State != run.Running || got.PipelineID != 903 || got.PipelineStatus != "manual" || got.ProjectID != projectID {
		t.Fatalf("adopting the run's own pipeline: %+v, run %+v", out, got)
	}
}

// A pipeline found already finished (its create answer and all its hooks
// lost) finishes the run when adopted: no run stays unfinished while GitLab
// says its pipeline finished.
func TestAdoptingAFinishedPipelineFinishesTheRun(t *testing.T) {
	tr, st, _ := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Dispatching)
	p := gitlab.Pipeline{ID: 77, ProjectID: projectID, Status: "success", Ref: "main", WebURL: "https://gitlab.test/p/-/pipelines/77"}
	if _, err := st.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) { return tr.Adopt(r, p, "found by reconcile") }); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Run(ctx, r.ID)
	if got.State != run.Succeeded || got.PipelineID != 77 || got.PipelineStatus != "success" {
		t.Fatalf("run after adopting a finished pipeline: %s/%s", got.State, got.PipelineStatus)
	}
	reps := reports(t, st)
	if last := reps[len(reps)-1]; last.Final != run.Success {
		t.Fatalf("last report %+v, want the final SUCCESS", last)
	}
}

// A run left running with a finished pipeline (by an older paved, or a
// crash between two steps) is finished by the next poll.
func TestPollerFinishesARunWhosePipelineFinished(t *testing.T) {
	tr, st, pipes := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Running)
	if _, err := st.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) { r.PipelineStatus = "failed"; return store.Change{}, nil }); err != nil {
		t.Fatal(err)
	}
	pipes.put(project, gitlab.Pipeline{ID: 42, ProjectID: projectID, Status: "failed", WebURL: r.PipelineURL})
	tr.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if err := tr.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Run(ctx, r.ID); got.State != run.Failed {
		t.Fatalf("stranded run after a poll: %s", got.State)
	}
}

// The poller and the expiry sweep reach every unfinished run, however many:
// a poll that changes nothing does not keep the same page forever, and
// expiry is not limited to the newest runs.
func TestPollAndExpireReachEveryRun(t *testing.T) {
	tr, st, pipes := setup(t)
	ctx := context.Background()
	const n = 1001 // past the old caps of 500 polled and 1,000 expired
	now := time.Now().UTC()
	for i := range n {
		r := storetest.NewRun(fmt.Sprint("many-", i), fmt.Sprint("svc-", i), now)
		r.State, r.PipelineID, r.PipelineStatus, r.ProjectID = run.Running, int64(1000+i), "running", projectID
		r.Timeout, r.DispatchedAt, r.Deadline = time.Minute, now, now.Add(time.Minute)
		if _, _, err := st.CreateRun(ctx, r, store.Change{}); err != nil {
			t.Fatal(err)
		}
		pipes.put(project, gitlab.Pipeline{ID: r.PipelineID, ProjectID: projectID, Status: "running"})
	}
	tr.Now = func() time.Time { return now.Add(30 * time.Second) } // within the 1m poll interval
	if err := tr.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if len(pipes.reads) != 0 {
		t.Fatalf("polled %d runs that had news within the poll interval", len(pipes.reads))
	}
	tr.PollInterval = 10 * time.Second
	for range 2 {
		if err := tr.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if got := pipes.reads[int64(1000+i)]; got != 2 {
			t.Fatalf("pipeline %d read %d times in two polls, want 2", 1000+i, got)
		}
	}
	tr.Now = func() time.Time { return now.Add(2 * time.Minute) }
	if err := tr.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	counts, _ := st.CountByState(ctx)
	if counts[run.TimedOut] != n {
		t.Fatalf("expired %d of %d runs past their deadline", counts[run.TimedOut], n)
	}
}

func TestPollerCatchesLostHooks(t *testing.T) {
	tr, st, pipes := setup(t)
	ctx := context.Background()
	r := running(t, st, run.Running)
	pipes.put(project, gitlab.Pipeline{ID: 42, ProjectID: projectID, Status: "success", WebURL: r.PipelineURL})
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
	// One post is one portal log message, its lines joined; the stored lines
	// stay one a row.
	reps := reports(t, st)
	if len(reps) != 1 || !strings.HasPrefix(reps[0].Log, "one\n") || !strings.HasSuffix(reps[0].Log, "…") || !utf8.ValidString(reps[0].Log) {
		t.Fatalf("reports %+v", reps)
	}
	if lines, _ := st.Logs(ctx, r.ID, 0, 10); len(lines) != 2 || lines[0].Line != "one" {
		t.Fatalf("stored lines %+v", lines)
	}
	if err := tr.AppendLogs(ctx, r.ID, make([]string, MaxLogLines+1)); !errors.Is(err, ErrTooMany) {
		t.Fatal("too many lines accepted")
	}
	handle(t, tr, hook(42, "canceled", ""))
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
	handle(t, tr, hook(42, "success", ""))
	if got, _ := st.Run(ctx, r.ID); got.State != run.TimedOut {
		t.Fatalf("late hook moved a timed-out run to %s", got.State)
	}
}

// What one run's pipeline may post is capped in all, with a clear error
// (413 at the API), and nothing of a refused post is kept. Log lines are
// rows of their own: appending them never rewrites the run.
func TestCallbackCaps(t *testing.T) {
	tr, st, _ := setup(t)
	ctx := context.Background()
	tr.MaxLogLines, tr.MaxOutputBytes = 3, 64
	r := running(t, st, run.Running)
	before, _ := st.Run(ctx, r.ID)
	if err := tr.AppendLogs(ctx, r.ID, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if after, _ := st.Run(ctx, r.ID); !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatal("appending log lines rewrote the run")
	}
	err := tr.AppendLogs(ctx, r.ID, []string{"c", "d"})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "cap of 3") {
		t.Fatalf("past the log cap: %v", err)
	}
	if lines, _ := st.Logs(ctx, r.ID, 0, 10); len(lines) != 2 {
		t.Fatalf("%d lines stored, want the 2 before the cap", len(lines))
	}
	if err := tr.RecordOutputs(ctx, r.ID, map[string]any{"arn": "arn:aws:s3:::b"}); err != nil {
		t.Fatal(err)
	}
	err = tr.RecordOutputs(ctx, r.ID, map[string]any{"big": strings.Repeat("x", 64)})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "cap of 64") {
		t.Fatalf("past the output cap: %v", err)
	}
	got, _ := st.Run(ctx, r.ID)
	if _, kept := got.Outputs["big"]; kept || got.Outputs["arn"] != "arn:aws:s3:::b" {
		t.Fatalf("outputs after a refused post: %v", got.Outputs)
	}
}

// notFound is GitLab's 404 for a pipeline that is not in the project, as
// the gitlab adapter returns it.
func notFound(project string, id int64) error {
	return fmt.Errorf("gitlab: get pipeline %d in %s: %w", id, project, gl.ErrNotFound)
}

// An approval nobody gives in time ends the run rejected, saying so; a run
// without an expiry waits on.
func TestExpireRejectsUndecidedApprovals(t *testing.T) {
	tr, st, _ := setup(t)
	ctx := context.Background()
	waiting := running(t, st, run.AwaitingApproval)
	forever := storetest.NewRun("p-forever", "other", time.Now().UTC())
	forever.State = run.AwaitingApproval
	if _, _, err := st.CreateRun(ctx, forever, store.Change{}); err != nil {
		t.Fatal(err)
	}
	expires := time.Now().UTC().Add(time.Hour)
	if _, err := st.Update(ctx, waiting.ID, func(r *run.Run) (store.Change, error) {
		r.Approvers, r.ApprovalExpiresAt = []string{"platform"}, expires
		return store.Change{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Run(ctx, waiting.ID); got.State != run.AwaitingApproval {
		t.Fatalf("rejected before its expiry: %s", got.State)
	}
	tr.Now = func() time.Time { return expires.Add(time.Second) }
	if err := tr.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Run(ctx, waiting.ID)
	if got.State != run.Rejected || !strings.Contains(got.Reasons[0], "approval expired: no approver (platform) decided by ") {
		t.Fatalf("run %s %v", got.State, got.Reasons)
	}
	reps := reports(t, st)
	if last := reps[len(reps)-1]; last.Final != run.Failure || last.StatusLabel != "Approval expired" {
		t.Fatalf("final report %+v", last)
	}
	if got, _ := st.Run(ctx, forever.ID); got.State != run.AwaitingApproval {
		t.Fatalf("a run without an expiry ended: %s", got.State)
	}
}

// After an approval the run is dispatched again; news of the pipeline that
// previewed it (which succeeded, applying nothing) is never taken for the
// apply pipeline, whose own is.
func TestThePreviewsPipelineIsNotTheApplys(t *testing.T) {
	tr, _, _ := setup(t)
	r := &run.Run{ID: "r_a", State: run.Dispatching, PreviewPipelineID: 100, Guarded: true, ApprovedDigest: "sha256:x"}
	if _, err := tr.Adopt(r, gitlab.Pipeline{ID: 100, Status: "success", WebURL: "https://gitlab.test/p/-/pipelines/100"}, "hook"); !errors.Is(err, store.ErrNoChange) || r.PipelineID != 0 || r.State != run.Dispatching {
		t.Fatalf("the preview's pipeline: %v, run %s on #%d", err, r.State, r.PipelineID)
	}
	if _, err := tr.Adopt(r, gitlab.Pipeline{ID: 101, Status: "running", WebURL: "https://gitlab.test/p/-/pipelines/101"}, "trigger"); err != nil || r.PipelineID != 101 || r.State != run.Running {
		t.Fatalf("the apply's pipeline: %v, run %s on #%d", err, r.State, r.PipelineID)
	}
}

// A guarded run's pipeline that succeeds without a preview paved judged
// apply (an older component, a custom pipeline) does not make the run
// succeed: nobody approved what it may have applied.
func TestGuardedSuccessNeedsAnAppliedPreview(t *testing.T) {
	tr, st, _ := setup(t)
	r := running(t, st, run.Running)
	if _, err := st.Update(context.Background(), r.ID, func(r *run.Run) (store.Change, error) {
		r.Guarded = true
		return store.Change{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if out := handle(t, tr, hook(42, "success", "")); !out.Applied {
		t.Fatalf("success hook: %+v", out)
	}
	got, _ := st.Run(context.Background(), r.ID)
	if got.State != run.Failed || !strings.Contains(got.Reasons[0], "a guarded run applies only an approved preview") {
		t.Fatalf("run %s %v", got.State, got.Reasons)
	}
}

// A DELETE's success marks the stack's own entities (named at intake,
// ReportsOn) destroyed, or deletes them when the action says so.
func TestDeleteEndsTheStacksEntities(t *testing.T) {
	for _, del := range []bool{false, true} {
		tr, st, _ := setup(t)
		ctx := context.Background()
		a, _ := tr.Catalog.Get("delete-service")
		a.DeleteDestroyed = del
		r := storetest.NewRun("d-1", "checkout", time.Now().UTC())
		r.Request.Action, r.Operation, r.State, r.ProjectID = "delete-service", run.Delete, run.Running, projectID
		r.PipelineID, r.PipelineURL, r.PipelineStatus = 42, "https://gitlab.test/p/-/pipelines/42", "running"
		r.Request.Inputs = map[string]any{"tenant": "acme", "environment": "dev", "confirm": true}
		r.ReportsOn = []run.EntityRef{{Blueprint: "service", Identifier: "checkout"}, {Blueprint: "s3_bucket", Identifier: "acme-dev-checkout-receipts"}}
		if _, _, err := st.CreateRun(ctx, r, store.Change{}); err != nil {
			t.Fatal(err)
		}
		handle(t, tr, hook(42, "success", r.ID))
		var got []string
		for _, rep := range reports(t, st) {
			switch {
			case rep.Delete != nil:
				got = append(got, "delete "+rep.Delete.Identifier)
			case rep.Entity != nil:
				got = append(got, fmt.Sprintf("%s %v", rep.Entity.Identifier, rep.Entity.Properties["status"]))
			}
		}
		want := "checkout destroyed,acme-dev-checkout-receipts destroyed"
		if del {
			want = "delete checkout,delete acme-dev-checkout-receipts"
		}
		if strings.Join(got, ",") != want {
			t.Fatalf("deleteDestroyed %v: entity reports %v, want %s", del, got, want)
		}
	}
}
