package intake

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/intake/intaketest"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
	"github.com/paved-idp/paved/internal/telemetry"
)

func setup(t testing.TB) (*Service, *sqlite.Store) {
	t.Helper()
	w := intaketest.New(t)
	notified := 0
	s := &Service{Store: w.Store, Catalog: w.Catalog, Policy: w.Policy, Log: zap.NewNop(), Notify: func() { notified++ }, Teams: w.Teams}
	return s, w.Store
}

var bucketReq = intaketest.BucketReq

func reports(t *testing.T, st *sqlite.Store) []run.Report { return sqlitetest.Reports(t, st) }

func TestAcceptedRunIsQueuedWithItsDispatchTask(t *testing.T) {
	s, st := setup(t)
	ctx := context.Background()
	r, created, err := s.Submit(ctx, bucketReq("p1", "dana@acme.example", "prod"))
	if err != nil || !created {
		t.Fatal(created, err)
	}
	if r.State != run.Queued || r.Stack.Key() != "acme-prod-checkout" || r.Team != "payments" || r.Project == "" {
		t.Fatalf("run = %+v", r)
	}
	if got := r.Request.User.Teams; len(got) != 1 || got[0] != "payments" {
		t.Fatalf("teams looked up = %v", got)
	}
	if n, _ := st.Pending(ctx, store.KindDispatch); n != 1 {
		t.Fatalf("dispatch tasks = %d", n)
	}
	again, created, err := s.Submit(ctx, bucketReq("p1", "dana@acme.example", "prod"))
	if err != nil || created || again.ID != r.ID {
		t.Fatalf("repeat = %v %v %v", again.ID, created, err)
	}
	// A second run on the same stack waits, and says how many go first.
	s.Submit(ctx, bucketReq("p2", "dana@acme.example", "prod"))
	var labels []string
	for _, rep := range reports(t, st) {
		if rep.StatusLabel != "" {
			labels = append(labels, rep.StatusLabel)
		}
	}
	if strings.Join(labels, "|") != "Queued|Queued: 1 run(s) ahead on acme-prod-checkout" {
		t.Fatalf("labels %q", labels)
	}
}

func TestRefusalsAreStoredWithEveryReason(t *testing.T) {
	tests := []struct {
		name  string
		req   run.Request
		label string
		wants []string
	}{
		{"unknown action", run.Request{Portal: "port", PortalRunID: "x", Action: "nope"}, "Unknown action", []string{`"nope"`, "create-service"}},
		{"schema", func() run.Request {
			r := bucketReq("x", "dana@acme.example", "dev")
			r.Inputs["bucketName"], r.Inputs["retentionDays"] = "NO", 99999
			return r
		}(), "Invalid inputs", []string{"inputs.bucketName", "inputs.retentionDays"}},
		{"policy", bucketReq("x", "sam@acme.example", "prod"), "Refused by policy", []string{`owning team "payments"`}},
		{"teams lookup failed", bucketReq("x", "ghost@acme.example", "prod"), "Refused by policy", []string{"ghost@acme.example", "no team", "could not read your teams from Port", "503"}},
		{"size cap", func() run.Request {
			r := bucketReq("x", "dana@acme.example", "dev")
			r.Inputs["retentionDays"] = 365
			return r
		}(), "Refused by policy", []string{"retentionDays"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, st := setup(t)
			r, created, err := s.Submit(context.Background(), tt.req)
			if err != nil || !created || r.State != run.Rejected {
				t.Fatalf("run %+v %v %v", r, created, err)
			}
			all := strings.Join(r.Reasons, "\n")
			for _, w := range tt.wants {
				if !strings.Contains(all, w) {
					t.Errorf("reasons %q lack %q", r.Reasons, w)
				}
			}
			reps := reports(t, st)
			last := reps[len(reps)-1]
			if last.Final != run.Failure || last.StatusLabel != tt.label || !strings.Contains(last.Summary, r.Reasons[0]) {
				t.Fatalf("final report %+v", last)
			}
			if len(reps) != len(r.Reasons)+1 {
				t.Fatalf("%d reports for %d reasons", len(reps), len(r.Reasons))
			}
			if n, _ := st.Pending(context.Background(), store.KindDispatch); n != 0 {
				t.Fatal("a refused run got a dispatch task")
			}
		})
	}
}

