package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
	"github.com/paved-idp/paved/internal/store/storetest"
)

// The outbox is tested through the store it belongs to: only the store
// writes the runs its tasks are for.

// A run queued behind another on its stack gets its dispatch task parked
// as it is written (no claim needs to find the stack busy first), and the
// run ahead leaving the stack wakes it.
func TestDispatchParkedAtInsertBehindBusyStack(t *testing.T) {
	ctx := context.Background()
	s, db := sqlitetest.OpenWithReader(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	s.SetClock(func() time.Time { return now })
	dispatch := store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}
	a, b, other := storetest.NewRun("a", "svc", now), storetest.NewRun("b", "svc", now.Add(time.Millisecond)), storetest.NewRun("c", "other", now)
	for _, r := range []*run.Run{a, b, other} {
		if _, _, err := s.CreateRun(ctx, r, dispatch); err != nil {
			t.Fatal(err)
		}
	}
	due := func(r *run.Run) time.Time {
		t.Helper()
		var at int64
		if err := db.QueryRow(`SELECT next_at FROM outbox WHERE run_id = ? AND kind = 'dispatch'`, r.ID).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return time.UnixMilli(at).UTC()
	}
	if !due(a).Equal(now) || !due(other).Equal(now) {
		t.Fatalf("the first run of a stack is due at %s / %s, want now (%s)", due(a), due(other), now)
	}
	if got := due(b); !got.After(now) {
		t.Fatalf("a run behind another is due at %s, want parked after %s", got, now)
	}
	tasks, err := s.Claim(ctx, store.KindDispatch, time.Minute, 10)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("claim: %v, %d tasks (want a's and c's)", err, len(tasks))
	}
	for _, tk := range tasks {
		if tk.RunID == b.ID {
			t.Fatal("the parked run was claimed")
		}
	}
	if _, err := s.Update(ctx, a.ID, func(r *run.Run) (store.Change, error) {
		return store.Change{}, r.MoveTo(run.Canceled, now)
	}); err != nil {
		t.Fatal(err)
	}
	if got := due(b); !got.Equal(now) {
		t.Fatalf("after the run ahead left, the next is due at %s, want now (%s)", got, now)
	}
}
