package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/postgres/txn"
)

// AppendLogs stores a pipeline's log lines as rows of their own (byte for
// byte) and queues one portal report per line, in one transaction that
// never rewrites the run. A run that has ended refuses them
// (store.ErrFinished); so does a run whose log would pass max lines
// (store.ErrLimit), and then none is stored.
func (s *Store) AppendLogs(ctx context.Context, id string, lines []string, max int) error {
	err := txn.Run(ctx, s.pool, func(tx pgx.Tx) error {
		var state, stackKey string
		// The run's row lock orders appends (and their reports) with every
		// other change of the run, from any replica.
		err := tx.QueryRow(ctx, `SELECT state, stack_key FROM runs WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&state, &stackKey)
		if errors.Is(err, pgx.ErrNoRows) {
			return run.ErrNotFound
		}
		if err != nil {
			return err
		}
		if run.State(state).Terminal() {
			return store.ErrFinished
		}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM run_logs WHERE run_id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if max > 0 && n+int64(len(lines)) > int64(max) {
			return fmt.Errorf("%w: the run has %d log lines, these %d would pass the cap of %d", store.ErrLimit, n, len(lines), max)
		}
		if len(lines) == 0 {
			return nil
		}
		raw := make([][]byte, len(lines))
		var ch store.Change
		for i, l := range lines {
			raw[i] = []byte(l)
		}
		ch.ReportLines(lines)
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO run_logs (run_id, seq, at, line) SELECT $1, $2 + l.ord, $3, l.line FROM unnest($4::bytea[]) WITH ORDINALITY AS l(line, ord)`,
			id, n, s.now(), raw)
		if err := s.queueChange(b, id, state, stackKey, ch, false); err != nil {
			return err
		}
		return txn.SendBatch(ctx, tx, b)
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
	rows, err := s.pool.Query(ctx, `SELECT seq, at, line FROM run_logs WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("log lines of run %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.LogLine, error) {
		var l store.LogLine
		var line []byte
		err := row.Scan(&l.Seq, &l.At, &line)
		l.At, l.Line = l.At.UTC(), string(line)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("log lines of run %s: %w", id, err)
	}
	return out, nil
}
