package intake

import (
	"context"
	"fmt"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Cancel ends a run in any state that has not finished. A run that has (or
// may have) a pipeline gets a cancel task that stops it in GitLab.
func (s *Service) Cancel(ctx context.Context, id, by string) (*run.Run, error) {
	r, err := s.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		before := r.State
		if err := r.MoveTo(run.Canceled, s.now()); err != nil {
			return ch, err
		}
		msg := "canceled by " + by
		r.Reasons = []string{msg}
		ch.Add(msg)
		if before == run.Dispatching || before == run.Running {
			ch.Tasks = append(ch.Tasks, store.NewTask{Kind: store.KindCancel, Payload: struct{}{}})
			if r.PipelineID != 0 {
				msg += fmt.Sprintf("; pipeline #%d is being canceled", r.PipelineID)
			}
		}
		if a, ok := s.action(r.Request.Action); ok {
			for _, e := range a.FailedIfApplied(r, msg, s.runURL(r.ID)) {
				ch.Report(run.Report{Entity: e})
			}
		}
		ch.Report(run.Report{Final: run.Failure, StatusLabel: "Canceled", Summary: msg, Link: r.PipelineURL})
		return ch, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cancel run %s: %w", id, err)
	}
	if s.Notify != nil {
		s.Notify()
	}
	return r, nil
}

// action finds a run's action; a Service without a catalog (one that only
// controls runs) knows none.
func (s *Service) action(id string) (*catalog.Action, bool) {
	if s.Catalog == nil {
		return nil, false
	}
	return s.Catalog.Get(id)
}
