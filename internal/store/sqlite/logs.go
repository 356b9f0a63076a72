package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite/batch"
)

// AppendLogs stores a pipeline's log lines as rows of their own and queues
// them for the portal (as few reports as fit, see store.ReportLines), in one transaction that never rewrites the
// run. A run that has ended refuses them (store.ErrFinished); so does a run
// whose log would pass max lines (store.ErrLimit), and then none is stored.
func (s *Store) AppendLogs(ctx context.Context, id string, lines []string, max int) error {
	err := s.w.Tx(ctx, func(tx batch.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, `SELECT state FROM runs WHERE id = ?`, id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return run.ErrNotFound
		}
		if err != nil {
			return err
		}
		if run.State(state).Terminal() {
			return store.ErrFinished
		}
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM run_logs WHERE run_id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if max > 0 && n+int64(len(lines)) > int64(max) {
			return fmt.Errorf("%w: the run has %d log lines, these %d would pass the cap of %d", store.ErrLimit, n, len(lines), max)
		}
		now := s.now().UnixMilli()
		r := &run.Run{ID: id}
		var ch store.Change
		for i, l := range lines {
			if _, err := tx.ExecContext(ctx, `INSERT INTO run_logs (run_id, seq, at, line) VALUES (?, ?, ?, ?)`, id, n+int64(i)+1, now, l); err != nil {
				return err
			}
		}
		ch.ReportLines(lines)
		enc, err := encodeChange(ch)
		if err != nil {
			return err
		}
		return s.writeChange(ctx, tx, r, enc, false)
	})
	if err != nil {
		return fmt.Errorf("append %d log line(s) to run %s: %w", len(lines), id, err)
	}
	return nil
}

// Logs returns up to limit of a run's log lines after seq after, in order.
func (s *Store) Logs(ctx context.Context, id string, after int64, limit int) ([]store.LogLine, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.q.QueryContext(ctx, `SELECT seq, at, line FROM run_logs WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("log lines of run %s: %w", id, err)
	}
	defer rows.Close()
	var out []store.LogLine
	for rows.Next() {
		var l store.LogLine
		var at int64
		if err := rows.Scan(&l.Seq, &at, &l.Line); err != nil {
			return nil, fmt.Errorf("log lines of run %s: %w", id, err)
		}
		l.At = time.UnixMilli(at).UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}
