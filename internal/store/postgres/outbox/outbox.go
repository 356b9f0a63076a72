// Package outbox is the PostgreSQL store's outbox: the tasks a run's
// changes write in the run's own transaction (Queue, Restack, Wake), which
// workers claim under a lease and complete, retry or hand back (Outbox).
// The run store (postgres) owns the schema and embeds an Outbox: its
// methods are the store's.
package outbox

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/postgres/txn"
)

// How the outbox stays cheap however long its backlog grows:
//
//   - Of the open tasks of a (run, kind), only the oldest has head set. It
//     is set when a task is written to a (run, kind) with no open task, and
//     moved to the next open task when the head completes, both under the
//     run's row lock. A claim reads the partial index of due heads
//     (outbox_due_heads), earliest due first, and stops at its batch: it
//     never looks at the tasks queued behind a head.
//   - A dispatch head whose stack is taken is parked: its next_at moves
//     parkFor on and it leaves the due heads, so later claims do not read it
//     again. A run that lets its stack go wakes that stack's parked heads in
//     the same transaction (the store's Update calls Wake). A claim parks a
//     head only behind a run it holds a share lock on (stackHeld): the run
//     cannot let the stack go before the claim commits, so its wake comes
//     after the park and sees it. A head whose every blocker is being
//     changed right now is left due, for the next claim to look at again.
//
// Lock order, so that no two transactions wait for each other: a
// transaction takes run rows before outbox rows, several of either in id
// order; a claim takes outbox rows with SKIP LOCKED and never waits.

// parkFor is how long a dispatch task waiting for its stack sleeps before
// it is looked at again. A run that lets its stack go wakes the stack's
// waiting tasks at once, and no wake can be missed (see stackHeld); this
// only bounds the wait should the stack be freed behind paved's back. It
// is long because each parked head is tested again when it comes due: at
// 15 s, a backlog of 55,000 runs behind busy stacks cost thousands of
// tests a second (BENCHMARKS.md, seventh round).
const parkFor = 5 * time.Minute

// Outbox is the outbox table of a store's database.
type Outbox struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// New returns the outbox in pool's database. now is the store's clock,
// read at each use, so that the store's SetClock moves the outbox's too.
func New(pool *pgxpool.Pool, now func() time.Time) *Outbox {
	return &Outbox{pool: pool, now: now}
}

// claimHeads leases up to limit due heads of kind in one statement. The
// locked ids are handed to the UPDATE as an array so that it finds them by
// primary key (a join may hash the whole table).
const claimHeads = `UPDATE outbox SET attempts = attempts + 1, next_at = $4, parked = false
	WHERE id = ANY(ARRAY(
		SELECT id FROM outbox
		WHERE kind = $1 AND head AND done_at IS NULL AND next_at <= $2
		ORDER BY next_at, id LIMIT $3
		FOR UPDATE SKIP LOCKED))
	RETURNING id, run_id, kind, payload, attempts`

// dueDispatchHeads locks candidate dispatch heads; which of them may go is
// decided by the next statement, whose snapshot is taken after the locks.
// $3 are the heads this claim already left due (see stackHeld), which its
// own locks would not skip.
const dueDispatchHeads = `SELECT id, run_id FROM outbox
	WHERE kind = 'dispatch' AND head AND done_at IS NULL AND next_at <= $1 AND id <> ALL($3::bigint[])
	ORDER BY next_at, id LIMIT $2
	FOR UPDATE SKIP LOCKED`

// stackFree keeps the runs (of $1) whose stack is free for them: no other
// run of the stack dispatching, running, or ended (canceled, timed out)
// while its pipeline still winds down in GitLab, and no older run queued
// for it. It reads only the runs on the stack (runs_on_stack), not its history.
// (A scalar subquery, not NOT EXISTS: PostgreSQL may turn the latter into
// an anti join that hashes every run on every stack.)
const stackFree = `SELECT r.id FROM runs r WHERE r.id = ANY($1::text[]) AND (
	SELECT b.id FROM runs b WHERE ` + holdsOff + ` LIMIT 1) IS NULL`

// holdsOff says run b holds run r off its stack: b holds the stack, or
// waits for it ahead of r.
const holdsOff = `b.on_stack AND b.stack_key = r.stack_key AND b.id <> r.id
	AND (b.state <> 'queued' OR b.created_at < r.created_at OR (b.created_at = r.created_at AND b.id < r.id))`

