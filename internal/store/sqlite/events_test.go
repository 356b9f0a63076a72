package sqlite_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
	"github.com/paved-idp/paved/internal/store/storetest"
)

// A change's events share one row, and read back one event each, in order
// and numbered on from the run's last, whatever row shape came before: a
// single event, a group, and messages JSON would not carry byte for byte
// (invalid UTF-8), which keep a row each.
func TestGroupedEventsReadBackOneByOne(t *testing.T) {
	ctx := context.Background()
	s, db := sqlitetest.OpenWithReader(t)
	r := storetest.NewRun("p1", "svc", r0())
	if _, _, err := s.CreateRun(ctx, r, store.Change{Events: []string{"received", "inputs <ok> & \"quoted\"", "policy allows", "queued: ✓"}}); err != nil {
		t.Fatal(err)
	}
	changes := [][]string{{"one alone"}, {"bad \xff byte", "after it"}, {"x", "y"}}
	for _, evs := range changes {
		if _, err := s.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
			r.State = run.Dispatching
			return store.Change{Events: evs}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Events(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"received", "inputs <ok> & \"quoted\"", "policy allows", "queued: ✓", "one alone", "bad \xff byte", "after it", "x", "y"}
	var msgs []string
	for i, e := range got {
		msgs = append(msgs, e.Message)
		if e.Seq != int64(i+1) {
			t.Errorf("event %d has seq %d", i, e.Seq)
		}
		if wantState := map[bool]run.State{true: run.Queued, false: run.Dispatching}[i < 4]; e.State != wantState {
			t.Errorf("event %d (%q) has state %s, want %s", i, e.Message, e.State, wantState)
		}
		if e.At.IsZero() || (i > 0 && i < 4 && !e.At.Equal(got[0].At)) {
			t.Errorf("event %d at %v (first at %v)", i, e.At, got[0].At)
		}
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Fatalf("messages %q, want %q", msgs, want)
	}
	// The rows: the intake's four as one, the invalid UTF-8 pair as two.
	var rows int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM run_events WHERE run_id = ?`, r.ID).Scan(&rows); err != nil || rows != 5 {
		t.Fatalf("run_events rows: %d, %v; want 5", rows, err)
	}
}
