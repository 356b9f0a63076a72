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
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
	"github.com/paved-idp/paved/internal/worker"
)

// Pipelines starts and finds GitLab pipelines.
type Pipelines interface {
	Trigger(ctx context.Context, project, ref string, vars []gitlab.Variable) (gitlab.Pipeline, error)
	FindByRunID(ctx context.Context, project, ref string, since time.Time, runID string, after int64) (gitlab.Pipeline, bool, error)
	Cancel(ctx context.Context, project string, id int64) (gitlab.Pipeline, error)
}

// Adopter records a pipeline GitLab vouched for as a run's and applies its
// status exactly as a hook would (the tracker), inside the caller's
// transaction: a pipeline found already finished finishes the run.
type Adopter interface {
	Adopt(r *run.Run, p gitlab.Pipeline, how string) (store.Change, error)
}

// StackQueue lists the runs holding or waiting for a stack, in order.
type StackQueue interface {
	StackQueue(ctx context.Context, stackKey string) ([]string, error)
}

// Worker dispatches runs.
type Worker struct {
	Store     store.RunOutbox
	Queue     StackQueue
	Pipelines Pipelines
	Adopter   Adopter
	Log       *zap.Logger
	// PublicURL is paved's address as pipelines reach it.
	PublicURL string
	// RunTokenKey signs the per-run callback token.
	RunTokenKey []byte
	Interval    time.Duration
	Lease       time.Duration
	// Settle is how long after a trigger whose outcome is unknown (timeout,
	// 5xx, crash) paved waits before it looks for the pipeline: GitLab may
	// still be creating it, and looking too early would trigger a second.
	Settle time.Duration
	// Drain is how long work in flight may go on after Run's ctx ends.
	Drain time.Duration
	// Concurrency is how many triggers run at once (0: 8).
	Concurrency int
	Now         func() time.Time
	Waker       worker.Waker
	// Reported, when set, is called after a change that queued reports.
	Reported func()
	// Metrics and Tracer watch dispatch (nil: nothing is recorded).
	Metrics *telemetry.Metrics
	Tracer  trace.Tracer
	// Guard, when set, is asked before a queued run is triggered whether it
	// is still wanted; one it says is not ends canceled with the reason.
	Guard Guard
}

// Guard judges a queued run at its dispatch, when it holds its stack: what
// was queued ahead of it has run, so a run of paved's own decided earlier
// (an expiry's destroy) can be checked against what the stack became.
type Guard interface {
	// Obsolete is why r is no longer wanted, or "".
	Obsolete(ctx context.Context, r *run.Run) (string, error)
}

// Run dispatches until ctx ends. At the end no new trigger starts; the one
// in flight gets Drain to finish.
func (w *Worker) Run(ctx context.Context) {
	worker.Loop(ctx, worker.Options{Interval: w.Interval, Drain: w.Drain, Wake: w.Waker, OnError: func(err error, n int, wait time.Duration) {
		w.Log.Error("dispatch", zap.Error(err), zap.Int("failures_in_a_row", n), zap.Duration("retry_in", wait))
	}}, func(work context.Context) (bool, error) {
		n, err := w.tick(work, ctx.Done())
		return n > 0, err
	})
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now().UTC()
	}
	return time.Now().UTC()
}

// Tick handles due cancel and dispatch tasks until none is due, and says
// how many it took.
func (w *Worker) Tick(ctx context.Context) (int, error) { return w.tick(ctx, nil) }

// tick runs a few workers, so that one slow GitLab call does not hold up
// the other stacks. Claims keep them apart: a task is leased to one worker,
// and a stack's next run is not due while another of its runs is active.
func (w *Worker) tick(ctx context.Context, stop <-chan struct{}) (int, error) {
	// A kind a claim of this tick found nothing of is not claimed again in
	// it: every worker would otherwise make its own empty claims (two, one
	// a kind) before it stops, sixteen transactions of the store's single
	// writer for a tick with nothing to do, and the intake wakes the
	// dispatcher after every run it queues. Claims take turns so that the
	// first empty one is seen by the rest. A task that comes due while the
	// tick runs is taken by the next, which follows at once when this one
	// took anything (see worker.Loop) and on the wake that came with it.
	var (
		mu    sync.Mutex
		empty [2]bool
	)
	kinds := [2]string{store.KindCancel, store.KindDispatch}
	next := func(ctx context.Context) (store.Task, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		for i, kind := range kinds {
			if empty[i] {
				continue
			}
			tasks, err := w.Store.Claim(ctx, kind, w.Lease, 1)
			if err != nil {
				return store.Task{}, false, err
			}
			if len(tasks) > 0 {
				if kind == store.KindDispatch {
					// A cancel asked for meanwhile goes before the next
					// trigger: look for cancels again (one claim a trigger).
					empty[0] = false
				}
				return tasks[0], true, nil
			}
			empty[i] = true
		}
		return store.Task{}, false, nil
	}
	n := w.Concurrency
	if n <= 0 {
		n = defaultConcurrency
	}
	return worker.Pool(ctx, stop, n, next, func(ctx context.Context, t store.Task) {
		if worker.Stopped(stop) {
			// Shutting down: start no new trigger; hand the task back.
			worker.HandBack(ctx, w.Store.Release, w.Log, t.ID)
			return
		}
		handle := w.handle
		if t.Kind == store.KindCancel {
			handle = w.cancel
		}
		if err := handle(ctx, t); err != nil {
			if ctx.Err() != nil {
				// Cut off at shutdown, maybe before it could hand the task
				// back itself: hand it back for the next start.
				worker.HandBack(ctx, w.Store.Release, w.Log, t.ID)
				return
			}
			w.Log.Error(t.Kind+" run", append(telemetry.FieldsOf(err, t.RunID), zap.Int("attempt", t.Attempts), zap.Error(err))...)
		}
	})
}

