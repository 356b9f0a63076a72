package dispatch

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
)

// relabel tells the runs near the front of a stack's line their new place,
// after a run of the stack started. Only the first few: telling every run
// of a long line on every start costs calls quadratic in its length, and a
// place far back matters little. Best effort: a stale label is only a label.
func (w *Worker) relabel(ctx context.Context, stackKey string) {
	ids, err := w.Queue.StackQueue(ctx, stackKey)
	if err != nil {
		w.Log.Warn("read stack queue", zap.String("stack", stackKey), zap.Error(err))
		return
	}
	for ahead, id := range ids {
		if ahead > relabelFront {
			break
		}
		var seen *run.Run
		_, err := w.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
			seen = r
			var ch store.Change
			if r.State != run.Queued || r.QueueAhead == ahead {
				return ch, store.ErrNoChange
			}
			r.QueueAhead = ahead
			label := run.QueueLabel(stackKey, ahead)
			ch.Add(fmt.Sprintf("moved up the queue: %d ahead", ahead))
			ch.Report(run.Report{StatusLabel: label})
			return ch, nil
		})
		if err != nil {
			w.Log.Warn("relabel queued run", append(telemetry.FieldsOf(telemetry.AboutRun(seen, err), id), zap.Error(err))...)
		}
	}
}

// relabelFront is how many places of a line relabel keeps current.
const relabelFront = 5
