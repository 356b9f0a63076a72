// Package sqlite is paved's embedded run store: one SQLite file in WAL mode
// (modernc.org/sqlite, no cgo). Every state change is one IMMEDIATE
// transaction that writes the run, its events and its outbox tasks together.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite/batch"
	"github.com/paved-idp/paved/internal/store/sqlite/outbox"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a run store in one SQLite file.
type Store struct {
	db  *sql.DB
	now func() time.Time
	w   *batch.Writer // every write goes through it (group commit)
	q   batch.Reader  // reads through its statement cache

	// The workers' side of the tasks (Claim, Complete, Retry, Release,
	// Pending, Backlog) is the queue's, embedded as the PostgreSQL store
	// embeds its outbox.
	*outbox.Queue
}

// Option tunes Open.
type Option func(*options)

type options struct{ busyTimeout time.Duration }

// WithBusyTimeout sets SQLite's busy_timeout: how long one statement waits
// for another process's write lock before the store's own retries begin.
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{busyTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	// FULL: a run Port was told about (202) must survive a power loss too.
	q.Add("_pragma", "synchronous(FULL)")
	// Each write of a group commit runs in a savepoint, whose journal of
	// changed pages would otherwise spill to a temporary file: a write()
	// per page in the single writer.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_txlock", "immediate") // writers queue at BEGIN instead of failing on upgrade
	// In a file: URI "?" starts the parameters, "#" a fragment and "%" an
	// escape: a path holding one (a test's temporary directory named after
	// "20 %_5xx#01") would otherwise open some other file.
	uriPath := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+uriPath+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One writer at a time is SQLite's rule (the writer keeps one
	// connection); a small pool still lets reads overlap. Every connection
	// of it stays open: with database/sql's default of two idle ones, a burst
	// of reads closed the rest and the next burst opened them again (the
	// file, its pragmas, every statement prepared anew, a cold page cache) —
	// about 4 % of paved's CPU under the intake load.
	db.SetMaxOpenConns(5)
	db.SetMaxIdleConns(5)
	s := &Store{db: db, now: time.Now, w: batch.Start(db, 30*time.Second)}
	s.q = s.w.Reader()
	// The clock is read through s, so that SetClock reaches the outbox too.
	s.Queue = outbox.New(s.w, s.q, func() time.Time { return s.now() })
	if err := s.migrate(ctx); err != nil {
		s.w.Stop()
		db.Close()
		return nil, fmt.Errorf("migrate sqlite %s: %w", path, err)
	}
	return s, nil
}

// SetClock replaces the store's clock (time.Now), for tests and simulations
// that move time by hand. Call it before the store is shared.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Close closes the database.
func (s *Store) Close() error {
	s.w.Stop()
	return s.db.Close()
}

