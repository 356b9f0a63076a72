package track

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/worker"
)

// pageSize is how many runs the poller and the expiry sweep read at once;
// they page on until every run has been seen.
const pageSize = 200

// Run polls and expires until ctx ends, backing off while rounds fail.
func (t *Tracker) Run(ctx context.Context) {
	interval := t.PollInterval / 2
	if interval <= 0 {
		interval = time.Second
	}
	worker.Loop(ctx, worker.Options{Interval: interval, OnError: func(err error, n int, wait time.Duration) {
		t.Log.Warn("track pipelines", zap.Error(err), zap.Int("failures_in_a_row", n), zap.Duration("retry_in", wait))
	}}, func(ctx context.Context) (bool, error) {
		return false, errors.Join(t.Poll(ctx), t.Expire(ctx))
	})
}

// Poll asks GitLab about every run whose pipeline may still move and that
// has had no news for PollInterval: webhooks can be lost. That is each
// running run, whatever status paved last saw (a run must never stay
// running while GitLab says its pipeline finished), and each canceled or
// timed-out run whose pipeline still winds down.
func (t *Tracker) Poll(ctx context.Context) error {
	before := t.now().Add(-t.PollInterval)
	var errs pollErrors
	for _, q := range []store.Query{
		{States: []run.State{run.Running}, HasPipeline: true, UpdatedBefore: before},
		{States: []run.State{run.Canceled, run.TimedOut}, ActivePipeline: true, UpdatedBefore: before},
	} {
		err := t.each(ctx, q, func(r *run.Run) {
			p, err := t.Pipelines.Pipeline(ctx, r.Project, r.PipelineID)
			if err != nil {
				errs.add(fmt.Errorf("run %s: get pipeline %d: %w", r.ID, r.PipelineID, err))
				return
			}
			if _, err := t.Observe(ctx, Observation{RunID: r.ID, PipelineID: p.ID, Status: p.Status, URL: p.WebURL}); err != nil {
				errs.add(err)
			}
		})
		if err != nil {
			return fmt.Errorf("poll pipelines: %w", err)
		}
	}
	return errs.err()
}

// each calls fn for every run q matches, a page at a time in id order, so
// that however many there are each is reached once per sweep.
func (t *Tracker) each(ctx context.Context, q store.Query, fn func(*run.Run)) error {
	q.ByID, q.Limit, q.AfterID = true, pageSize, ""
	for ctx.Err() == nil {
		page, err := t.Store.ListRuns(ctx, q)
		if err != nil {
			return err
		}
		for _, r := range page {
			if ctx.Err() != nil {
				break
			}
			fn(r)
		}
		if len(page) < pageSize {
			return nil
		}
		q.AfterID = page[len(page)-1].ID
	}
	return ctx.Err()
}

// pollErrors keeps a sweep's failures short: a count and the first few,
// not one line per run when GitLab is down.
type pollErrors struct {
	n     int
	first []error
}

func (e *pollErrors) add(err error) {
	e.n++
	if len(e.first) < 3 {
		e.first = append(e.first, err)
	}
}

func (e *pollErrors) err() error {
	if e.n == 0 {
		return nil
	}
	return fmt.Errorf("%d pipeline read(s) failed, first: %w", e.n, errors.Join(e.first...))
}
