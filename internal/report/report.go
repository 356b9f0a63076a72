// Package report delivers a run's reports (log lines, status, link, entity,
// final result) from the outbox to the run's portal, in the order they were
// written, with retries, backoff and respect for the portal's rate limits.
package report

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
	"github.com/paved-idp/paved/internal/worker"
)

// Portal delivers reports to one portal and classifies its errors.
type Portal interface {
	Report(ctx context.Context, portalRunID string, rep run.Report) error
	// Permanent reports whether retrying err cannot help.
	Permanent(err error) bool
	// RetryAt says when the portal allows the next call after err, if it said.
	RetryAt(err error) (time.Time, bool)
	// Finished says whether the portal's run already has its final status.
	Finished(ctx context.Context, portalRunID string) (bool, error)
}

// Worker delivers reports. Runs of portals without an entry in Portals (a
// run started through paved's own API, say) need no delivery.
type Worker struct {
	Store   store.RunOutbox
	Portals map[string]Portal
	// CatalogPortal, when set, names the portal whose catalog holds the
	// entities of paved's own runs (run.PortalPaved: drift checks), which
	// have no portal run: only their entity writes are delivered, there.
	CatalogPortal string
	Log           *zap.Logger
	Interval      time.Duration
	Lease         time.Duration
	Concurrency   int
	// Drain is how long deliveries in flight may go on after Run's ctx ends.
	Drain time.Duration
	Now   func() time.Time
	Waker worker.Waker

	// Metrics and Tracer watch delivery (nil: nothing is recorded).
	Metrics *telemetry.Metrics
	Tracer  trace.Tracer

	mu        sync.Mutex
	pauseTill map[string]time.Time // per portal, after a rate-limit answer
}

func (w *Worker) pause(portal string, until time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pauseTill == nil {
		w.pauseTill = map[string]time.Time{}
	}
	if until.After(w.pauseTill[portal]) {
		w.pauseTill[portal] = until
	}
}

func (w *Worker) pausedUntil(portal string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pauseTill[portal]
}

func (w *Worker) paused(portal string) bool { return w.now().Before(w.pausedUntil(portal)) }

func (w *Worker) allPaused() bool {
	if len(w.Portals) == 0 {
		return false
	}
	for name := range w.Portals {
		if !w.paused(name) {
			return false
		}
	}
	return true
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Run delivers until ctx ends; deliveries in flight then get Drain to finish.
func (w *Worker) Run(ctx context.Context) {
	worker.Loop(ctx, worker.Options{Interval: w.Interval, Drain: w.Drain, Wake: w.Waker, OnError: func(err error, n int, wait time.Duration) {
		w.Log.Error("report", zap.Error(err), zap.Int("failures_in_a_row", n), zap.Duration("retry_in", wait))
	}}, func(work context.Context) (bool, error) {
		n, err := w.tick(work, ctx.Done())
		return n > 0, err
	})
}

// Tick delivers due reports with Concurrency workers until none is due,
// and says how many it took. Only a run's oldest open report is ever due,
// so a run's reports stay in order.
func (w *Worker) Tick(ctx context.Context) (int, error) { return w.tick(ctx, nil) }

func (w *Worker) tick(ctx context.Context, stop <-chan struct{}) (int, error) {
	// One claim takes a batch (one transaction, not one per report); each
	// run still has at most one report in it, its oldest.
	batch := &worker.Batches[store.Task]{N: claimBatch, Claim: func(ctx context.Context, n int) ([]store.Task, error) {
		if w.allPaused() {
			return nil, nil // claiming now would only spend attempts
		}
		return w.Store.Claim(ctx, store.KindReport, w.Lease, n)
	}}
	n, err := worker.Pool(ctx, stop, w.Concurrency, batch.Next, func(ctx context.Context, t store.Task) {
		err := w.deliver(ctx, t)
		switch {
		case err != nil && ctx.Err() != nil:
			// Cut off at shutdown: hand the task back for the next start.
			worker.HandBack(ctx, w.Store.Release, w.Log, t.ID)
		case err != nil:
			w.Log.Warn("deliver report", append(telemetry.FieldsOf(err, t.RunID), zap.Int("attempt", t.Attempts), zap.Error(err))...)
		}
	})
	left := batch.Left()
	ids := make([]int64, len(left))
	for i, t := range left {
		ids[i] = t.ID
	}
	worker.HandBack(ctx, w.Store.Release, w.Log, ids...)
	return n, err
}

// claimBatch is how many reports one claim takes.
const claimBatch = 32

func (w *Worker) deliver(ctx context.Context, t store.Task) error {
	r, err := w.Store.Run(ctx, t.RunID)
	if err != nil {
		return err
	}
	ctx, span := telemetry.StartRun(ctx, w.Tracer, "report", r, trace.WithAttributes(
		attribute.String("paved.portal", r.Request.Portal), attribute.Int("paved.attempt", t.Attempts)))
	defer span.End()
	if err := w.deliverTo(ctx, t, r); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "report not delivered")
		return telemetry.AboutRun(r, err)
	}
	return nil
}