// errRaced means another worker moved the run between this worker's read
// and its write.
var errRaced = errors.New("another worker dispatched the run meanwhile")

// defaultConcurrency is how many GitLab calls one replica makes at once
// when Worker.Concurrency is not set.
const defaultConcurrency = 8

func (w *Worker) handle(ctx context.Context, t store.Task) error {
	r, err := w.Store.Run(ctx, t.RunID)
	if err != nil {
		return err
	}
	ctx, span := telemetry.StartRun(ctx, w.Tracer, "dispatch", r, trace.WithAttributes(attribute.Int("paved.attempt", t.Attempts)))
	defer span.End()
	if err := w.dispatch(ctx, t, r); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "dispatch did not finish")
		return telemetry.AboutRun(r, err)
	}
	return nil
}

// dispatch triggers r's pipeline, or adopts the one an interrupted attempt
// made.
func (w *Worker) dispatch(ctx context.Context, t store.Task, r *run.Run) error {
	switch r.State {
	case run.Queued:
		if w.Guard != nil {
			why, err := w.Guard.Obsolete(ctx, r)
			if err != nil {
				return w.retry(ctx, t, fmt.Errorf("judge run %s before its dispatch: %w", r.ID, err))
			}
			if why != "" {
				return w.drop(ctx, t, r.ID, why)
			}
		}
	case run.Dispatching:
		// A trigger may have been made before a crash or a failed call:
		// once it has had time to land, adopt it rather than trigger again.
		if ready := r.TriggeredAt.Add(w.Settle); w.now().Before(ready) {
			return w.Store.Retry(ctx, t.ID, ready, "waiting for an earlier trigger to settle")
		}
		p, found, err := w.Pipelines.FindByRunID(ctx, r.Project, r.Ref, r.DispatchedAt, r.ID, r.PreviewPipelineID)
		if err != nil {
			return w.retryAfter(ctx, t, fmt.Errorf("reconcile run %s: %w", r.ID, err), w.Settle)
		}
		if found {
			return w.adopt(ctx, t, r.ID, p, "adopted pipeline found by PAVED_RUN_ID after an interrupted dispatch")
		}
	default:
		// Canceled, or dispatched by another worker whose lease ran out.
		return w.Store.Complete(ctx, t.ID)
	}
	// Record the attempt before making it, so that whoever finds the run
	// dispatching later knows to wait and look before triggering again. The
	// record is a compare-and-set on what this worker read: if another
	// worker (which claimed the task after this one's lease ran out)
	// triggered meanwhile, this one backs off instead of triggering twice.
	seenState, seenTriggered := r.State, r.TriggeredAt
	r, err := w.Store.Update(ctx, r.ID, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if r.State != seenState || !r.TriggeredAt.Equal(seenTriggered) {
			return ch, errRaced
		}
		now := w.now()
		if r.State == run.Queued {
			if err := r.MoveTo(run.Dispatching, now); err != nil {
				return ch, err
			}
			r.DispatchedAt = now
			if r.Timeout > 0 {
				r.Deadline = now.Add(r.Timeout)
			}
			ch.Add(fmt.Sprintf("triggering pipeline in %s@%s", r.Project, r.Ref))
			ch.Report(run.Report{StatusLabel: "Starting pipeline", Log: fmt.Sprintf("Starting a pipeline in %s (ref %s)", r.Project, r.Ref)})
		} else if r.State != run.Dispatching {
			return ch, &run.TransitionError{RunID: r.ID, From: r.State, To: run.Dispatching}
		} else {
			ch.Add("no pipeline found for the earlier attempt; triggering again")
		}
		r.TriggeredAt = now
		return ch, nil
	})
	if errors.Is(err, errRaced) {
		return w.retryAfter(ctx, t, fmt.Errorf("dispatch run %s: %w", t.RunID, err), w.Settle)
	}
	if err != nil {
		return w.retry(ctx, t, err)
	}
	if r.TriggeredAt.Equal(r.DispatchedAt) {
		w.relabel(ctx, r.Stack.Key()) // the stack's queue moved up
	}
	vars, err := w.variables(ctx, r)
	if err != nil {
		return w.fail(ctx, t, r.ID, err.Error())
	}
	p, err := w.Pipelines.Trigger(ctx, r.Project, r.Ref, vars)
	if err != nil {
		if gitlab.IsPermanent(err) {
			w.Metrics.Dispatched("refused", w.now().Sub(r.CreatedAt))
			return w.fail(ctx, t, r.ID, fmt.Sprintf("GitLab refused to start the pipeline: %v", err))
		}
		return w.retryAfter(ctx, t, fmt.Errorf("trigger pipeline for run %s: %w", r.ID, err), w.Settle)
	}
	w.Metrics.Dispatched("created", w.now().Sub(r.CreatedAt))
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int64("paved.pipeline.id", p.ID))
	return w.adopt(ctx, t, r.ID, p, "pipeline created")
}

