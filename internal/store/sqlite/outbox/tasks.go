package outbox

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite/batch"
)

// Tasks are a change's new tasks with their payloads already in JSON.
type Tasks struct {
	tasks    []store.NewTask
	payloads []string
}

// Encode encodes the payloads of tasks. Call it before queueing the write:
// the writer is one goroutine, so whatever can be done in the caller's is
// taken off every other write's wait.
func Encode(tasks []store.NewTask) (Tasks, error) {
	ts := Tasks{tasks: tasks, payloads: make([]string, len(tasks))}
	for i, t := range tasks {
		payload, err := json.Marshal(t.Payload)
		if err != nil {
			return ts, fmt.Errorf("encode %s task: %w", t.Kind, err)
		}
		ts.payloads[i] = string(payload)
	}
	return ts, nil
}

// Insert appends ts to r's tasks in tx as one multi-row INSERT (statements
// and rows are what the single writer pays for), now being the change's
// time in Unix milliseconds. fresh says r was created in this transaction,
// so it has no open tasks yet and nothing need be read.
func (ts Tasks) Insert(ctx context.Context, tx batch.Tx, r *run.Run, now int64, fresh bool) error {
	if len(ts.tasks) == 0 {
		return nil
	}
	// A new task heads its (run, kind) only when no open one is before it.
	open := map[string]bool{}
	if !fresh {
		var err error
		if open, err = openKinds(ctx, tx, r.ID); err != nil {
			return err
		}
	}
	rows := make([][]any, len(ts.tasks))
	for i, t := range ts.tasks {
		at := now
		if !t.NotBefore.IsZero() {
			at = t.NotBefore.UnixMilli()
		}
		head := 1
		if open[t.Kind] {
			head = 0
		}
		if head == 1 && t.Kind == store.KindDispatch && r.State == run.Queued && t.NotBefore.IsZero() {
			busy, err := stackBusy(ctx, tx, r.Stack.Key())
			if err != nil {
				return err
			}
			if busy {
				// Park it now rather than have the next claim find the
				// stack busy and park it then: a burst on busy stacks would
				// otherwise cost a claim and an update per run. The run
				// leaving the stack ahead of it wakes it (WakeStack).
				at = now + parkFor.Milliseconds()
			}
		}
		rows[i] = []any{r.ID, t.Kind, ts.payloads[i], at, now, head}
		open[t.Kind] = true
	}
	return tx.InsertRows(ctx, `INSERT INTO outbox (run_id, kind, payload, next_at, created_at, head) VALUES `, rows)
}

// openKinds lists the kinds of r's open tasks.
func openKinds(ctx context.Context, tx batch.Tx, runID string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT kind FROM outbox WHERE run_id = ? AND done_at IS NULL`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	open := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		open[k] = true
	}
	return open, rows.Err()
}
