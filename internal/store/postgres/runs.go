package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/postgres/outbox"
	"github.com/paved-idp/paved/internal/store/postgres/txn"
)

// CreateRun stores a new run with its change. When a run with the same
// (portal, portal run id) exists, it returns that one and created=false and
// writes nothing: a repeated delivery never makes a second run, whichever
// replica it reaches.
func (s *Store) CreateRun(ctx context.Context, r *run.Run, ch store.Change) (*run.Run, bool, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, false, fmt.Errorf("create run %s: %w", r.ID, err)
	}
	// One round trip, one transaction: the run, then its events and tasks,
	// each of which writes nothing unless the run was written. A concurrent
	// insert of the same key makes this one wait for it, then do nothing.
	now := s.now()
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO runs (id, portal, portal_run_id, action, state, stack_key, pipeline_id, pipeline_status, data, created_at, updated_at, expires_at, tenant, environment)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (portal, portal_run_id) DO NOTHING`,
		r.ID, r.Request.Portal, r.Request.PortalRunID, r.Request.Action, string(r.State), r.Stack.Key(),
		nullInt(r.PipelineID), r.PipelineStatus, data, r.CreatedAt, r.UpdatedAt, nullTime(r.ExpiresAt), r.Stack.Tenant, r.Stack.Environment)
	if len(ch.Events) > 0 {
		b.Queue(`INSERT INTO run_events (run_id, seq, at, state, message)
			SELECT r.id, e.ord, $2, $3, e.message FROM runs r, unnest($4::text[]) WITH ORDINALITY AS e(message, ord) WHERE r.id = $1`,
			r.ID, now, string(r.State), cleanAll(ch.Events))
	}
	if err := outbox.QueueNew(b, r.ID, r.Stack.Key(), now, ch.Tasks, r.State == run.Queued); err != nil {
		return nil, false, fmt.Errorf("create run %s: %w", r.ID, err)
	}
	tags, err := txn.Batch(ctx, s.pool, b)
	if err != nil {
		return nil, false, fmt.Errorf("create run %s: %w", r.ID, err)
	}
	if tags[0].RowsAffected() == 0 {
		existing, err := getRun(ctx, s.pool, `portal = $1 AND portal_run_id = $2`, r.Request.Portal, r.Request.PortalRunID)
		if err != nil {
			return nil, false, fmt.Errorf("create run %s: %w", r.ID, err)
		}
		return existing, false, nil
	}
	return r, true, nil
}

// Update loads a run, lets fn change it, and writes the run and fn's change
// in one transaction, holding the run's row lock throughout: updates of one
// run from any replica take turns. fn returning store.ErrNoChange writes
// nothing and returns the run as it is.
func (s *Store) Update(ctx context.Context, id string, fn func(*run.Run) (store.Change, error)) (*run.Run, error) {
	var out *run.Run
	err := txn.Run(ctx, s.pool, func(tx pgx.Tx) error {
		out = nil
		var data []byte
		var wasOnStack bool
		var oldStack string
		err := tx.QueryRow(ctx, `SELECT data, on_stack, stack_key FROM runs WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&data, &wasOnStack, &oldStack)
		if errors.Is(err, pgx.ErrNoRows) {
			return run.ErrNotFound
		}
		if err != nil {
			return err
		}
		r, err := decodeRun(data)
		if err != nil {
			return err
		}
		ch, err := fn(r)
		if errors.Is(err, store.ErrNoChange) {
			out = r
			return nil
		}
		if err != nil {
			return err
		}
		r.UpdatedAt = s.now().UTC()
		if data, err = json.Marshal(r); err != nil {
			return err
		}
		var onStack bool
		err = tx.QueryRow(ctx, `UPDATE runs SET state = $2, stack_key = $3, pipeline_id = $4, pipeline_status = $5, data = $6, updated_at = $7, expires_at = $8,
			tenant = $9, environment = $10 WHERE id = $1 RETURNING on_stack`,
			r.ID, string(r.State), r.Stack.Key(), nullInt(r.PipelineID), r.PipelineStatus, data, r.UpdatedAt, nullTime(r.ExpiresAt),
			r.Stack.Tenant, r.Stack.Environment).Scan(&onStack)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		if err := s.queueChange(b, r.ID, string(r.State), r.Stack.Key(), ch, false); err != nil {
			return err
		}
		if key := r.Stack.Key(); key != oldStack {
			outbox.Restack(b, r.ID, key, s.now())
		}
		if err := txn.SendBatch(ctx, tx, b); err != nil {
			return err
		}
		if wasOnStack && (!onStack || r.Stack.Key() != oldStack) {
			// The run let its stack go (or left the line for it): the
			// dispatches waiting there may go now.
			if err := outbox.Wake(ctx, tx, oldStack, s.now); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update run %s: %w", id, err)
	}
	return out, nil
}

// queueChange queues the statements that write a change's events and tasks
// for run id, now in state. Events number on from the run's last; the
// outbox says which task is the head of its (run, kind). Callers hold the
// run's row lock, so the heads and numbers they read cannot move under them.
func (s *Store) queueChange(b *pgx.Batch, id, state, stackKey string, ch store.Change, park bool) error {
	now := s.now()
	if len(ch.Events) > 0 {
		b.Queue(`INSERT INTO run_events (run_id, seq, at, state, message)
			SELECT $1, m.n + e.ord, $2, $3, e.message
			FROM unnest($4::text[]) WITH ORDINALITY AS e(message, ord),
				(SELECT COALESCE(MAX(seq), 0) AS n FROM run_events WHERE run_id = $1) m`,
			id, now, state, cleanAll(ch.Events))
	}
	return outbox.Queue(b, id, stackKey, now, ch.Tasks, park)
}

