package dispatch

import (
	"context"
	"encoding/json"
	"fmt"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
)

// cancel stops a pipeline: the one the task names, or the run's own. A run
// that ended mid-dispatch has its pipeline found by PAVED_RUN_ID; none found
// means none was made (adopt catches one that lands later).
func (w *Worker) cancel(ctx context.Context, t store.Task) error {
	r, err := w.Store.Run(ctx, t.RunID)
	if err != nil {
		return err
	}
	var pl store.CancelPayload
	_ = json.Unmarshal(t.Payload, &pl) // an empty payload means the run's own pipeline
	id := pl.PipelineID
	if id == 0 {
		id = r.PipelineID
	}
	if id == 0 && !r.DispatchedAt.IsZero() {
		p, found, err := w.Pipelines.FindByRunID(ctx, r.Project, r.Ref, r.DispatchedAt, r.ID, r.PreviewPipelineID)
		if err != nil {
			return w.retry(ctx, t, fmt.Errorf("find pipeline of run %s to cancel: %w", r.ID, err))
		}
		if !found {
			return w.Store.Complete(ctx, t.ID)
		}
		id = p.ID
	}
	if id == 0 {
		return w.Store.Complete(ctx, t.ID)
	}
	p, err := w.Pipelines.Cancel(ctx, r.Project, id)
	if err != nil {
		if gitlab.IsPermanent(err) {
			w.Log.Error("GitLab refused to cancel the pipeline", append(telemetry.RunFields(r), zap.Int64("pipeline", id), zap.Error(err))...)
			return w.Store.Complete(ctx, t.ID)
		}
		return w.retry(ctx, t, fmt.Errorf("cancel pipeline %d of run %s: %w", id, r.ID, err))
	}
	_, err = w.Store.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if r.PipelineID == 0 {
			r.PipelineID = p.ID
		}
		if r.PipelineID == p.ID {
			r.PipelineStatus = p.Status
		}
		ch.Add(fmt.Sprintf("asked GitLab to cancel pipeline #%d (now %s)", p.ID, p.Status))
		return ch, nil
	})
	if err != nil {
		return w.retry(ctx, t, err)
	}
	return w.Store.Complete(ctx, t.ID)
}
