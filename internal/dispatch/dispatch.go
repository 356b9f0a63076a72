// Package dispatch is the outbox worker that starts pipelines. It claims a
// queued run's dispatch task, marks the run dispatching, triggers the GitLab
// pipeline and records it. Because GitLab's create-pipeline call is not
// idempotent, a run found already dispatching (after a crash or a timed-out
// call) is first reconciled: the pipeline whose PAVED_RUN_ID variable names
// the run is adopted, and only when there is none is the trigger repeated.
package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/worker"
)

// Store is what the dispatcher needs of the run store.
type Store interface {
	Claim(ctx context.Context, kind string, lease time.Duration, limit int) ([]store.Task, error)
	Complete(ctx context.Context, id int64) error
	Retry(ctx context.Context, id int64, at time.Time, lastErr string) error
	Release(ctx context.Context, ids ...int64) error
	Run(ctx context.Context, id string) (*run.Run, error)
	Update(ctx context.Context, id string, fn func(*run.Run) (store.Change, error)) (*run.Run, error)
}

// Pipelines starts and finds GitLab pipelines.
type Pipelines interface {
	Trigger(ctx context.Context, project, ref string, vars []gitlab.Variable) (gitlab.Pipeline, error)
	FindByRunID(ctx context.Context, project, ref string, since time.Time, runID string) (gitlab.Pipeline, bool, error)
	Cancel(ctx context.Context, project string, id int64) (gitlab.Pipeline, error)
}

// Worker dispatches runs.
type Worker struct {
	Store     Store
	Pipelines Pipelines
	Log       *zap.Logger
	// PublicURL is paved's address as pipelines reach it.
	PublicURL string
	// RunTokenKey signs the per-run callback token.
	RunTokenKey []byte
	Interval    time.Duration
	Lease       time.Duration
	// Drain is how long work in flight may go on after Run's ctx ends.
	Drain time.Duration
	Now   func() time.Time
	Waker worker.Waker
}

// Run dispatches until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	worker.Loop(ctx, w.Interval, w.Drain, w.Waker, func(ctx context.Context) bool {
		n, err := w.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			w.Log.Error("dispatch", zap.Error(err))
		}
		return n > 0 && err == nil
	})
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now().UTC()
	}
	return time.Now().UTC()
}

// Tick handles one batch of due dispatch and cancel tasks and says how many
// it claimed.
func (w *Worker) Tick(ctx context.Context) (int, error) {
	var tasks []store.Task
	for _, kind := range []string{store.KindCancel, store.KindDispatch} {
		batch, err := w.Store.Claim(ctx, kind, w.Lease, 8)
		if err != nil {
			return 0, err
		}
		tasks = append(tasks, batch...)
	}
	for i, t := range tasks {
		if ctx.Err() != nil {
			// Out of time at shutdown: hand the rest back at once rather
			// than leave them leased.
			var ids []int64
			for _, rest := range tasks[i:] {
				ids = append(ids, rest.ID)
			}
			return len(tasks), w.Store.Release(context.WithoutCancel(ctx), ids...)
		}
		handle := w.handle
		if t.Kind == store.KindCancel {
			handle = w.cancel
		}
		if err := handle(ctx, t); err != nil {
			w.Log.Error(t.Kind+" run", zap.String("run", t.RunID), zap.Int("attempt", t.Attempts), zap.Error(err))
		}
	}
	return len(tasks), nil
}

func (w *Worker) handle(ctx context.Context, t store.Task) error {
	r, err := w.Store.Run(ctx, t.RunID)
	if err != nil {
		return err
	}
	switch r.State {
	case run.Queued:
		r, err = w.Store.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
			var ch store.Change
			if err := r.MoveTo(run.Dispatching, w.now()); err != nil {
				return ch, err
			}
			r.DispatchedAt = w.now()
			if r.Timeout > 0 {
				r.Deadline = r.DispatchedAt.Add(r.Timeout)
			}
			ch.Add(fmt.Sprintf("triggering pipeline in %s@%s", r.Project, r.Ref))
			ch.Report(run.Report{StatusLabel: "Starting pipeline", Log: fmt.Sprintf("Starting a pipeline in %s (ref %s)", r.Project, r.Ref)})
			return ch, nil
		})
		if err != nil {
			return w.retry(ctx, t, err)
		}
	case run.Dispatching:
		// A trigger may have been made before a crash or timeout: adopt it.
		p, found, err := w.Pipelines.FindByRunID(ctx, r.Project, r.Ref, r.DispatchedAt, r.ID)
		if err != nil {
			return w.retry(ctx, t, fmt.Errorf("reconcile run %s: %w", r.ID, err))
		}
		if found {
			return w.adopt(ctx, t, r.ID, p, "adopted pipeline found by PAVED_RUN_ID after an interrupted dispatch")
		}
	default:
		// Canceled, or dispatched by another worker whose lease ran out.
		return w.Store.Complete(ctx, t.ID)
	}
	vars, err := w.variables(r)
	if err != nil {
		return w.fail(ctx, t, r.ID, err.Error())
	}
	p, err := w.Pipelines.Trigger(ctx, r.Project, r.Ref, vars)
	if err != nil {
		if gitlab.IsPermanent(err) {
			return w.fail(ctx, t, r.ID, fmt.Sprintf("GitLab refused to start the pipeline: %v", err))
		}
		return w.retry(ctx, t, fmt.Errorf("trigger pipeline for run %s: %w", r.ID, err))
	}
	return w.adopt(ctx, t, r.ID, p, "pipeline created")
}

