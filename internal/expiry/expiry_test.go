package expiry

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/policy"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
)

type fixture struct {
	t     *testing.T
	ctx   context.Context
	st    *sqlite.Store
	clock *sqlitetest.Clock
	s     *Scheduler
}

func newFixture(t *testing.T) *fixture {
	ctx := context.Background()
	st := sqlitetest.Open(t)
	clock := sqlitetest.WithClock(st)
	clock.T = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	cat, err := catalog.Load("../../actions")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(ctx, "../../actions/policy", policy.Data{
		Environments: []policy.Environment{{Name: "dev"}, {Name: "prod", Production: true}}, Tenants: []string{"acme"}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, st: st, clock: clock}
	f.s = &Scheduler{Store: st, Catalog: cat, Log: zap.NewNop(), WarnBefore: time.Hour, Now: clock.Now, Policy: pol}
	return f
}

// succeeded stores a succeeded run of action on stack acme-<env>-<service>
// made now, as the tracker leaves it (outputs, an expiry for a TTL).
func (f *fixture) succeeded(key, action string, op run.Operation, env, service string, ttl time.Duration, inputs map[string]any) *run.Run {
	f.t.Helper()
	in := map[string]any{"tenant": "acme", "environment": env, "name": service}
	for k, v := range inputs {
		in[k] = v
	}
	now := f.clock.Now()
	r := &run.Run{ID: run.NewID(), Request: run.Request{Portal: "port", PortalRunID: key, Action: action, Inputs: in,
		Entity: run.Entity{Identifier: service, Blueprint: "service"}},
		Operation: op, Blueprint: "service", Stack: run.Stack{Tenant: "acme", Environment: env, Service: service}, State: run.Succeeded,
		Project: "platform/paved-provision", Ref: "main", Team: "payments", TTL: ttl, CreatedAt: now, UpdatedAt: now,
		Outputs: map[string]any{"repositoryUrl": "https://git/x", "url": "https://x", "region": "eu-west-1",
			"buckets": map[string]any{"receipts": map[string]any{"name": "acme-" + env + "-" + service + "-receipts", "arn": "arn:aws:s3:::x"}}}}
	if ttl > 0 {
		r.ExpiresAt = now.Add(ttl)
	}
	if _, _, err := f.st.CreateRun(f.ctx, r, store.Change{}); err != nil {
		f.t.Fatal(err)
	}
	f.clock.Add(time.Second) // runs of one stack are told apart by their creation
	return r
}

func (f *fixture) check(want Result) {
	f.t.Helper()
	got, err := f.s.Check(f.ctx)
	if err != nil || got != want {
		f.t.Fatalf("at %s: check = %+v, %v; want %+v", f.clock.Now().Format(time.TimeOnly), got, err, want)
	}
}

func (f *fixture) destroys() []*run.Run {
	f.t.Helper()
	rs, err := f.st.ListRuns(f.ctx, store.Query{Action: "create-service", Stack: "acme-dev-checkout"})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*run.Run
	for _, r := range rs {
		if r.Request.Portal == run.PortalPaved {
			out = append(out, r)
		}
	}
	return out
}

// entityReports are the open reports' entity writes, by identifier.
func entityReports(t *testing.T, st *sqlite.Store) map[string]run.Report {
	out := map[string]run.Report{}
	for _, rep := range sqlitetest.Reports(t, st) {
		if rep.Entity != nil {
			out[rep.Entity.Identifier] = rep
		}
	}
	return out
}

// An ephemeral stack is warned of once, WarnBefore its expiry, on the
// entities that are its alone; at expiry one destroy is queued, never a
// second for the same expiry (not even once it failed); a new TTL after the
// failure brings a new destroy at the new expiry.
func TestWarnThenDestroyOnce(t *testing.T) {
	f := newFixture(t)
	c := f.succeeded("c1", "create-service", run.Create, "dev", "checkout", 8*time.Hour, map[string]any{"ttl": "8h"})
	f.succeeded("b1", "add-s3-bucket", run.Day2, "dev", "checkout", 0, map[string]any{"bucketName": "receipts"})
	// The same service in production: its entity is not the ephemeral stack's alone.
	f.succeeded("p1", "create-service", run.Create, "prod", "checkout", 0, nil)

	f.clock.T = c.ExpiresAt.Add(-2 * time.Hour)
	f.check(Result{}) // the expiry is shown, not yet warned of
	if p := entityReports(t, f.st)["acme-dev-checkout-receipts"].Entity.Properties; p["expiresAt"] != c.ExpiresAt.Format(time.RFC3339) || p["status"] != nil {
		t.Fatalf("the bucket's first expiry write = %v", p)
	}
	f.check(Result{})
	if reps := entityReports(t, f.st); len(reps) != 0 {
		t.Fatalf("shown twice: %v", reps)
	}
	f.clock.T = c.ExpiresAt.Add(-30 * time.Minute)
	f.check(Result{Warned: 1})
	f.check(Result{}) // warned once
	reps := entityReports(t, f.st)
	bucket, ok := reps["acme-dev-checkout-receipts"]
	if !ok || len(reps) != 1 || !bucket.Untied || bucket.Entity.Properties["status"] != catalog.StatusExpiring ||
		bucket.Entity.Properties["expiresAt"] != c.ExpiresAt.Format(time.RFC3339) {
		t.Fatalf("warning reports = %+v; want the bucket alone, untied, expiring at %s", reps, c.ExpiresAt)
	}

	f.clock.T = c.ExpiresAt
	f.check(Result{Destroying: 1})
	f.check(Result{})
	d := f.destroys()
	if len(d) != 1 || d[0].Operation != run.Delete || d[0].State != run.Queued || d[0].Request.Action != "create-service" ||
		!slices.Equal(d[0].ReportsOn, []run.EntityRef{{Blueprint: "s3_bucket", Identifier: "acme-dev-checkout-receipts"}}) {
		t.Fatalf("destroys = %+v", d)
	}
	if tasks, err := f.st.Claim(f.ctx, store.KindDispatch, time.Minute, 10); err != nil || len(tasks) != 1 || tasks[0].RunID != d[0].ID {
		t.Fatalf("dispatch tasks = %+v, %v", tasks, err)
	}
	// While the destroy is under way the stack cannot be extended.
	if _, err := f.s.Extend(f.ctx, extend("2h")); !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), d[0].ID) {
		t.Fatalf("extend during the destroy: %v", err)
	}

	// The destroy fails: it stays failed, and no other is started for it.
	if _, err := f.st.Update(f.ctx, d[0].ID, func(r *run.Run) (store.Change, error) {
		return store.Change{}, r.MoveTo(run.Canceled, f.clock.Now())
	}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour)
	f.check(Result{})
	if n := len(f.destroys()); n != 1 {
		t.Fatalf("%d destroys after the first failed, want 1", n)
	}

	// A new TTL: the stack expires anew; its entities keep the failed
	// destroy's status (true: it may be half destroyed) with the new expiry.
	r, err := f.s.Extend(f.ctx, extend("2h"))
	if err != nil || !r.ExpiresAt.Equal(f.clock.Now().Add(2*time.Hour)) || !r.ExpiryWarnedAt.IsZero() {
		t.Fatalf("extend = %+v, %v", r, err)
	}
	if p := entityReports(t, f.st)["acme-dev-checkout-receipts"].Entity.Properties; p["expiresAt"] != r.ExpiresAt.Format(time.RFC3339) || p["status"] != nil {
		t.Fatalf("the bucket's write after the extension = %v", p)
	}
	f.clock.T = r.ExpiresAt
	f.check(Result{Destroying: 1})
	d = f.destroys()
	if len(d) != 2 {
		t.Fatalf("%d destroys after the new expiry, want 2", len(d))
	}
	// That one destroys the stack: the expiry is done with, and no write
	// goes onto the destroyed stack's entities.
	if _, err := f.st.Update(f.ctx, d[0].ID, func(r *run.Run) (store.Change, error) {
		r.State = run.Succeeded
		return store.Change{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	sqlitetest.Reports(t, f.st)
	f.check(Result{Cleared: 1})
	if left, _ := f.st.ListRuns(f.ctx, store.Query{Expiring: true}); len(left) != 0 || len(entityReports(t, f.st)) != 0 {
		t.Fatalf("after the destroy: expiring runs %v", left)
	}
}

// A stack deleted (or created again) since its CREATE keeps no expiry.
func TestDeletedStackForgetsItsExpiry(t *testing.T) {
	f := newFixture(t)
	c := f.succeeded("c1", "create-service", run.Create, "dev", "checkout", time.Hour, map[string]any{"ttl": "1h"})
	f.succeeded("d1", "delete-service", run.Delete, "dev", "checkout", 0, nil)
	f.clock.T = c.ExpiresAt
	f.check(Result{Cleared: 1})
	f.check(Result{})
	if n := len(f.destroys()); n != 0 {
		t.Fatalf("%d destroys of a deleted stack", n)
	}
	if _, err := f.s.Extend(f.ctx, extend("1h")); !errors.Is(err, ErrNotEphemeral) {
		t.Fatalf("extend a deleted stack: %v", err)
	}
}

// The policy bounds a new TTL as it bounds the first; a stack made without
// one cannot be extended; bad inputs say what they must be.
func TestExtendIsBounded(t *testing.T) {
	f := newFixture(t)
	f.succeeded("c1", "create-service", run.Create, "dev", "checkout", time.Hour, map[string]any{"ttl": "1h"})
	f.succeeded("p1", "create-service", run.Create, "prod", "cart", 0, nil)
	if _, err := f.s.Extend(f.ctx, extend("30d")); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "at most 336h") {
		t.Fatalf("extend by 30d: %v", err)
	}
	req := extend("1h")
	req.Entity.Identifier, req.Inputs["environment"] = "cart", "prod"
	if _, err := f.s.Extend(f.ctx, req); !errors.Is(err, ErrNotEphemeral) {
		t.Fatalf("extend a kept stack: %v", err)
	}
	for _, ttl := range []string{"", "0h", "2w", "1.5h"} {
		if _, err := f.s.Extend(f.ctx, extend(ttl)); !errors.Is(err, ErrBadExtension) {
			t.Fatalf("extend by %q: %v", ttl, err)
		}
	}
}

func extend(ttl string) run.Request {
	return run.Request{Portal: "port", PortalRunID: "x1", Action: ExtendAction, User: run.User{Email: "dev@x.io", Teams: []string{"payments"}},
		Entity: run.Entity{Identifier: "checkout", Blueprint: "service"}, Inputs: map[string]any{"tenant": "acme", "environment": "dev", "ttl": ttl}}
}

// An extension and the destroy are decided under the CREATE's row: an
// expired stack extended before the scheduler decided is not destroyed; a
// decided destroy whose run was never stored (a crash between) is stored
// by the next check, under the decided id.
func TestExtensionAndDestroyDecideUnderTheRow(t *testing.T) {
	f := newFixture(t)
	c := f.succeeded("c1", "create-service", run.Create, "dev", "checkout", time.Hour, map[string]any{"ttl": "1h"})
	f.clock.T = c.ExpiresAt.Add(time.Second) // expired, no check ran yet
	if _, err := f.s.Extend(f.ctx, extend("1h")); err != nil {
		t.Fatalf("extend an expired stack before its destroy was decided: %v", err)
	}
	f.check(Result{Warned: 1}) // the new expiry is an hour away: within WarnBefore
	if n := len(f.destroys()); n != 0 {
		t.Fatalf("%d destroys after the extension", n)
	}

	// The scheduler decided, then stopped before storing the run.
	cur, _ := f.st.Run(f.ctx, c.ID)
	f.clock.T = cur.ExpiresAt
	id := run.NewID()
	if _, err := f.st.Update(f.ctx, c.ID, func(r *run.Run) (store.Change, error) {
		r.ExpiryDestroying, r.ExpiryDestroyRun = r.ExpiresAt, id
		return store.Change{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Extend(f.ctx, extend("1h")); !errors.Is(err, ErrExpired) {
		t.Fatalf("extend once the destroy was decided: %v", err)
	}
	f.check(Result{Destroying: 1})
	if d := f.destroys(); len(d) != 1 || d[0].ID != id {
		t.Fatalf("destroys %+v, want the decided run %s", d, id)
	}
}

// A CREATE or DELETE of the stack under way at expiry holds the destroy: it
// may make the stack permanent, or end it.
func TestChangeInFlightHoldsTheDestroy(t *testing.T) {
	f := newFixture(t)
	c := f.succeeded("c1", "create-service", run.Create, "dev", "checkout", time.Hour, map[string]any{"ttl": "1h"})
	f.check(Result{Warned: 1}) // the expiry is shown on the service, within WarnBefore
	sqlitetest.Reports(t, f.st)
	again := f.succeeded("c2", "create-service", run.Create, "dev", "checkout", 0, nil)
	if _, err := f.st.Update(f.ctx, again.ID, func(r *run.Run) (store.Change, error) {
		r.State = run.Running
		return store.Change{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.clock.T = c.ExpiresAt
	f.check(Result{})
	if n := len(f.destroys()); n != 0 {
		t.Fatalf("%d destroys while the stack is created again", n)
	}
	if _, err := f.st.Update(f.ctx, again.ID, func(r *run.Run) (store.Change, error) {
		r.State = run.Succeeded
		return store.Change{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.check(Result{Cleared: 1})
	// The expiry was shown: it is taken off the entity again.
	if p := entityReports(t, f.st)["checkout"].Entity.Properties; p == nil || p["expiresAt"] != nil {
		t.Fatalf("the service's write when the expiry was cleared: %v", p)
	}
}

// An extension only lengthens: ending a stack sooner is a delete.
func TestExtendNeverShortens(t *testing.T) {
	f := newFixture(t)
	f.succeeded("c1", "create-service", run.Create, "dev", "checkout", 3*24*time.Hour, map[string]any{"ttl": "3d"})
	if _, err := f.s.Extend(f.ctx, extend("1h")); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "only lengthens") {
		t.Fatalf("shorten by extending: %v", err)
	}
}

// At its dispatch (holding the stack) an expiry's destroy is judged again:
// a CREATE of the stack made after the expiry was set and before the
// destroy (one the scheduler did not see when it decided) stops it, as
// does a moved expiry; otherwise it runs.
func TestDestroyJudgedAgainAtDispatch(t *testing.T) {
	f := newFixture(t)
	c := f.succeeded("c1", "create-service", run.Create, "dev", "checkout", time.Hour, map[string]any{"ttl": "1h"})
	f.clock.T = c.ExpiresAt
	f.check(Result{Destroying: 1})
	d := f.destroys()[0]
	if why, err := f.s.Obsolete(f.ctx, d); err != nil || why != "" {
		t.Fatalf("a due destroy judged obsolete: %q, %v", why, err)
	}
	if why, err := f.s.Obsolete(f.ctx, c); err != nil || why != "" {
		t.Fatalf("another run judged: %q, %v", why, err)
	}
	// A CREATE taken in just before the destroy was recorded.
	again := &run.Run{ID: run.NewID(), Request: run.Request{Portal: "port", PortalRunID: "c2", Action: "create-service",
		Inputs: map[string]any{"tenant": "acme", "environment": "dev", "name": "checkout"}},
		Operation: run.Create, Stack: c.Stack, State: run.Succeeded, CreatedAt: d.CreatedAt.Add(-time.Millisecond), UpdatedAt: d.CreatedAt}
	if _, _, err := f.st.CreateRun(f.ctx, again, store.Change{}); err != nil {
		t.Fatal(err)
	}
	if why, err := f.s.Obsolete(f.ctx, d); err != nil || !strings.Contains(why, "created again by run "+again.ID) {
		t.Fatalf("the destroy after a re-create: %q, %v", why, err)
	}
}

// A stack deleted by hand is not extended, even before the scheduler saw
// the delete; after a failed destroy a delete still ends the expiry; a
// CREATE that only waits for an approval does not hold the destroy.
func TestDeletesEndExpiriesAndApprovalsDoNotHold(t *testing.T) {
	f := newFixture(t)
	c := f.succeeded("c1", "create-service", run.Create, "dev", "checkout", time.Hour, map[string]any{"ttl": "1h"})
	waiting := f.succeeded("c2", "create-service", run.Create, "dev", "checkout", 0, nil)
	if _, err := f.st.Update(f.ctx, waiting.ID, func(r *run.Run) (store.Change, error) {
		r.State = run.AwaitingApproval
		return store.Change{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.clock.T = c.ExpiresAt
	f.check(Result{Destroying: 1})
	d := f.destroys()[0]
	if _, err := f.st.Update(f.ctx, d.ID, func(r *run.Run) (store.Change, error) { return store.Change{}, r.MoveTo(run.Canceled, f.clock.Now()) }); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	f.succeeded("d1", "delete-service", run.Delete, "dev", "checkout", 0, nil)
	if _, err := f.s.Extend(f.ctx, extend("2h")); !errors.Is(err, ErrNotEphemeral) || !strings.Contains(err.Error(), "deleted by run") {
		t.Fatalf("extend a stack deleted by hand: %v", err)
	}
	f.check(Result{Cleared: 1})
	if left, _ := f.st.ListRuns(f.ctx, store.Query{Expiring: true}); len(left) != 0 {
		t.Fatalf("expiring after the delete: %v", left)
	}
}
