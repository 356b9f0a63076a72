package track

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Expire ends runs that are past their deadline: the run becomes timed_out,
// the portal is told, and a cancel task stops the pipeline in GitLab. It
// pages through every dispatching and running run.
func (t *Tracker) Expire(ctx context.Context) error {
	now := t.now()
	var errs pollErrors
	expired := false
	err := t.each(ctx, store.Query{States: []run.State{run.Dispatching, run.Running, run.AwaitingApproval}}, func(r *run.Run) {
		if r.State == run.AwaitingApproval {
			if !r.ApprovalExpiresAt.IsZero() && !now.Before(r.ApprovalExpiresAt) {
				if err := t.expireApproval(ctx, r.ID, now); err != nil {
					errs.add(err)
				}
				expired = true
			}
			return
		}
		if r.Deadline.IsZero() || now.Before(r.Deadline) {
			return
		}
		_, err := t.Store.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
			var ch store.Change
			if r.Deadline.IsZero() || now.Before(r.Deadline) {
				return ch, store.ErrNoChange
			}
			if err := r.MoveTo(run.TimedOut, now); err != nil {
				return ch, store.ErrNoChange // finished meanwhile
			}
			why := fmt.Sprintf("timed out: the action allows %s and the run started at %s", r.Timeout, r.DispatchedAt.Format("15:04:05 MST"))
			r.Reasons = []string{why}
			ch.Add(why)
			ch.Tasks = append(ch.Tasks, store.CancelTask(0))
			ch.Report(run.Report{Log: "✗ " + why + "; canceling the pipeline"})
			if a, ok := t.Catalog.Get(r.Request.Action); ok {
				for _, e := range a.FailedIfApplied(r, why, t.runURL(r.ID)) {
					ch.Report(run.Report{Entity: e})
				}
			}
			ch.Report(run.Report{Final: run.Failure, StatusLabel: "Timed out", Summary: why, Link: r.PipelineURL})
			expired = true
			return ch, nil
		})
		if err != nil && !errors.Is(err, run.ErrNotFound) {
			errs.add(err)
		}
	})
	if t.Reported != nil && expired {
		t.Reported()
	}
	if err != nil {
		return fmt.Errorf("expire runs: %w", err)
	}
	return errs.err()
}

// expireApproval rejects a run nobody approved or denied in time.
func (t *Tracker) expireApproval(ctx context.Context, id string, now time.Time) error {
	_, err := t.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if r.State != run.AwaitingApproval || r.ApprovalExpiresAt.IsZero() || now.Before(r.ApprovalExpiresAt) {
			return ch, store.ErrNoChange // decided meanwhile
		}
		if err := r.MoveTo(run.Rejected, now); err != nil {
			return ch, store.ErrNoChange
		}
		who := "nobody"
		if len(r.Approvers) > 0 {
			who = strings.Join(r.Approvers, ", ")
		}
		why := fmt.Sprintf("approval expired: no approver (%s) decided by %s; run the action again to ask anew", who, r.ApprovalExpiresAt.Format(time.RFC3339))
		r.Reasons = []string{why}
		ch.Add(why)
		ch.Report(run.Report{Log: "✗ " + why}).Report(run.Report{Final: run.Failure, StatusLabel: "Approval expired", Summary: why})
		return ch, nil
	})
	if err != nil && !errors.Is(err, run.ErrNotFound) {
		return fmt.Errorf("expire approval of run %s: %w", id, err)
	}
	return nil
}
