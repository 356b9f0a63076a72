package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// filters checks the list filters of the operator page and the backlog
// figures of the metrics.
func filters(t *testing.T, open func(t *testing.T) Backend) {
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	t.Run("list filters by action, tenant, environment and user", func(t *testing.T) {
		s := open(t)
		mk := func(id, action, tenant, env, email string) string {
			r := NewRun(id, "svc-"+id, t0)
			r.Request.Action, r.Stack.Tenant, r.Stack.Environment, r.Request.User.Email = action, tenant, env, email
			if _, _, err := s.CreateRun(ctx, r, store.Change{}); err != nil {
				t.Fatal(err)
			}
			return r.ID
		}
		a := mk("a", "add-s3-bucket", "acme", "prod", "dana@acme.example")
		b := mk("b", "add-s3-bucket", "globex", "dev", "sam@acme.example")
		c := mk("c", "create-service", "acme", "dev", "dana@acme.example")
		for _, tc := range []struct {
			q    store.Query
			want []string
		}{
			{store.Query{Action: "add-s3-bucket", ByID: true}, slices.Sorted(slices.Values([]string{a, b}))},
			{store.Query{Tenant: "acme", ByID: true}, slices.Sorted(slices.Values([]string{a, c}))},
			{store.Query{Environment: "dev", ByID: true}, slices.Sorted(slices.Values([]string{b, c}))},
			{store.Query{User: "dana@acme.example", Environment: "dev", ByID: true}, []string{c}},
			{store.Query{Tenant: "initech", ByID: true}, nil},
			// A value shaped like SQL is only a value.
			{store.Query{Tenant: "acme' OR '1'='1", ByID: true}, nil},
		} {
			got, err := s.ListRuns(ctx, tc.q)
			if err != nil {
				t.Fatalf("%+v: %v", tc.q, err)
			}
			if ids := runIDsOf(got); !slices.Equal(ids, tc.want) {
				t.Errorf("%+v: got %v, want %v", tc.q, ids, tc.want)
			}
		}
	})
	t.Run("backlog counts open tasks and dates the oldest due head", func(t *testing.T) {
		s := open(t)
		r := NewRun("bl", "svc", t0)
		ch := (&store.Change{}).Report(run.Report{Log: "one"}).Report(run.Report{Log: "two"})
		ch.Tasks = append(ch.Tasks, store.NewTask{Kind: store.KindDispatch, NotBefore: time.Now().Add(time.Hour)})
		if _, _, err := s.CreateRun(ctx, r, *ch); err != nil {
			t.Fatal(err)
		}
		rep, err := s.Backlog(ctx, store.KindReport)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Depth != 2 || rep.OldestDue.IsZero() || rep.OldestDue.After(time.Now()) {
			t.Fatalf("report backlog %+v: want depth 2 and a due time in the past", rep)
		}
		dis, err := s.Backlog(ctx, store.KindDispatch)
		if err != nil {
			t.Fatal(err)
		}
		if dis.Depth != 1 || !dis.OldestDue.IsZero() {
			t.Fatalf("dispatch backlog %+v: want depth 1 and nothing due (it waits an hour)", dis)
		}
		none, err := s.Backlog(ctx, store.KindCancel)
		if err != nil || none.Depth != 0 || !none.OldestDue.IsZero() {
			t.Fatalf("cancel backlog %+v %v: want empty", none, err)
		}
	})
}