// stackHeld keeps the runs (of $1, found waiting by stackFree) that wait
// behind a run this claim can share-lock and that still holds them off in
// its latest version. Only those are parked. Without the lock a head could
// be parked on a view from before a run let its stack go, and that run's
// wake could miss it (a head created after the wake's look at the stack,
// and claimed before that run commits); with it, a run that lets the stack
// go waits for the claim to commit, then wakes what it parked. The claim
// never waits: a blocker locked by another transaction (being changed) is
// skipped, and a head with no other is left due, to be looked at again.
const stackHeld = `SELECT r.id FROM runs r WHERE r.id = ANY($1::text[]) AND EXISTS (
	SELECT 1 FROM runs b WHERE ` + holdsOff + ` FOR SHARE OF b SKIP LOCKED)`

const leaseTasks = `UPDATE outbox SET attempts = attempts + 1, next_at = $2, parked = false
	WHERE id = ANY($1::bigint[])
	RETURNING id, run_id, kind, payload, attempts`

// Claim leases up to limit due tasks of a kind for lease; a task not
// completed or retried by then becomes claimable again (a crashed
// replica's work is picked up by another). Only the oldest open task of a
// (run, kind) is claimable, and a dispatch only while its stack is free.
func (o *Outbox) Claim(ctx context.Context, kind string, lease time.Duration, limit int) ([]store.Task, error) {
	if limit <= 0 {
		return nil, nil
	}
	now := o.now()
	var out []store.Task
	var err error
	if kind == store.KindDispatch {
		err = txn.Run(ctx, o.pool, func(tx pgx.Tx) error {
			out, err = o.claimDispatch(ctx, tx, now, lease, limit)
			return err
		})
	} else {
		var rows pgx.Rows
		if rows, err = o.pool.Query(ctx, claimHeads, kind, now, limit, now.Add(lease)); err == nil {
			out, err = collectTasks(rows)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("claim %s tasks: %w", kind, err)
	}
	slices.SortFunc(out, func(a, b store.Task) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// claimDispatch leases up to limit dispatch heads whose stack is free and
// parks the ones it finds waiting, taking a few more candidates per round
// than it needs so that a line of waiting heads is parked in few rounds.
func (o *Outbox) claimDispatch(ctx context.Context, tx pgx.Tx, now time.Time, lease time.Duration, limit int) ([]store.Task, error) {
	const slack = 16
	var out []store.Task
	left := []int64{} // heads left due this claim (not NULL: <> ALL(NULL) is never true)
	for len(out) < limit {
		want := limit - len(out) + slack
		rows, err := tx.Query(ctx, dueDispatchHeads, now, want, left)
		if err != nil {
			return nil, err
		}
		type cand struct {
			id    int64
			runID string
		}
		var cands []cand
		var c cand
		if _, err := pgx.ForEachRow(rows, []any{&c.id, &c.runID}, func() error { cands = append(cands, c); return nil }); err != nil {
			return nil, err
		}
		if len(cands) == 0 {
			break
		}
		runIDs := make([]string, len(cands))
		for i, c := range cands {
			runIDs[i] = c.runID
		}
		free, err := runSet(ctx, tx, stackFree, runIDs)
		if err != nil {
			return nil, err
		}
		var take, park, waiting []int64
		var waitingRuns []string
		for _, c := range cands {
			switch {
			case !free[c.runID]:
				waiting, waitingRuns = append(waiting, c.id), append(waitingRuns, c.runID)
			case len(out)+len(take) < limit:
				take = append(take, c.id)
			}
		}
		if len(waiting) > 0 {
			held, err := runSet(ctx, tx, stackHeld, waitingRuns)
			if err != nil {
				return nil, err
			}
			for i, id := range waiting {
				if held[waitingRuns[i]] {
					park = append(park, id)
				} else {
					left = append(left, id)
				}
			}
		}
		if len(park) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE outbox SET parked = true, next_at = $2 WHERE id = ANY($1::bigint[])`, park, now.Add(parkFor)); err != nil {
				return nil, err
			}
		}
		if len(take) > 0 {
			rows, err := tx.Query(ctx, leaseTasks, take, now.Add(lease))
			if err != nil {
				return nil, err
			}
			got, err := collectTasks(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, got...)
		}
		if len(cands) < want {
			break
		}
	}
	return out, nil
}

// runSet runs query, which keeps some of the run ids it is given, on ids.
func runSet(ctx context.Context, tx pgx.Tx, query string, ids []string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, query, ids)
	if err != nil {
		return nil, err
	}
	kept, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(kept))
	for _, id := range kept {
		set[id] = true
	}
	return set, nil
}

func collectTasks(rows pgx.Rows) ([]store.Task, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Task, error) {
		var t store.Task
		var payload []byte
		err := row.Scan(&t.ID, &t.RunID, &t.Kind, &payload, &t.Attempts)
		t.Payload = payload
		return t, err
	})
}

// completeTasks marks open tasks done and makes the next open task of each
// of their (run, kind) the head, in one statement: its snapshot still shows
// the completed tasks open, so the next head is the oldest open task that
// is not one of them. The runs' row locks are taken first (lockTaskRuns).
const completeTasks = `WITH done AS (
		UPDATE outbox SET done_at = $2, head = false, parked = false
		WHERE id = ANY(ARRAY(SELECT id FROM outbox WHERE id = ANY($1::bigint[]) AND done_at IS NULL ORDER BY id FOR UPDATE))
		RETURNING run_id, kind),
	next AS (
		SELECT n.id FROM (SELECT DISTINCT run_id, kind FROM done) g
		CROSS JOIN LATERAL (
			SELECT p.id FROM outbox p
			WHERE p.run_id = g.run_id AND p.kind = g.kind AND p.done_at IS NULL AND p.id <> ALL($1::bigint[])
			ORDER BY p.id LIMIT 1) n)
	UPDATE outbox SET head = true WHERE id = ANY(ARRAY(SELECT id FROM next)) AND NOT head`

const lockTaskRuns = `SELECT id FROM runs
	WHERE id = ANY(ARRAY(SELECT run_id FROM outbox WHERE id = ANY($1::bigint[]) AND done_at IS NULL))
	ORDER BY id FOR NO KEY UPDATE`

// Complete marks tasks done, all in one transaction, and hands each of
// their (run, kind) to its next task. Completing a task that is done
// already, or that does not exist, changes nothing.
func (o *Outbox) Complete(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	err := txn.Run(ctx, o.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(lockTaskRuns, ids)
		b.Queue(completeTasks, ids, o.now())
		return txn.SendBatch(ctx, tx, b)
	})
	if err != nil {
		return fmt.Errorf("complete %d task(s): %w", len(ids), err)
	}
	return nil
}

// Retry makes a task claimable again at the given time and keeps the error.
func (o *Outbox) Retry(ctx context.Context, id int64, at time.Time, lastErr string) error {
	if _, err := o.pool.Exec(ctx, `UPDATE outbox SET next_at = $2, last_error = $3, parked = false WHERE id = $1`, id, at, txn.Clean(lastErr)); err != nil {
		return fmt.Errorf("retry task %d: %w", id, err)
	}
	return nil
}

const releaseTasks = `UPDATE outbox SET next_at = $2, parked = false
	WHERE id = ANY(ARRAY(SELECT id FROM outbox WHERE id = ANY($1::bigint[]) AND done_at IS NULL ORDER BY id FOR UPDATE))`

// Release makes claimed tasks claimable at once; a worker that shuts down
// hands its claims back instead of waiting for their lease to end.
func (o *Outbox) Release(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := o.pool.Exec(ctx, releaseTasks, ids, o.now())
	if err != nil {
		return fmt.Errorf("release tasks: %w", err)
	}
	return nil
}

// Pending counts open tasks of a kind.
func (o *Outbox) Pending(ctx context.Context, kind string) (int, error) {
	var n int
	if err := o.pool.QueryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE kind = $1 AND done_at IS NULL`, kind).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s tasks: %w", kind, err)
	}
	return n, nil
}

// Backlog tells an outbox kind's depth and its oldest due head.
func (o *Outbox) Backlog(ctx context.Context, kind string) (store.Backlog, error) {
	var b store.Backlog
	var oldest *time.Time
	if err := o.pool.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM outbox WHERE kind = $1 AND done_at IS NULL),
		(SELECT MIN(next_at) FROM outbox WHERE kind = $1 AND head AND done_at IS NULL)`, kind).Scan(&b.Depth, &oldest); err != nil {
		return store.Backlog{}, fmt.Errorf("%s backlog: %w", kind, err)
	}
	if oldest != nil && !oldest.After(o.now()) {
		b.OldestDue = *oldest
	}
	return b, nil
}
