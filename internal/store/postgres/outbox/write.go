package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved-idp/paved/internal/store"
)

// What the run store's writes do to the outbox, queued into or run in the
// transaction that holds the run's row lock, so that the heads they read
// and set cannot move under them.

// Queue queues the statement that writes a change's tasks for run id, due
// now unless a task says otherwise. A task is the head of its (run, kind)
// when it is the change's first of that kind and the run has no open task
// of that kind. park parks a dispatch head due now at once (see QueueNew).
func Queue(b *pgx.Batch, id, stackKey string, now time.Time, tasks []store.NewTask, park bool) error {
	args, err := taskArgs(id, stackKey, now, tasks, park)
	if err != nil || args == nil {
		return err
	}
	b.Queue(`INSERT INTO outbox (run_id, kind, stack_key, payload, next_at, created_at, head, parked)
		SELECT $1, t.kind, $2, t.payload::json, CASE WHEN t.head AND t.park THEN $8 ELSE t.next_at END, $3, t.head, t.head AND t.park
		FROM (SELECT t.kind, t.payload, t.next_at, t.park, t.ord,
				row_number() OVER (PARTITION BY t.kind ORDER BY t.ord) = 1
				AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.run_id = $1 AND p.kind = t.kind AND p.done_at IS NULL) AS head
			FROM `+taskRows+`) t
		ORDER BY t.ord`,
		args...)
	return nil
}

// QueueNew queues the statement that writes the tasks of run id, created
// by an earlier statement of the same batch; it writes nothing if that run
// is not there (the batch found the run stored already). A new run has no
// open task, so each kind's first task is its head. A queued run's
// dispatch due now is parked as it is written when what a claim asks
// before it parks (stackHeld) holds: a run the batch can share-lock holds
// the new one off its stack, so that run's wake, when it lets the stack
// go, comes after this transaction and sees the park. A burst of runs on
// busy stacks would otherwise cost a claim and an update for each.
func QueueNew(b *pgx.Batch, id, stackKey string, now time.Time, tasks []store.NewTask, queued bool) error {
	args, err := taskArgs(id, stackKey, now, tasks, queued)
	if err != nil || args == nil {
		return err
	}
	b.Queue(`INSERT INTO outbox (run_id, kind, stack_key, payload, next_at, created_at, head, parked)
		SELECT r.id, t.kind, $2, t.payload::json, CASE WHEN t.park THEN $8 ELSE t.next_at END, $3, t.head, t.park
		FROM runs r, LATERAL (SELECT t.kind, t.payload, t.next_at, t.ord, t.head,
				t.head AND t.park AND EXISTS (SELECT 1 FROM runs b WHERE `+holdsOff+` FOR SHARE OF b SKIP LOCKED) AS park
			FROM (SELECT t.*, row_number() OVER (PARTITION BY t.kind ORDER BY t.ord) = 1 AS head
				FROM `+taskRows+`) t) t
		WHERE r.id = $1
		ORDER BY t.ord`,
		args...)
	return nil
}

// taskRows unnests taskArgs' columns ($4–$7), one row a task in order.
const taskRows = `unnest($4::text[], $5::text[], $6::timestamptz[], $7::bool[]) WITH ORDINALITY AS t(kind, payload, next_at, park, ord)`

// taskArgs is the arguments of Queue's and QueueNew's statement: run id,
// stack key, now, then tasks as columns (kinds, payloads, due times — now
// unless a task says otherwise — and whether each may be parked: park and
// parkable), and the end of a park; nil for no tasks.
func taskArgs(id, stackKey string, now time.Time, tasks []store.NewTask, park bool) ([]any, error) {
	if len(tasks) == 0 {
		return nil, nil
	}
	kinds := make([]string, len(tasks))
	payloads := make([]string, len(tasks))
	due := make([]time.Time, len(tasks))
	parks := make([]bool, len(tasks))
	for i, t := range tasks {
		p, err := json.Marshal(t.Payload)
		if err != nil {
			return nil, fmt.Errorf("encode %s task: %w", t.Kind, err)
		}
		kinds[i], payloads[i], due[i] = t.Kind, string(p), now
		if !t.NotBefore.IsZero() {
			due[i] = t.NotBefore
		}
		parks[i] = park && parkable(t)
	}
	return []any{id, stackKey, now, kinds, payloads, due, parks, now.Add(parkFor)}, nil
}

// parkable is a task Queue's park applies to: a dispatch due now.
func parkable(t store.NewTask) bool { return t.Kind == store.KindDispatch && t.NotBefore.IsZero() }

// Restack queues the statement that moves a run's open tasks to its new
// stack; a parked dispatch looks at the new stack at once.
func Restack(b *pgx.Batch, runID, stackKey string, now time.Time) {
	b.Queue(`UPDATE outbox SET stack_key = $2, parked = false, next_at = CASE WHEN parked THEN $3 ELSE next_at END
				WHERE run_id = $1 AND done_at IS NULL`, runID, stackKey, now)
}

const stackHeads = `SELECT id FROM outbox WHERE stack_key = $1 AND kind = 'dispatch' AND head AND done_at IS NULL ORDER BY id FOR UPDATE`

// Wake makes the parked dispatch heads of a stack due now, in the
// transaction of a run that lets the stack go. It locks every open
// dispatch head of the stack first, parked or not: a claim that is parking
// one right now holds its lock, so this waits for that claim to commit and
// then sees the head parked, instead of missing it. now is the store's
// clock, read once the heads are locked.
func Wake(ctx context.Context, tx pgx.Tx, stackKey string, now func() time.Time) error {
	rows, err := tx.Query(ctx, stackHeads, stackKey)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(ids) == 0 {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE outbox SET parked = false, next_at = $2 WHERE id = ANY($1::bigint[]) AND parked`, ids, now())
	return err
}
