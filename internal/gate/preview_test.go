package gate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/cost"
	"github.com/paved-idp/paved/internal/intake"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
)

func digestOf(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

// destroyPreview is what `paved preview --destroy` posts for the checkout
// stack: its bucket goes.
func destroyPreview(digest string) run.Preview {
	return run.Preview{Destroy: true, Digest: digest, Resources: []run.PreviewResource{
		{Op: run.OpDelete, Type: "aws:s3/bucketV2:BucketV2", Name: "acme-prod-checkout-assets"}}}
}

// running plays the dispatcher for a queued run: its dispatch task taken,
// its pipeline (id) recorded, the run running.
func running(t *testing.T, st *sqlite.Store, r *run.Run, pipeline int64) {
	t.Helper()
	ctx := context.Background()
	tasks, err := st.Claim(ctx, store.KindDispatch, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if tk.RunID == r.ID {
			if err := st.Complete(ctx, tk.ID); err != nil {
				t.Fatal(err)
			}
		} else if err := st.Release(ctx, tk.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
		if err := r.MoveTo(run.Dispatching, time.Now()); err != nil {
			return store.Change{}, err
		}
		r.DispatchedAt = time.Now().UTC()
		r.PipelineID = pipeline
		return store.Change{}, r.MoveTo(run.Running, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
}

// awaiting submits a guarded request and plays its preview pipeline up to
// the preview, after which the run waits for an approval of it.
func awaiting(t *testing.T, s *Service, in *intake.Service, st *sqlite.Store, req run.Request) *run.Run {
	t.Helper()
	ctx := context.Background()
	r, _, err := in.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != run.Queued || !r.Guarded {
		t.Fatalf("a guarded request is %s (guarded %v, %v), want queued and guarded: previewed before any approval", r.State, r.Guarded, r.Reasons)
	}
	running(t, st, r, 100)
	got, err := s.Preview(ctx, r.ID, destroyPreview(digestOf('a')))
	if err != nil {
		t.Fatal(err)
	}
	if got.State != run.AwaitingApproval || got.Preview.Verdict != run.VerdictAwaitApproval {
		t.Fatalf("after its preview a guarded run is %s (%s)", got.State, got.Preview.Verdict)
	}
	return got
}

// A guarded run is previewed, waits for an approval of that preview, and
// its apply pipeline applies only the same preview.
func TestApprovalIsBoundToThePreview(t *testing.T) {
	s, in, st := setup(t)
	ctx := context.Background()
	r := awaiting(t, s, in, st, deleteReq("b1"))
	// The pipeline sends the same preview again (its answer was lost): the
	// same verdict, though the run now awaits approval.
	if again, err := s.Preview(ctx, r.ID, destroyPreview(digestOf('a'))); err != nil || again.Preview.Verdict != run.VerdictAwaitApproval {
		t.Fatalf("the preview again while awaiting approval: %v, %v", again, err)
	}
	approved, err := s.Approve(ctx, r.ID, run.Approver{ID: "lee@acme.example", Teams: []string{"platform"}}, "")
	if err != nil || approved.ApprovedDigest != digestOf('a') || approved.PipelineID != 0 || approved.PreviewPipelineID != 100 {
		t.Fatalf("approve: %+v %v", approved, err)
	}
	running(t, st, approved, 101)
	again, err := s.Preview(ctx, r.ID, destroyPreview(digestOf('a')))
	if err != nil || again.Preview.Verdict != run.VerdictApply || again.State != run.Running {
		t.Fatalf("the approved preview again: %+v %v", again.Preview, err)
	}
	// The same post again (a retried request) gets the same verdict.
	if rep, err := s.Preview(ctx, r.ID, destroyPreview(digestOf('a'))); err != nil || rep.Preview.Verdict != run.VerdictApply {
		t.Fatalf("repeat: %v %v", rep, err)
	}

	// Another run, whose stack changed between its preview and its apply.
	r2 := awaiting(t, s, in, st, deleteReq("b2"))
	if _, err := s.Approve(ctx, r2.ID, run.Approver{ID: "lee@acme.example", Teams: []string{"platform"}}, ""); err != nil {
		t.Fatal(err)
	}
	running(t, st, r2, 102)
	changed, err := s.Preview(ctx, r2.ID, destroyPreview(digestOf('b')))
	if err != nil || changed.Preview.Verdict != run.VerdictChanged || !strings.Contains(changed.Reasons[0], "the preview changed since it was approved") {
		t.Fatalf("another preview after approval: %+v %v", changed.Preview, err)
	}
	reps := reports(t, st)
	if last := reps[len(reps)-1]; !strings.Contains(last.Log, "✗ the preview changed since it was approved (approved "+digestOf('a')) {
		t.Fatalf("the portal was told %+v", last)
	}
}

// The policy sees the preview: the shipped policy refuses a change that
// would delete or replace a database in production, and asks for approval
// of any replace or delete there.
func TestPolicySeesThePreview(t *testing.T) {
	s, in, st := setup(t)
	ctx := context.Background()
	r, _, err := in.Submit(ctx, bucketReq("v1", "dana@acme.example", "prod"))
	if err != nil || r.State != run.Queued || r.Guarded {
		t.Fatalf("submit: %+v %v", r, err)
	}
	running(t, st, r, 200)
	db := run.Preview{Digest: digestOf('c'), Resources: []run.PreviewResource{
		{Op: run.OpCreate, Type: "aws:s3/bucketV2:BucketV2", Name: "acme-prod-checkout-logs"},
		{Op: run.OpReplace, Type: "aws:rds/cluster:Cluster", Name: "acme-prod-checkout-db"}}}
	got, err := s.Preview(ctx, r.ID, db)
	if err != nil || got.Preview.Verdict != run.VerdictRefused || !strings.Contains(strings.Join(got.Reasons, " "), "aws:rds/cluster:Cluster acme-prod-checkout-db") {
		t.Fatalf("a database replaced in production: %+v %v", got.Preview, err)
	}

	r2, _, _ := in.Submit(ctx, bucketReq("v2", "dana@acme.example", "prod"))
	running(t, st, r2, 201)
	topic := run.Preview{Digest: digestOf('d'), Resources: []run.PreviewResource{{Op: run.OpReplace, Type: "aws:sns/topic:Topic", Name: "acme-prod-checkout-events"}}}
	if got, err := s.Preview(ctx, r2.ID, topic); err != nil || got.State != run.AwaitingApproval {
		t.Fatalf("a replace in production: %+v %v", got, err)
	}

	r3, _, _ := in.Submit(ctx, bucketReq("v3", "dana@acme.example", "dev"))
	running(t, st, r3, 202)
	if got, err := s.Preview(ctx, r3.ID, topic); err != nil || got.Preview.Verdict != run.VerdictApply || got.State != run.Running {
		t.Fatalf("a replace in dev: %+v %v", got, err)
	}
	reps := reports(t, st)
	if last := reps[len(reps)-1]; last.StatusLabel != "Applying +0 ~0 -0 (1 replace)" {
		t.Fatalf("label %q", last.StatusLabel)
	}
}

// A dry run stops after its preview, whatever it shows.
func TestDryRunStopsAtThePreview(t *testing.T) {
	s, in, st := setup(t)
	ctx := context.Background()
	req := deleteReq("dr1")
	req.Inputs["dryRun"] = true
	r, _, err := in.Submit(ctx, req)
	if err != nil || r.State != run.Queued || !r.DryRun || r.Guarded {
		t.Fatalf("a dry run of a guarded action: %+v %v", r, err)
	}
	running(t, st, r, 300)
	got, err := s.Preview(ctx, r.ID, destroyPreview(digestOf('e')))
	if err != nil || got.Preview.Verdict != run.VerdictDryRun || got.State != run.Running {
		t.Fatalf("dry run preview: %+v %v", got, err)
	}
}

func TestPreviewRefusesWhatItCannotJudge(t *testing.T) {
	s, in, st := setup(t)
	ctx := context.Background()
	r, _, _ := in.Submit(ctx, bucketReq("x1", "dana@acme.example", "dev"))
	if _, err := s.Preview(ctx, r.ID, destroyPreview(digestOf('f'))); !errors.Is(err, store.ErrFinished) {
		t.Fatalf("a preview of a queued run: %v", err)
	}
	running(t, st, r, 400)
	for name, p := range map[string]run.Preview{
		"no digest":    {Resources: []run.PreviewResource{}},
		"no resources": {Digest: digestOf('f')},
		"a bad op":     {Digest: digestOf('f'), Resources: []run.PreviewResource{{Op: "same", Type: "t", Name: "n"}}},
		"no name":      {Digest: digestOf('f'), Resources: []run.PreviewResource{{Op: run.OpCreate, Type: "t"}}},
	} {
		if _, err := s.Preview(ctx, r.ID, p); !errors.Is(err, ErrBadPreview) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got, _ := st.Run(ctx, r.ID); got.Preview != nil {
		t.Fatal("a refused preview was stored")
	}
	if _, err := s.Preview(ctx, "r_nope", destroyPreview(digestOf('f'))); !errors.Is(err, run.ErrNotFound) {
		t.Fatalf("unknown run: %v", err)
	}
}

// A run canceled after paved let it apply marks its entity failed; one
// canceled before its preview leaves the entity alone.
func TestCancelMarksTheEntityOnlyAfterApply(t *testing.T) {
	s, in, st := setup(t)
	ctx := context.Background()
	entities := func() (out []*run.EntityUpsert) {
		for _, rep := range reports(t, st) {
			if rep.Entity != nil {
				out = append(out, rep.Entity)
			}
		}
		return out
	}
	early, _, _ := in.Submit(ctx, bucketReq("c1", "dana@acme.example", "dev"))
	if _, err := in.Cancel(ctx, early.ID, "operator:olivia"); err != nil {
		t.Fatal(err)
	}
	if got := entities(); len(got) != 0 {
		t.Fatalf("a run canceled before its preview wrote %v", got)
	}
	r, _, _ := in.Submit(ctx, bucketReq("c2", "dana@acme.example", "dev"))
	running(t, st, r, 600)
	p := run.Preview{Digest: digestOf('9'), Resources: []run.PreviewResource{{Op: run.OpCreate, Type: "aws:s3/bucketV2:BucketV2", Name: "acme-dev-checkout-c2"}}}
	if got, err := s.Preview(ctx, r.ID, p); err != nil || got.Preview.Verdict != run.VerdictApply {
		t.Fatalf("preview: %v %v", got, err)
	}
	if _, err := in.Cancel(ctx, r.ID, "operator:olivia"); err != nil {
		t.Fatal(err)
	}
	got := entities()
	if len(got) != 2 || got[0].Properties["status"] != "provisioning" || got[1].Properties["status"] != "failed" ||
		got[1].Properties["statusReason"] != "canceled by operator:olivia; pipeline #600 is being canceled" {
		t.Fatalf("entity writes %+v", got)
	}
}

// The policy sees a preview's estimate with what the tenant's other stacks
// in the environment cost (each at its latest applied estimate, a deleted
// one at nothing): a change that takes them over budget is refused, saying
// the budget, the total and the delta; one within it applies, its estimate
// in the status label and the log.
func TestBudgetCountsTheOtherStacks(t *testing.T) {
	s, in, st := setup(t)
	s.Spending = &cost.Ledger{Runs: st}
	ctx := context.Background()
	at := time.Now().Add(-time.Hour)
	spent := func(service string, op run.Operation, monthly float64) {
		t.Helper()
		at = at.Add(time.Second) // a stack's later run is newer
		r := &run.Run{ID: run.NewID(), Request: run.Request{Portal: "port", PortalRunID: "old-" + service + string(op), Action: "add-s3-bucket"},
			Operation: op, Stack: run.Stack{Tenant: "acme", Environment: "dev", Service: service}, State: run.Succeeded,
			Preview: &run.Preview{Cost: &run.Cost{Monthly: monthly, Currency: "USD"}}, CreatedAt: at, UpdatedAt: at}
		if _, _, err := st.CreateRun(ctx, r, store.Change{}); err != nil {
			t.Fatal(err)
		}
	}
	spent("billing", run.Day2, 1500)
	spent("search", run.Day2, 900)
	spent("search", run.Delete, 0) // destroyed since: costs nothing
	spent("ledger", run.Day2, 350)

	withCost := func(c byte, before, monthly float64) run.Preview {
		return run.Preview{Digest: digestOf(c), Resources: []run.PreviewResource{{Op: run.OpCreate, Type: "aws:rds/clusterInstance:ClusterInstance", Name: "acme-dev-checkout-db"}},
			Cost: &run.Cost{Monthly: monthly, Before: before, Delta: monthly - before, Currency: "USD", Prices: "us-east-1"}}
	}
	r, _, _ := in.Submit(ctx, bucketReq("b1", "dana@acme.example", "dev"))
	running(t, st, r, 500)
	got, err := s.Preview(ctx, r.ID, withCost('g', 50, 251.5))
	want := "over budget: tenant \"acme\" in \"dev\" may spend 2000 USD a month; its stacks cost 1900 now and this change adds 201.5, to 2101.5"
	if err != nil || got.Preview.Verdict != run.VerdictRefused || !strings.Contains(strings.Join(got.Reasons, " "), want) {
		t.Fatalf("a change over budget: %+v %v", got, err)
	}

	r2, _, _ := in.Submit(ctx, bucketReq("b2", "dana@acme.example", "dev"))
	running(t, st, r2, 501)
	if got, err := s.Preview(ctx, r2.ID, withCost('h', 50, 100)); err != nil || got.Preview.Verdict != run.VerdictApply {
		t.Fatalf("a change within budget: %+v %v", got, err)
	}
	reps := reports(t, st)
	if last := reps[len(reps)-1]; last.StatusLabel != "Applying +1 ~0 -0, $100.00/month (+$50.00)" {
		t.Fatalf("label %q", last.StatusLabel)
	}
	logs, err := st.Logs(ctx, r2.ID, 0, 10)
	if err != nil || len(logs) < 2 || !strings.Contains(logs[1].Line, "estimated cost $100.00/month (+$50.00)") {
		t.Fatalf("logs %+v, %v", logs, err)
	}
}