// Ping checks the database answers reads.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Writable proves the store can commit a write: a read-only file, a full
// disk or a lost lock all fail here, where a read would still succeed.
func (s *Store) Writable(ctx context.Context) error {
	err := s.w.Exec(ctx, `INSERT INTO store_health (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("store write check: %w", err)
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	return s.w.Migrate(ctx, migrations, "migrations/*.sql", func() int64 { return s.now().UnixMilli() })
}

// CreateRun stores a new run with its change. When a run with the same
// (portal, portal run id) exists, it returns that one and created=false and
// writes nothing: a repeated delivery never makes a second run.
func (s *Store) CreateRun(ctx context.Context, r *run.Run, ch store.Change) (*run.Run, bool, error) {
	// Encode before queueing: the writer is one goroutine, so whatever can
	// be done in the caller's is taken off every other write's wait.
	data, err := json.Marshal(r)
	if err != nil {
		return nil, false, fmt.Errorf("create run %s: %w", r.ID, err)
	}
	enc, err := encodeChange(ch)
	if err != nil {
		return nil, false, fmt.Errorf("create run %s: %w", r.ID, err)
	}
	var existing *run.Run
	err = s.w.Tx(ctx, func(tx batch.Tx) error {
		existing = nil
		// The unique (portal, portal_run_id) decides a repeat: one statement
		// instead of a read before every insert.
		res, err := tx.ExecContext(ctx, `INSERT INTO runs (id, portal, portal_run_id, action, state, stack_key, pipeline_id, data, created_at, updated_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (portal, portal_run_id) DO NOTHING`,
			r.ID, r.Request.Portal, r.Request.PortalRunID, r.Request.Action, string(r.State), r.Stack.Key(),
			nullInt(r.PipelineID), string(data), r.CreatedAt.UnixMilli(), r.UpdatedAt.UnixMilli(), nullMilli(r.ExpiresAt))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			existing, err = getRun(ctx, tx, `portal = ? AND portal_run_id = ?`, r.Request.Portal, r.Request.PortalRunID)
			return err
		}
		return s.writeChange(ctx, tx, r, enc, true)
	})
	if err != nil {
		return nil, false, fmt.Errorf("create run %s: %w", r.ID, err)
	}
	if existing != nil {
		return existing, false, nil
	}
	return r, true, nil
}

// Update loads a run, lets fn change it, and writes the run and fn's change
// in one transaction. fn returning store.ErrNoChange writes nothing and
// returns the run as it is.
func (s *Store) Update(ctx context.Context, id string, fn func(*run.Run) (store.Change, error)) (*run.Run, error) {
	var out *run.Run
	err := s.w.Tx(ctx, func(tx batch.Tx) error {
		r, err := getRun(ctx, tx, `id = ?`, id)
		if err != nil {
			return err
		}
		inLine := outbox.HoldsStack(r) || r.State == run.Queued
		ch, err := fn(r)
		if errors.Is(err, store.ErrNoChange) {
			out = r
			return nil
		}
		if err != nil {
			return err
		}
		r.UpdatedAt = s.now().UTC()
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET state = ?, stack_key = ?, pipeline_id = ?, data = ?, updated_at = ?, expires_at = ? WHERE id = ?`,
			string(r.State), r.Stack.Key(), nullInt(r.PipelineID), string(data), r.UpdatedAt.UnixMilli(), nullMilli(r.ExpiresAt), r.ID); err != nil {
			return err
		}
		out = r
		if inLine && !outbox.HoldsStack(r) && r.State != run.Queued {
			// It has left its stack's line (ended, or its pipeline wound
			// down): the next in line may go.
			if err := outbox.WakeStack(ctx, tx, r.Stack.Key(), r.UpdatedAt.UnixMilli()); err != nil {
				return err
			}
		}
		enc, err := encodeChange(ch)
		if err != nil {
			return err
		}
		return s.writeChange(ctx, tx, r, enc, false)
	})
	if err != nil {
		return nil, fmt.Errorf("update run %s: %w", id, err)
	}
	return out, nil
}

// encoded is a change with its tasks' payloads, and its events after the
// first (see groupEvents), already in JSON.
type encoded struct {
	events []string
	more   any // the run_events row's more: nil, or the events after the first
	tasks  outbox.Tasks
}

func encodeChange(ch store.Change) (encoded, error) {
	e := encoded{events: ch.Events}
	if more, ok := groupEvents(ch.Events); ok {
		e.more = more
	}
	var err error
	e.tasks, err = outbox.Encode(ch.Tasks)
	return e, err
}