// cleanAll is txn.Clean of each message.
func cleanAll(msgs []string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = txn.Clean(m)
	}
	return out
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func getRun(ctx context.Context, q querier, where string, args ...any) (*run.Run, error) {
	var data []byte
	err := q.QueryRow(ctx, `SELECT data FROM runs WHERE `+where, args...).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, run.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return decodeRun(data)
}

func decodeRun(data []byte) (*run.Run, error) {
	var r run.Run
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode stored run: %w", err)
	}
	return &r, nil
}

// Run returns the run with the given id, or run.ErrNotFound.
func (s *Store) Run(ctx context.Context, id string) (*run.Run, error) {
	r, err := getRun(ctx, s.pool, `id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	return r, nil
}

// RunByPortal finds a run by its portal's run id.
func (s *Store) RunByPortal(ctx context.Context, portal, portalRunID string) (*run.Run, error) {
	r, err := getRun(ctx, s.pool, `portal = $1 AND portal_run_id = $2`, portal, portalRunID)
	if err != nil {
		return nil, fmt.Errorf("get %s run %s: %w", portal, portalRunID, err)
	}
	return r, nil
}

// RunByPipeline finds the run that owns a GitLab pipeline.
func (s *Store) RunByPipeline(ctx context.Context, pipelineID int64) (*run.Run, error) {
	r, err := getRun(ctx, s.pool, `pipeline_id = $1`, pipelineID)
	if err != nil {
		return nil, fmt.Errorf("get run of pipeline %d: %w", pipelineID, err)
	}
	return r, nil
}

// ListRuns returns runs, newest first (see store.Query for the others).
func (s *Store) ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if len(q.States) > 0 {
		states := make([]string, len(q.States))
		for i, st := range q.States {
			states[i] = string(st)
		}
		where = append(where, "state = ANY("+arg(states)+"::text[])")
	}
	if !q.UpdatedBefore.IsZero() {
		where = append(where, "updated_at < "+arg(q.UpdatedBefore))
	}
	if q.ActivePipeline {
		where = append(where, "pipeline_active")
	}
	if q.HasPipeline {
		where = append(where, "pipeline_id IS NOT NULL")
	}
	if q.ByID && q.AfterID != "" {
		where = append(where, "id > "+arg(q.AfterID))
	}
	// Tenant and environment are columns: reading a key of a json value
	// parses the whole text, and one run holding a \u0000 (PostgreSQL
	// refuses it as text) failed every query filtering on them. The user's
	// email still is read from data (the operator page's filter).
	for _, f := range []struct{ expr, v string }{{"action", q.Action}, {"tenant", q.Tenant},
		{"environment", q.Environment}, {"data->'request'->'user'->>'email'", q.User}} {
		if f.v != "" {
			where = append(where, f.expr+" = "+arg(f.v))
		}
	}
	if q.NotPortal != "" {
		where = append(where, "portal <> "+arg(q.NotPortal))
	}
	if q.Stack != "" {
		where = append(where, "stack_key = "+arg(q.Stack))
	}
	if q.Expiring {
		where = append(where, "expires_at IS NOT NULL")
	}
	sqlText := `SELECT data FROM runs`
	if len(where) > 0 {
		sqlText += " WHERE " + strings.Join(where, " AND ")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	switch {
	case q.ByID:
		sqlText += ` ORDER BY id`
	case q.OldestFirst:
		sqlText += ` ORDER BY updated_at, id`
	default:
		sqlText += ` ORDER BY created_at DESC, id DESC`
	}
	sqlText += ` LIMIT ` + arg(limit)
	rows, err := s.pool.Query(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	datas, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	out := make([]*run.Run, 0, len(datas))
	for _, data := range datas {
		r, err := decodeRun(data)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Events returns a run's audit trail in order.
func (s *Store) Events(ctx context.Context, id string) ([]run.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, at, state, message FROM run_events WHERE run_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("events of run %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (run.Event, error) {
		var e run.Event
		var st string
		err := row.Scan(&e.Seq, &e.At, &st, &e.Message)
		e.At, e.State = e.At.UTC(), run.State(st)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("events of run %s: %w", id, err)
	}
	return out, nil
}

// StackQueue returns the ids of the runs holding or waiting for a stack, in
// the order they will run: the active one first, then queued runs oldest first.
func (s *Store) StackQueue(ctx context.Context, stackKey string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM runs WHERE on_stack AND stack_key = $1 AND state IN ('dispatching', 'running', 'queued')
		ORDER BY CASE state WHEN 'queued' THEN 1 ELSE 0 END, created_at, id`, stackKey)
	if err != nil {
		return nil, fmt.Errorf("queue of stack %s: %w", stackKey, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("queue of stack %s: %w", stackKey, err)
	}
	return ids, nil
}

// StackDepth counts the runs holding or waiting for a stack (dispatching,
// running, queued): StackQueue's length without the ids.
func (s *Store) StackDepth(ctx context.Context, stackKey string) (int, error) {
	var n int
	// stack_lines is kept by a trigger (migration 002): one row, however long the line.
	err := s.pool.QueryRow(ctx, `SELECT COALESCE((SELECT depth FROM stack_lines WHERE stack_key = $1), 0)`, stackKey).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("depth of stack %s: %w", stackKey, err)
	}
	return n, nil
}

// CountByState counts runs in each state.
func (s *Store) CountByState(ctx context.Context) (map[run.State]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, COUNT(*) FROM runs GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	out := map[run.State]int{}
	var st string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error { out[run.State(st)] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	return out, nil
}

func nullInt(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

// nullTime is t, or NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