// portalOf is where r's reports go: its portal and portal run, or for a
// run of paved's own the catalog's portal and no run.
func (w *Worker) portalOf(r *run.Run) (portal, portalRunID string) {
	if r.Request.Portal == run.PortalPaved {
		return w.CatalogPortal, ""
	}
	return r.Request.Portal, r.Request.PortalRunID
}

// deliverTo sends one report of r to its portal.
func (w *Worker) deliverTo(ctx context.Context, t store.Task, r *run.Run) (err error) {
	portal, portalRunID := w.portalOf(r)
	p, ok := w.Portals[portal]
	if !ok {
		return w.Store.Complete(ctx, t.ID)
	}
	var rep run.Report
	if err := json.Unmarshal(t.Payload, &rep); err != nil {
		w.Log.Error("drop undecodable report", append(telemetry.RunFields(r), zap.Int64("task", t.ID), zap.Error(err))...)
		return w.Store.Complete(ctx, t.ID)
	}
	if rep.Untied {
		portalRunID = ""
	}
	if portalRunID == "" {
		// A run of paved's own, or news of the stack: no portal run to
		// tell, only the entity.
		switch {
		case rep.Delete != nil:
			rep = run.Report{Delete: rep.Delete}
		case rep.Entity != nil:
			rep = run.Report{Entity: rep.Entity, Untied: rep.Untied}
		default:
			return w.Store.Complete(ctx, t.ID)
		}
	}
	if w.paused(portal) {
		// The portal's rate limit holds for the whole organisation.
		return w.Store.Retry(ctx, t.ID, w.pausedUntil(portal), "portal rate limit")
	}
	if rep.Final != "" && t.Attempts > 1 && portalRunID != "" {
		// An earlier attempt may have gone through before its answer was
		// lost (or before a crash): never send a run's final status twice.
		done, ferr := p.Finished(ctx, portalRunID)
		if ferr != nil {
			err = fmt.Errorf("check whether the final status went through: %w", ferr)
			return w.again(ctx, t, r, p, err)
		}
		if done {
			return w.Store.Complete(ctx, t.ID)
		}
	}
	err = p.Report(ctx, portalRunID, rep)
	if err == nil {
		return w.Store.Complete(ctx, t.ID)
	}
	if ctx.Err() != nil {
		// Out of time at shutdown: hand the task back for the next start.
		if rerr := w.Store.Release(context.WithoutCancel(ctx), t.ID); rerr != nil {
			return fmt.Errorf("%w (and releasing the task: %v)", err, rerr)
		}
		return err
	}
	if p.Permanent(err) {
		// Retrying cannot help; keep the failure in the audit trail and go on
		// with the run's later reports.
		_, uerr := w.Store.Update(ctx, r.ID, func(*run.Run) (store.Change, error) {
			var ch store.Change
			ch.Add(fmt.Sprintf("report to %s failed for good: %v", r.Request.Portal, err))
			return ch, nil
		})
		w.Log.Error("report refused by portal", append(telemetry.RunFields(r), zap.String("portal", r.Request.Portal), zap.Error(err))...)
		if uerr != nil {
			return uerr
		}
		return w.Store.Complete(ctx, t.ID)
	}
	return w.again(ctx, t, r, p, err)
}

// again schedules a failed delivery's retry: backoff, or the portal's rate
// limit reset, which then pauses every delivery to that portal.
func (w *Worker) again(ctx context.Context, t store.Task, r *run.Run, p Portal, err error) error {
	at := w.now().Add(worker.Backoff(t.Attempts, 500*time.Millisecond, 30*time.Second))
	if limitAt, ok := p.RetryAt(err); ok {
		portal, _ := w.portalOf(r)
		w.pause(portal, limitAt)
		if limitAt.After(at) {
			at = limitAt
		}
	}
	if rerr := w.Store.Retry(ctx, t.ID, at, err.Error()); rerr != nil {
		return fmt.Errorf("%w (and scheduling the retry: %v)", err, rerr)
	}
	return fmt.Errorf("report to %s for run %s: %w (retry at %s)", r.Request.Portal, r.ID, err, at.Format(time.RFC3339))
}