func (w *Worker) adopt(ctx context.Context, t store.Task, id string, p gitlab.Pipeline, how string) error {
	_, err := w.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if r.State == run.Canceled || r.State == run.TimedOut {
			// Ended while the trigger was in flight: stop the pipeline it made.
			if r.PipelineID != 0 {
				return ch, store.ErrNoChange
			}
			r.PipelineID, r.PipelineURL, r.PipelineStatus = p.ID, p.WebURL, p.Status
			ch.Add(fmt.Sprintf("pipeline #%d started after the run ended; canceling it", p.ID))
			ch.Tasks = append(ch.Tasks, store.NewTask{Kind: store.KindCancel, Payload: struct{}{}})
			return ch, nil
		}
		if err := r.MoveTo(run.Running, w.now()); err != nil {
			return ch, store.ErrNoChange
		}
		r.PipelineID, r.PipelineURL, r.PipelineStatus = p.ID, p.WebURL, p.Status
		ch.Add(fmt.Sprintf("%s: #%d %s", how, p.ID, p.WebURL))
		ch.Report(run.Report{Link: p.WebURL, StatusLabel: "Pipeline " + p.Status, Log: fmt.Sprintf("Pipeline #%d started: %s", p.ID, p.WebURL)})
		return ch, nil
	})
	if err != nil {
		return w.retry(ctx, t, fmt.Errorf("record pipeline %d of run %s: %w", p.ID, id, err))
	}
	return w.Store.Complete(ctx, t.ID)
}

func (w *Worker) fail(ctx context.Context, t store.Task, id, reason string) error {
	_, err := w.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if err := r.MoveTo(run.Failed, w.now()); err != nil {
			return ch, store.ErrNoChange
		}
		r.Reasons = []string{reason}
		ch.Add(reason)
		ch.Report(run.Report{Log: "✗ " + reason}).Report(run.Report{Final: run.Failure, StatusLabel: "Pipeline not started", Summary: reason})
		return ch, nil
	})
	if err != nil {
		return w.retry(ctx, t, err)
	}
	return w.Store.Complete(ctx, t.ID)
}

func (w *Worker) retry(ctx context.Context, t store.Task, cause error) error {
	if ctx.Err() != nil {
		// Shutting down: hand the task back for the next start.
		if err := w.Store.Release(context.WithoutCancel(ctx), t.ID); err != nil {
			return fmt.Errorf("%w (and releasing the task: %v)", cause, err)
		}
		return cause
	}
	delay := worker.Backoff(t.Attempts, time.Second, 5*time.Minute)
	if d, ok := gitlab.RetryAfter(cause); ok && d > delay {
		delay = d
	}
	if err := w.Store.Retry(ctx, t.ID, w.now().Add(delay), cause.Error()); err != nil {
		return fmt.Errorf("%w (and scheduling the retry: %v)", cause, err)
	}
	return fmt.Errorf("%w (retry in %s)", cause, delay.Round(time.Millisecond))
}

// variables are the pipeline's inputs. User input travels only as variable
// values (and the PAVED_REQUEST file), never as script text.
func (w *Worker) variables(r *run.Run) ([]gitlab.Variable, error) {
	req, err := json.Marshal(run.PipelineRequestOf(r))
	if err != nil {
		return nil, fmt.Errorf("encode PAVED_REQUEST for run %s: %w", r.ID, err)
	}
	return []gitlab.Variable{
		{Key: "PAVED_RUN_ID", Value: r.ID},
		{Key: "PAVED_ACTION", Value: r.Request.Action},
		{Key: "PAVED_OPERATION", Value: string(r.Operation)},
		{Key: "PAVED_TENANT", Value: r.Stack.Tenant},
		{Key: "PAVED_ENVIRONMENT", Value: r.Stack.Environment},
		{Key: "PAVED_SERVICE", Value: r.Stack.Service},
		{Key: "PAVED_STACK", Value: r.Stack.Key()},
		{Key: "PAVED_TEAM", Value: r.Team},
		{Key: "PAVED_URL", Value: w.PublicURL},
		{Key: "PAVED_RUN_TOKEN", Value: run.Token(w.RunTokenKey, r.ID)},
		{Key: "PAVED_REQUEST", Value: string(req), File: true},
	}, nil
}

// cancel stops the pipeline of a run that was canceled or timed out. The
// pipeline is the recorded one, or found by PAVED_RUN_ID when the run ended
// mid-dispatch; none found means none was made (adopt catches a late one).
func (w *Worker) cancel(ctx context.Context, t store.Task) error {
	r, err := w.Store.Run(ctx, t.RunID)
	if err != nil {
		return err
	}
	id := r.PipelineID
	if id == 0 && !r.DispatchedAt.IsZero() {
		p, found, err := w.Pipelines.FindByRunID(ctx, r.Project, r.Ref, r.DispatchedAt, r.ID)
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
			w.Log.Error("GitLab refused to cancel the pipeline", zap.String("run", r.ID), zap.Int64("pipeline", id), zap.Error(err))
			return w.Store.Complete(ctx, t.ID)
		}
		return w.retry(ctx, t, fmt.Errorf("cancel pipeline %d of run %s: %w", id, r.ID, err))
	}
	_, err = w.Store.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		r.PipelineID, r.PipelineStatus = p.ID, p.Status
		ch.Add(fmt.Sprintf("asked GitLab to cancel pipeline #%d (now %s)", p.ID, p.Status))
		return ch, nil
	})
	if err != nil {
		return w.retry(ctx, t, err)
	}
	return w.Store.Complete(ctx, t.ID)
}