// adopt records p, which GitLab returned for the run's project, as the
// run's pipeline (see Adopter).
func (w *Worker) adopt(ctx context.Context, t store.Task, id string, p gitlab.Pipeline, how string) error {
	_, err := w.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) { return w.Adopter.Adopt(r, p, how) })
	if err != nil {
		return w.retry(ctx, t, fmt.Errorf("record pipeline %d of run %s: %w", p.ID, id, err))
	}
	w.reported()
	return w.Store.Complete(ctx, t.ID)
}

func (w *Worker) reported() {
	if w.Reported != nil {
		w.Reported()
	}
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
	w.reported()
	return w.Store.Complete(ctx, t.ID)
}

// drop cancels a queued run its Guard found no longer wanted.
func (w *Worker) drop(ctx context.Context, t store.Task, id, reason string) error {
	_, err := w.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if err := r.MoveTo(run.Canceled, w.now()); err != nil {
			return ch, store.ErrNoChange
		}
		r.Reasons = []string{reason}
		ch.Add("not started: " + reason)
		ch.Report(run.Report{Final: run.Failure, StatusLabel: "Not started", Summary: reason})
		return ch, nil
	})
	if err != nil {
		return w.retry(ctx, t, err)
	}
	w.Log.Info("queued run not started", zap.String("run_id", id), zap.String("why", reason))
	w.reported()
	return w.Store.Complete(ctx, t.ID)
}

func (w *Worker) retry(ctx context.Context, t store.Task, cause error) error {
	return w.retryAfter(ctx, t, cause, 0)
}

// retryAfter schedules the task again after backoff, or after floor when
// there is one, and no sooner than GitLab's rate limit allows. floor is the
// settle time after an uncertain trigger: the wait is for GitLab's state
// to settle, not to spare GitLab (the request cap and 429 pauses do that),
// so it does not grow with the attempts — growing, it only held back the
// runs that drew a 5xx twice or thrice in a row, by seconds to minutes.
func (w *Worker) retryAfter(ctx context.Context, t store.Task, cause error, floor time.Duration) error {
	if ctx.Err() != nil {
		// Shutting down: hand the task back for the next start.
		if err := w.Store.Release(context.WithoutCancel(ctx), t.ID); err != nil {
			return fmt.Errorf("%w (and releasing the task: %v)", cause, err)
		}
		return cause
	}
	delay := floor
	if delay <= 0 {
		delay = worker.Backoff(t.Attempts, time.Second, time.Minute)
	}
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
func (w *Worker) variables(ctx context.Context, r *run.Run) ([]gitlab.Variable, error) {
	req, err := json.Marshal(run.PipelineRequestOf(r))
	if err != nil {
		return nil, fmt.Errorf("encode PAVED_REQUEST for run %s: %w", r.ID, err)
	}
	vars := []gitlab.Variable{
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
	}
	// The pipeline may skip its apply jobs at once for a dry run; paved's
	// verdict on the preview (paved preview) is what decides either way.
	if r.DryRun {
		vars = append(vars, gitlab.Variable{Key: "PAVED_DRY_RUN", Value: "true"})
	}
	if r.ApprovedDigest != "" {
		vars = append(vars, gitlab.Variable{Key: "PAVED_APPROVED_DIGEST", Value: r.ApprovedDigest})
	}
	// The pipeline's work joins the run's trace: `paved report` sends it
	// back with each callback (W3C's name for it in an environment).
	if tp := telemetry.Traceparent(ctx); tp != "" {
		vars = append(vars, gitlab.Variable{Key: "TRACEPARENT", Value: tp})
	}
	return vars, nil
}