// writeChange appends ch's events and tasks to r, one INSERT each: the
// events as one row (see groupEvents), the tasks as one multi-row INSERT
// (outbox.Tasks.Insert); statements and rows are what the single writer
// pays for. fresh says r was created in this transaction, so it has no
// events and no open tasks yet and nothing need be read.
func (s *Store) writeChange(ctx context.Context, tx batch.Tx, r *run.Run, ch encoded, fresh bool) error {
	now := s.now().UnixMilli()
	if len(ch.events) > 0 {
		var seq int64
		if !fresh {
			if err := tx.QueryRowContext(ctx, lastEventSeq, r.ID).Scan(&seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if ch.more != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO run_events (run_id, seq, at, state, message, more) VALUES (?, ?, ?, ?, ?, ?)`,
				r.ID, seq+1, now, string(r.State), ch.events[0], ch.more); err != nil {
				return err
			}
		} else {
			rows := make([][]any, len(ch.events))
			for i, msg := range ch.events {
				rows[i] = []any{r.ID, seq + int64(i) + 1, now, string(r.State), msg}
			}
			if err := tx.InsertRows(ctx, `INSERT INTO run_events (run_id, seq, at, state, message) VALUES `, rows); err != nil {
				return err
			}
		}
	}
	return ch.tasks.Insert(ctx, tx, r, now, fresh)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getRun(ctx context.Context, q queryer, where string, args ...any) (*run.Run, error) {
	var data string
	err := q.QueryRowContext(ctx, `SELECT data FROM runs WHERE `+where, args...).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, run.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var r run.Run
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return nil, fmt.Errorf("decode stored run: %w", err)
	}
	return &r, nil
}

// Run returns the run with the given id, or run.ErrNotFound.
func (s *Store) Run(ctx context.Context, id string) (*run.Run, error) {
	r, err := getRun(ctx, s.q, `id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	return r, nil
}

// RunByPortal finds a run by its portal's run id.
func (s *Store) RunByPortal(ctx context.Context, portal, portalRunID string) (*run.Run, error) {
	r, err := getRun(ctx, s.q, `portal = ? AND portal_run_id = ?`, portal, portalRunID)
	if err != nil {
		return nil, fmt.Errorf("get %s run %s: %w", portal, portalRunID, err)
	}
	return r, nil
}

// RunByPipeline finds the run that owns a GitLab pipeline.
func (s *Store) RunByPipeline(ctx context.Context, pipelineID int64) (*run.Run, error) {
	r, err := getRun(ctx, s.q, `pipeline_id = ?`, pipelineID)
	if err != nil {
		return nil, fmt.Errorf("get run of pipeline %d: %w", pipelineID, err)
	}
	return r, nil
}

// ListRuns returns runs, newest first.
func (s *Store) ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error) {
	var where []string
	var args []any
	if len(q.States) > 0 {
		where = append(where, "state IN ("+strings.TrimSuffix(strings.Repeat("?,", len(q.States)), ",")+")")
		for _, st := range q.States {
			args = append(args, string(st))
		}
	}
	if !q.UpdatedBefore.IsZero() {
		where = append(where, "updated_at < ?")
		args = append(args, q.UpdatedBefore.UnixMilli())
	}
	if q.ActivePipeline {
		where = append(where, outbox.PipelineActive("")) // the dispatch gate's rule
	}
	if q.HasPipeline {
		where = append(where, "pipeline_id IS NOT NULL")
	}
	if q.ByID && q.AfterID != "" {
		where = append(where, "id > ?")
		args = append(args, q.AfterID)
	}
	for _, f := range []struct{ expr, v string }{{"action", q.Action}, {"json_extract(data, '$.stack.tenant')", q.Tenant},
		{"json_extract(data, '$.stack.environment')", q.Environment}, {"json_extract(data, '$.request.user.email')", q.User}} {
		if f.v != "" {
			where = append(where, f.expr+" = ?")
			args = append(args, f.v)
		}
	}
	if q.NotPortal != "" {
		where = append(where, "portal <> ?")
		args = append(args, q.NotPortal)
	}
	if q.Stack != "" {
		where = append(where, "stack_key = ?")
		args = append(args, q.Stack)
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
		sqlText += ` ORDER BY id LIMIT ?`
	case q.OldestFirst:
		sqlText += ` ORDER BY updated_at, id LIMIT ?`
	default:
		sqlText += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	}
	args = append(args, limit)
	rows, err := s.q.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []*run.Run
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		var r run.Run
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			return nil, fmt.Errorf("list runs: decode: %w", err)
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

// Events returns a run's audit trail in order.
func (s *Store) Events(ctx context.Context, id string) ([]run.Event, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT seq, at, state, message, more FROM run_events WHERE run_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("events of run %s: %w", id, err)
	}
	defer rows.Close()
	var out []run.Event
	for rows.Next() {
		var e run.Event
		var at int64
		var st string
		var more sql.NullString
		if err := rows.Scan(&e.Seq, &at, &st, &e.Message, &more); err != nil {
			return nil, fmt.Errorf("events of run %s: %w", id, err)
		}
		e.At, e.State = time.UnixMilli(at).UTC(), run.State(st)
		out = append(out, e)
		if out, err = appendMore(out, e, more); err != nil {
			return nil, fmt.Errorf("events of run %s: %w", id, err)
		}
	}
	return out, rows.Err()
}

// StackQueue returns the ids of the runs holding or waiting for a stack, in
// the order they will run: the active one first, then queued runs oldest first.
func (s *Store) StackQueue(ctx context.Context, stackKey string) ([]string, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id FROM runs WHERE stack_key = ? AND state IN ('dispatching','running','queued')
		ORDER BY CASE state WHEN 'queued' THEN 1 ELSE 0 END, created_at, id`, stackKey)
	if err != nil {
		return nil, fmt.Errorf("queue of stack %s: %w", stackKey, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// StackDepth counts the runs holding or waiting for a stack: how many go
// before a run that joins its line now. It counts in the index, reading no run.
func (s *Store) StackDepth(ctx context.Context, stackKey string) (int, error) {
	var n int
	// stack_lines is kept by triggers (migration 004): one row, however long the line.
	if err := s.q.QueryRowContext(ctx, `SELECT COALESCE((SELECT depth FROM stack_lines WHERE stack_key = ?), 0)`, stackKey).Scan(&n); err != nil {
		return 0, fmt.Errorf("depth of stack %s: %w", stackKey, err)
	}
	return n, nil
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// nullMilli is t in Unix milliseconds, or NULL for the zero time.
func nullMilli(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// CountByState counts runs in each state.
func (s *Store) CountByState(ctx context.Context) (map[run.State]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM runs GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	defer rows.Close()
	out := map[run.State]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count runs: %w", err)
		}
		out[run.State(st)] = n
	}
	return out, rows.Err()
}
