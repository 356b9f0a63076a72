package drift

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
)

func succeeded(t *testing.T, st interface {
	CreateRun(context.Context, *run.Run, store.Change) (*run.Run, bool, error)
}, id, service string, op run.Operation, at time.Time) {
	t.Helper()
	r := &run.Run{ID: run.NewID(), Request: run.Request{Portal: "port", PortalRunID: id, Action: "add-s3-bucket",
		Inputs: map[string]any{"tenant": "acme", "environment": "dev", "bucketName": id}},
		Operation: op, Stack: run.Stack{Tenant: "acme", Environment: "dev", Service: service}, State: run.Succeeded,
		Project: "platform/provision", Ref: "main", CreatedAt: at, UpdatedAt: at}
	if _, _, err := st.CreateRun(context.Background(), r, store.Change{}); err != nil {
		t.Fatal(err)
	}
}

// setup is a fresh store, the shipped actions and the tests' noon.
func setup(t *testing.T) (context.Context, *sqlite.Store, *catalog.Catalog, time.Time) {
	t.Helper()
	cat, err := catalog.Load("../../actions")
	if err != nil {
		t.Fatal(err)
	}
	return context.Background(), sqlitetest.Open(t), cat, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
}

// Each stack whose last change succeeded gets one check an interval, with
// every entity its runs wrote; a deleted stack gets none, and checks never
// count as changes to check.
func TestOneCheckPerStackAndInterval(t *testing.T) {
	ctx, st, cat, now := setup(t)
	succeeded(t, st, "b1", "checkout", run.Day2, now.Add(-3*time.Hour))
	succeeded(t, st, "b2", "checkout", run.Day2, now.Add(-2*time.Hour))
	succeeded(t, st, "gone1", "gone", run.Day2, now.Add(-2*time.Hour))
	succeeded(t, st, "gone2", "gone", run.Delete, now.Add(-time.Hour))
	// A stack with a run in flight is left for the next round.
	busy := &run.Run{ID: run.NewID(), Request: run.Request{Portal: "port", PortalRunID: "busy", Action: "add-s3-bucket"},
		Stack: run.Stack{Tenant: "acme", Environment: "dev", Service: "busy"}, State: run.Queued, CreatedAt: now, UpdatedAt: now}
	succeeded(t, st, "busy0", "busy", run.Day2, now.Add(-4*time.Hour))
	if _, _, err := st.CreateRun(ctx, busy, store.Change{}); err != nil {
		t.Fatal(err)
	}
	s := &Scheduler{Store: st, Catalog: cat, Log: zap.NewNop(), Interval: time.Hour, Now: func() time.Time { return now }}
	for range 2 { // a second round in the same interval (or another replica) adds nothing
		if n, err := s.Check(ctx); err != nil || n > 1 {
			t.Fatalf("check: %d, %v", n, err)
		}
	}
	checks, _ := st.ListRuns(ctx, store.Query{States: []run.State{run.Queued}, NotPortal: "port"})
	if len(checks) != 1 {
		t.Fatalf("%d checks queued, want one (checkout's)", len(checks))
	}
	c := checks[0]
	if c.Operation != run.Drift || c.Request.Portal != run.PortalPaved || c.Stack.Key() != "acme-dev-checkout" || len(c.ReportsOn) != 2 {
		t.Fatalf("check %+v", c)
	}
	if n, _ := st.Pending(ctx, store.KindDispatch); n != 1 {
		t.Fatalf("%d dispatch tasks", n)
	}
	// The check succeeds; the next interval checks again, the check itself
	// not being a change of its own to check.
	if _, err := st.Update(ctx, c.ID, func(r *run.Run) (store.Change, error) { r.State = run.Succeeded; return store.Change{}, nil }); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if n, err := s.Check(ctx); err != nil || n != 1 {
		t.Fatalf("next interval: %d, %v", n, err)
	}
	queued, _ := st.ListRuns(ctx, store.Query{States: []run.State{run.Queued}, NotPortal: "port"})
	if len(queued) != 1 || queued[0].Request.Action != "add-s3-bucket" || queued[0].Request.Inputs["bucketName"] != "b2" {
		t.Fatalf("the second check: %+v", queued)
	}
}

// A stack an expiry destroyed (a DELETE of paved's own) is not checked.
func TestNoCheckAfterAnExpiryDestroy(t *testing.T) {
	ctx, st, cat, now := setup(t)
	succeeded(t, st, "b1", "cart", run.Day2, now.Add(-3*time.Hour))
	destroy := &run.Run{ID: run.NewID(), Request: run.Request{Portal: run.PortalPaved, PortalRunID: "expire:x:1", Action: "add-s3-bucket"},
		Operation: run.Delete, Stack: run.Stack{Tenant: "acme", Environment: "dev", Service: "cart"}, State: run.Succeeded,
		CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)}
	if _, _, err := st.CreateRun(ctx, destroy, store.Change{}); err != nil {
		t.Fatal(err)
	}
	s := &Scheduler{Store: st, Catalog: cat, Log: zap.NewNop(), Interval: time.Hour, Portal: "port", Now: func() time.Time { return now }}
	if n, err := s.Check(ctx); err != nil || n != 0 {
		t.Fatalf("checks of a destroyed stack: %d, %v", n, err)
	}
}

// paved's own drift checks do not crowd a quiet stack out of the round:
// more checks than the round reads were made since its last change.
func TestQuietStackStillChecked(t *testing.T) {
	ctx, st, cat, now := setup(t)
	succeeded(t, st, "b1", "quiet", run.Day2, now.Add(-30*24*time.Hour))
	for i := range scanRuns + 1 {
		at := now.Add(-time.Duration(scanRuns+1-i) * time.Minute)
		c := &run.Run{ID: run.NewID(), Request: run.Request{Portal: run.PortalPaved, PortalRunID: fmt.Sprint("drift:x:", i), Action: "add-s3-bucket"},
			Operation: run.Drift, Stack: run.Stack{Tenant: "acme", Environment: "dev", Service: "other"}, State: run.Succeeded, CreatedAt: at, UpdatedAt: at}
		if _, _, err := st.CreateRun(ctx, c, store.Change{}); err != nil {
			t.Fatal(err)
		}
	}
	s := &Scheduler{Store: st, Catalog: cat, Log: zap.NewNop(), Interval: time.Hour, Portal: "port", Now: func() time.Time { return now }}
	if n, err := s.Check(ctx); err != nil || n != 1 {
		t.Fatalf("checks of the quiet stack: %d, %v", n, err)
	}
}