func TestCancel(t *testing.T) {
	s, st := setup(t)
	ctx := context.Background()
	queued, _, _ := s.Submit(ctx, bucketReq("q", "dana@acme.example", "dev"))
	got, err := s.Cancel(ctx, queued.ID, "dana@acme.example")
	if err != nil || got.State != run.Canceled || got.Reasons[0] != "canceled by dana@acme.example" {
		t.Fatalf("cancel queued: %+v %v", got, err)
	}
	if n, _ := st.Pending(ctx, store.KindCancel); n != 0 {
		t.Fatal("a run that never dispatched got a cancel task")
	}
	running, _, _ := s.Submit(ctx, bucketReq("r", "dana@acme.example", "dev"))
	if _, err := st.Update(ctx, running.ID, func(r *run.Run) (store.Change, error) {
		_ = r.MoveTo(run.Dispatching, r.CreatedAt)
		return store.Change{}, r.MoveTo(run.Running, r.CreatedAt)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cancel(ctx, running.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Pending(ctx, store.KindCancel); n != 1 {
		t.Fatalf("%d cancel tasks for a running run, want 1", n)
	}
	if _, err := s.Cancel(ctx, running.ID, "ops"); !errors.Is(err, run.ErrIllegalTransition) {
		t.Fatalf("second cancel: %v", err)
	}
	if _, err := s.Cancel(ctx, "r_nope", "ops"); !errors.Is(err, run.ErrNotFound) {
		t.Fatalf("cancel unknown: %v", err)
	}
}

// Intake is measured by outcome, and a denial is counted under its rule.
func TestIntakeMetrics(t *testing.T) {
	s, _ := setup(t)
	reg := prometheus.NewRegistry()
	s.Metrics = telemetry.NewMetrics(reg)
	ctx := context.Background()
	if r, _, err := s.Submit(ctx, bucketReq("m1", "dana@acme.example", "dev")); err != nil || r.State != run.Queued {
		t.Fatal(r, err)
	}
	if r, _, err := s.Submit(ctx, bucketReq("m2", "sam@acme.example", "prod")); err != nil || r.State != run.Rejected {
		t.Fatal(r, err) // sam is not in the owning team
	}
	if _, _, err := s.Submit(ctx, bucketReq("m1", "dana@acme.example", "dev")); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP paved_policy_denials_total Policy denials by the rule that denied (unnamed: the policy gave a plain message); one run may count under several rules.
# TYPE paved_policy_denials_total counter
paved_policy_denials_total{rule="production-owning-team"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "paved_policy_denials_total"); err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "paved_intake_seconds" {
			for _, m := range mf.GetMetric() {
				// Labels come sorted by name: outcome, then portal.
				counts[m.GetLabel()[1].GetValue()+"/"+m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if counts["port/queued"] != 1 || counts["port/rejected"] != 1 || counts["port/duplicate"] != 1 {
		t.Fatalf("intake observations %v", counts)
	}
}

// An idempotency key names one request: an identical repeat returns the
// first run, a different request under the same key is refused (409 at the
// API), and nothing of it is stored.
func TestIdempotencyKeyReusedForADifferentRequestIsRefused(t *testing.T) {
	s, st := setup(t)
	ctx := context.Background()
	first, created, err := s.Submit(ctx, bucketReq("key-1", "dana@acme.example", "dev"))
	if err != nil || !created {
		t.Fatal(created, err)
	}
	again, created, err := s.Submit(ctx, bucketReq("key-1", "dana@acme.example", "dev"))
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("identical repeat: %v %v %v", again, created, err)
	}
	other := bucketReq("key-1", "dana@acme.example", "dev")
	other.Inputs["bucketName"] = "invoices"
	_, _, err = s.Submit(ctx, other)
	var conflict *ConflictError
	if !errors.As(err, &conflict) || conflict.RunID != first.ID || !strings.Contains(err.Error(), "already used for a different request") {
		t.Fatalf("different request under the same key: %v", err)
	}
	runs, _ := st.ListRuns(ctx, store.Query{})
	if len(runs) != 1 {
		t.Fatalf("%d runs stored, want 1", len(runs))
	}
	// The teams paved looked up are not part of what the caller asked.
	if got, _ := st.Run(ctx, first.ID); len(got.Request.User.Teams) == 0 {
		t.Fatal("teams were not looked up for the first run")
	}
}

// A huge action identifier is refused without being echoed back whole.
func TestUnknownHugeActionIsClipped(t *testing.T) {
	s, _ := setup(t)
	req := bucketReq("huge", "dana@acme.example", "dev")
	req.Action = strings.Repeat("a", 500_000)
	r, _, err := s.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != run.Rejected || len(strings.Join(r.Reasons, "")) > 1000 {
		t.Fatalf("run %s with %d bytes of reasons", r.State, len(strings.Join(r.Reasons, "")))
	}
}
