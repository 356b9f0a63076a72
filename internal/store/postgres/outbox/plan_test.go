package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/postgres"
	"github.com/paved-idp/paved/internal/store/postgres/outbox"
	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
	"github.com/paved-idp/paved/internal/store/storetest"
)

// A claim reads its batch of due heads and nothing of the backlog behind
// them, and so do the statements that complete, hand back or lease a
// batch: PostgreSQL's own row counts (EXPLAIN ANALYZE) stay a small
// multiple of the batch, whatever waits behind each run's head.
func TestBatchStatementsReadOnlyTheirBatch(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s, conn := open(t, dsn), connect(t, dsn)
	const runs, perRun, batch = 200, 25, 32
	fill(t, s, runs, perRun, "svc")
	history(t, conn, 20000)
	analyze(t, conn)
	now := time.Now() // the store's clock
	tasks, err := s.Claim(ctx, store.KindReport, time.Minute, batch)
	if err != nil || len(tasks) != batch {
		t.Fatalf("claim: %d, %v", len(tasks), err)
	}
	ids := make([]int64, len(tasks))
	runIDs := make([]string, len(tasks))
	for i, task := range tasks {
		ids[i], runIDs[i] = task.ID, task.RunID
	}
	r, err := s.Run(ctx, runIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		query string
		args  []any
		max   map[string]int
	}{
		{"claim", outbox.ClaimHeads, []any{store.KindReport, now.Add(time.Second), batch, now.Add(time.Minute)}, map[string]int{"outbox": 3 * batch}},
		{"complete: lock runs", outbox.LockTaskRuns, []any{ids}, map[string]int{"outbox": batch, "runs": batch}},
		{"complete", outbox.CompleteTasks, []any{ids, now}, map[string]int{"outbox": 6 * batch}},
		{"release", outbox.ReleaseTasks, []any{ids, now}, map[string]int{"outbox": 2 * batch}},
		{"lease", outbox.LeaseTasks, []any{ids, now}, map[string]int{"outbox": 2 * batch}},
		{"dispatch candidates", outbox.DueDispatchHeads, []any{now.Add(time.Second), batch + 16, []int64{}}, map[string]int{"outbox": batch + 16}},
		{"stack free", outbox.StackFree, []any{runIDs}, map[string]int{"runs": 3 * batch}},
		{"stack held", outbox.StackHeld, []any{runIDs}, map[string]int{"runs": 3 * batch}},
		{"stack heads", outbox.StackHeads, []any{r.Stack.Key()}, map[string]int{"outbox": 2}}, // its report head and its dispatch
	} {
		rows := rowsRead(t, conn, tc.query, tc.args...)
		for table, n := range rows {
			if max, ok := tc.max[table]; !ok || n > max {
				t.Errorf("%s read %d %s rows (at most %d) with %d open tasks: %v", tc.name, n, table, max, runs*(perRun+1), rows)
			}
		}
	}
}

// A line of dispatches waiting for a busy stack is parked by the first
// claim that meets it; later claims do not read it again.
func TestWaitingDispatchesAreReadOnce(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s, conn := open(t, dsn), connect(t, dsn)
	holder := storetest.NewRun("holder", "busy", time.Now().UTC().Add(-time.Hour))
	holder.State = run.Running
	if _, _, err := s.CreateRun(ctx, holder, store.Change{}); err != nil {
		t.Fatal(err)
	}
	const waiting = 150
	fill(t, s, waiting, 0, "busy")
	if got, err := s.Claim(ctx, store.KindDispatch, time.Minute, 1); err != nil || len(got) != 0 {
		t.Fatalf("claimed %v, %v while the stack is busy", got, err)
	}
	var parked int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE parked`).Scan(&parked); err != nil || parked != waiting {
		t.Fatalf("%d parked, %v; want %d", parked, err, waiting)
	}
	analyze(t, conn)
	rows := rowsRead(t, conn, outbox.DueDispatchHeads, time.Now(), 17, []int64{})
	if rows["outbox"] != 0 {
		t.Fatalf("the next claim read %d parked tasks again", rows["outbox"])
	}
}

// fill stores runs queued runs on stacks named from svc, each with a
// dispatch task and perRun report tasks.
func fill(t testing.TB, s *postgres.Store, runs, perRun int, svc string) {
	t.Helper()
	errs := make(chan error, runs)
	sem := make(chan struct{}, 8)
	t0 := time.Now().UTC()
	for i := range runs {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			ch := store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}
			for j := range perRun {
				ch.Report(run.Report{Log: fmt.Sprint(j)})
			}
			service := svc
			if perRun > 0 {
				service = fmt.Sprint(svc, i)
			}
			_, _, err := s.CreateRun(context.Background(), storetest.NewRun(fmt.Sprint("fill-", i), service, t0.Add(time.Duration(i)*time.Microsecond)), ch)
			errs <- err
		}()
	}
	for range runs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// history adds n finished runs, with their done tasks, as a store that has
// run for a while holds: the tables' size is what makes the planner's
// choices the ones production sees.
func history(t *testing.T, conn *pgx.Conn, n int) {
	t.Helper()
	ctx := context.Background()
	_, err := conn.Exec(ctx, `INSERT INTO runs (id, portal, portal_run_id, action, state, stack_key, pipeline_id, pipeline_status, data, created_at, updated_at)
		SELECT 'r_old' || i, 'port', 'old-' || i, 'add-s3-bucket', 'succeeded', 'acme-dev-old' || (i % 500), i, 'success', '{}', now() - interval '1 day', now() - interval '1 day'
		FROM generate_series(1, $1) i`, n)
	if err == nil {
		_, err = conn.Exec(ctx, `INSERT INTO outbox (run_id, kind, stack_key, payload, next_at, created_at, done_at, head)
			SELECT id, 'report', stack_key, '{}', created_at, created_at, created_at, false FROM runs WHERE id LIKE 'r_old%'`)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func analyze(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), `ANALYZE`); err != nil {
		t.Fatal(err)
	}
}

// rowsRead runs query under EXPLAIN ANALYZE in a transaction it rolls back
// and returns, per table, the rows its scans produced or filtered out.
func rowsRead(t *testing.T, conn *pgx.Conn, query string, args ...any) map[string]int {
	t.Helper()
	var plan []byte
	err := pgx.BeginFunc(context.Background(), conn, func(tx pgx.Tx) error {
		if err := tx.QueryRow(context.Background(), `EXPLAIN (ANALYZE, FORMAT JSON) `+query, args...).Scan(&plan); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	var doc []struct{ Plan node }
	if err := json.Unmarshal(plan, &doc); err != nil || len(doc) != 1 {
		t.Fatalf("plan %s: %v", plan, err)
	}
	out := map[string]int{}
	var walk func(n node)
	walk = func(n node) {
		if n.Relation != "" {
			out[n.Relation] += int((n.Rows + n.Filtered + n.Rechecked) * n.Loops)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
	return out
}

var errRollback = errors.New("roll back")

type node struct {
	Type      string  `json:"Node Type"`
	Relation  string  `json:"Relation Name"`
	Index     string  `json:"Index Name"`
	Rows      float64 `json:"Actual Rows"`
	Loops     float64 `json:"Actual Loops"`
	Filtered  float64 `json:"Rows Removed by Filter"`
	Rechecked float64 `json:"Rows Removed by Index Recheck"`
	Plans     []node  `json:"Plans"`
}
