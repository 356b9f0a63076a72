// Package outbox is the SQLite store's task queue: the tasks a change
// writes beside its run, in the run's own transaction (Tasks), and the
// workers' side of them (Queue): claims under a lease, completion, retries,
// hand-backs and the backlog. A task is claimable when it is due and heads
// its (run, kind); a dispatch also waits for its stack (stack.go).
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite/batch"
)

// A task is claimable when it is due and heads its (run, kind): the oldest
// open task of its kind for its run, so a run's reports reach the portal in
// the order written. The partial index outbox_heads makes this a range read.
const claimable = `o.kind = ? AND o.head = 1 AND o.done_at IS NULL AND o.next_at <= ?`

// writer is the store's single writer (batch.Writer): the outbox's writes
// queue behind the runs' like any other.
type writer interface {
	Tx(ctx context.Context, fn func(batch.Tx) error) error
	Exec(ctx context.Context, query string, args ...any) error
}

// reader reads outside a transaction (batch.Reader, its statement cache).
type reader interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Queue is a store's outbox as its workers see it.
type Queue struct {
	w   writer
	r   reader
	now func() time.Time
}

// New returns the outbox that writes through w and reads through r; now
// is the store's clock.
func New(w writer, r reader, now func() time.Time) *Queue {
	return &Queue{w: w, r: r, now: now}
}

// Claim leases up to limit due tasks of a kind for lease; a task not
// completed or retried by then becomes claimable again (a crashed worker's
// work is picked up). Dispatch heads whose stack is busy are parked.
func (q *Queue) Claim(ctx context.Context, kind string, lease time.Duration, limit int) ([]store.Task, error) {
	now := q.now()
	free := "1"
	scan := limit
	if kind == store.KindDispatch {
		free, scan = stackFree, max(limit, 64)
	}
	var out []store.Task
	err := q.w.Tx(ctx, func(tx batch.Tx) error {
		out = nil // a batch may run its writes twice (see batch.Writer)
		rows, err := tx.QueryContext(ctx, `SELECT o.id, o.run_id, o.kind, o.payload, o.attempts, `+free+` FROM outbox o INDEXED BY outbox_heads WHERE `+claimable+` ORDER BY o.next_at LIMIT ?`,
			kind, now.UnixMilli(), scan)
		if err != nil {
			return err
		}
		defer rows.Close()
		var parked []any
		for rows.Next() {
			var t store.Task
			var payload string
			var ok bool
			if err := rows.Scan(&t.ID, &t.RunID, &t.Kind, &payload, &t.Attempts, &ok); err != nil {
				return err
			}
			if !ok {
				parked = append(parked, t.ID)
				continue
			}
			if len(out) == limit {
				continue
			}
			t.Payload = []byte(payload)
			t.Attempts++
			out = append(out, t)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(parked) > 0 {
			args := append([]any{now.Add(parkFor).UnixMilli()}, parked...)
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET next_at = ? WHERE id IN (`+
				strings.TrimSuffix(strings.Repeat("?,", len(parked)), ",")+`)`, args...); err != nil {
				return err
			}
		}
		if len(out) == 0 {
			return nil
		}
		ids := make([]any, 0, len(out)+1)
		ids = append(ids, now.Add(lease).UnixMilli())
		for _, t := range out {
			ids = append(ids, t.ID)
		}
		_, err = tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_at = ? WHERE id IN (`+
			strings.TrimSuffix(strings.Repeat("?,", len(out)), ",")+`)`, ids...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim %s tasks: %w", kind, err)
	}
	return out, nil
}

// Complete marks tasks done, in one transaction, and makes the next open
// task of each one's (run, kind) the head, claimable in its turn.
func (q *Queue) Complete(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	now := q.now().UnixMilli()
	err := q.w.Tx(ctx, func(tx batch.Tx) error {
		for _, id := range ids {
			var runID, kind string
			err := tx.QueryRowContext(ctx, `UPDATE outbox SET done_at = ?, head = 0 WHERE id = ? AND done_at IS NULL RETURNING run_id, kind`, now, id).Scan(&runID, &kind)
			if errors.Is(err, sql.ErrNoRows) {
				continue // completed before (a lease ran out and another worker finished it)
			}
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET head = 1 WHERE id = (
				SELECT id FROM outbox WHERE run_id = ? AND kind = ? AND done_at IS NULL ORDER BY id LIMIT 1)`, runID, kind); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("complete %d task(s): %w", len(ids), err)
	}
	return nil
}

// Retry makes a task claimable again at the given time and keeps the error.
func (q *Queue) Retry(ctx context.Context, id int64, at time.Time, lastErr string) error {
	if err := q.w.Exec(ctx, `UPDATE outbox SET next_at = ?, last_error = ? WHERE id = ?`, at.UnixMilli(), lastErr, id); err != nil {
		return fmt.Errorf("retry task %d: %w", id, err)
	}
	return nil
}

// Release makes claimed tasks claimable at once; a worker that shuts down
// hands its claims back instead of waiting for their lease to end.
func (q *Queue) Release(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{q.now().UnixMilli()}
	for _, id := range ids {
		args = append(args, id)
	}
	err := q.w.Exec(ctx, `UPDATE outbox SET next_at = ? WHERE done_at IS NULL AND id IN (`+
		strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`)`, args...)
	if err != nil {
		return fmt.Errorf("release tasks: %w", err)
	}
	return nil
}

// Pending counts open tasks of a kind.
func (q *Queue) Pending(ctx context.Context, kind string) (int, error) {
	var n int
	if err := q.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox INDEXED BY outbox_open WHERE kind = ? AND done_at IS NULL`, kind).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s tasks: %w", kind, err)
	}
	return n, nil
}

// Backlog tells an outbox kind's depth and its oldest due head (only heads
// are claimable: the partial index answers it without a scan).
func (q *Queue) Backlog(ctx context.Context, kind string) (store.Backlog, error) {
	n, err := q.Pending(ctx, kind)
	if err != nil {
		return store.Backlog{}, err
	}
	var oldest sql.NullInt64
	if err := q.r.QueryRowContext(ctx, `SELECT MIN(next_at) FROM outbox INDEXED BY outbox_heads WHERE kind = ? AND head = 1 AND done_at IS NULL`, kind).Scan(&oldest); err != nil {
		return store.Backlog{}, fmt.Errorf("oldest %s task: %w", kind, err)
	}
	b := store.Backlog{Depth: n}
	if at := time.UnixMilli(oldest.Int64); oldest.Valid && !at.After(q.now()) {
		b.OldestDue = at
	}
	return b, nil
}
