package outbox

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store/sqlite/batch"
)

// A dispatch also waits while another run holds its stack — dispatching,
// running, or ended (canceled, timed out) while its pipeline still winds
// down in GitLab — or an older run queued for the same stack has not gone first.
var stackFree = `NOT EXISTS (SELECT 1 FROM runs r JOIN runs b ON b.stack_key = r.stack_key AND b.id <> r.id
	WHERE r.id = o.run_id AND (b.state IN ('dispatching', 'running')
		OR (b.state IN ('canceled', 'timed_out') AND ` + PipelineActive("b") + `)
		OR (b.state = 'queued' AND (b.created_at < r.created_at OR (b.created_at = r.created_at AND b.id < r.id)))))`

// parkFor is how long a dispatch head found waiting for its stack is left
// alone: claims then skip it instead of testing it again and again. A run
// leaving its stack wakes the stack's parked heads at once (WakeStack), in
// the transaction that makes it leave; with SQLite's one writer no claim
// can park a head on a stale view after that wake, so the delay only
// bounds the wait should a wake ever be missed. It is long because every
// parked head is tested again when it ends: with 15 s, a backlog of 55,000
// runs queued behind busy stacks cost 3,700 tests a second, 13 % of
// paved's CPU, taken from intake.
const parkFor = 5 * time.Minute

// stackBusy reports whether another run than the one being written holds
// or waits for the stack (stack_lines counts the run itself, its row being
// written first).
func stackBusy(ctx context.Context, tx batch.Tx, stackKey string) (bool, error) {
	var depth int
	err := tx.QueryRowContext(ctx, `SELECT depth FROM stack_lines WHERE stack_key = ?`, stackKey).Scan(&depth)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return depth > 1, err
}

// WakeStack makes the parked dispatch heads of a stack's queued runs due at
// once: a run has left the stack (or stopped holding it), so the next may go.
func WakeStack(ctx context.Context, tx batch.Tx, stackKey string, now int64) error {
	// Driven from the stack's queued runs (runs_stack), so the cost is the
	// stack's line, not every parked head.
	_, err := tx.ExecContext(ctx, `UPDATE outbox SET next_at = ? WHERE id IN (
		SELECT o.id FROM runs r JOIN outbox o ON o.run_id = r.id AND o.kind = 'dispatch' AND o.done_at IS NULL
		WHERE r.stack_key = ? AND r.state = 'queued' AND o.head = 1 AND o.next_at > ?)`, now, stackKey, now)
	return err
}

// HoldsStack is stackFree's rule for one run: it holds its stack while
// dispatching or running, or ended while its pipeline still winds down.
// The store asks it before and after a change to know whether the run left
// its stack's line, and then wakes the stack (WakeStack).
func HoldsStack(r *run.Run) bool {
	switch r.State {
	case run.Dispatching, run.Running:
		return true
	case run.Canceled, run.TimedOut:
		return r.PipelineID != 0 && !terminalPipeline(r.PipelineStatus)
	}
	return false
}

func terminalPipeline(status string) bool {
	switch status {
	case "success", "failed", "canceled", "skipped":
		return true
	}
	return false
}

// PipelineActive is the SQL condition "the run's pipeline (of table alias
// t, or none) exists and has not finished in GitLab": terminalPipeline in
// SQL. It is exported for the store's run queries, so that they and the
// dispatch gate share one rule.
func PipelineActive(t string) string {
	if t != "" {
		t += "."
	}
	return t + `pipeline_id IS NOT NULL AND COALESCE(json_extract(` + t + `data, '$.pipelineStatus'), '') NOT IN ('success', 'failed', 'canceled', 'skipped')`
}
