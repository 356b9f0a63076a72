// Package track follows pipelines and moves their runs: GitLab's pipeline
// webhook is the fast path, a poller catches runs whose webhook never came,
// and the pipeline's own callbacks add log lines and Pulumi outputs.
package track

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/worker"
)

// Store is what the tracker needs of the run store.
type Store interface {
	Run(ctx context.Context, id string) (*run.Run, error)
	RunByPipeline(ctx context.Context, pipelineID int64) (*run.Run, error)
	Update(ctx context.Context, id string, fn func(*run.Run) (store.Change, error)) (*run.Run, error)
	ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error)
}

// Pipelines reads a pipeline's state from GitLab.
type Pipelines interface {
	Pipeline(ctx context.Context, project string, id int64) (gitlab.Pipeline, error)
}

// Catalog finds the action of a run, for the entity its outputs write.
type Catalog interface {
	Get(id string) (*catalog.Action, bool)
}

// Tracker moves runs as their pipelines move.
type Tracker struct {
	Store     Store
	Pipelines Pipelines
	Catalog   Catalog
	Log       *zap.Logger
	Now       func() time.Time
	// PollInterval is how long a running run may go without news before
	// the poller asks GitLab.
	PollInterval time.Duration
	// Reported, when set, is called after a change that queued reports.
	Reported func()
}

// Observation is what paved learned about a pipeline.
type Observation struct {
	RunID      string // empty: find the run by pipeline id
	PipelineID int64
	Status     string // GitLab's pipeline status
	URL        string
	FailedJobs []string
}

// ErrNotOurs means a pipeline hook was for a pipeline paved did not start.
var ErrNotOurs = errors.New("pipeline does not belong to a paved run")

func (t *Tracker) now() time.Time {
	if t.Now != nil {
		return t.Now().UTC()
	}
	return time.Now().UTC()
}

// HandleHook applies a GitLab pipeline webhook.
func (t *Tracker) HandleHook(ctx context.Context, ev gitlab.HookEvent) error {
	o := Observation{RunID: ev.Variables["PAVED_RUN_ID"], PipelineID: ev.PipelineID, Status: ev.Status, URL: ev.URL}
	for _, b := range ev.Builds {
		if b.Status == "failed" {
			o.FailedJobs = append(o.FailedJobs, b.Name)
		}
	}
	sort.Strings(o.FailedJobs)
	return t.Observe(ctx, o)
}

// Observe moves a run to match its pipeline's status. Stale and repeated
// news changes nothing: a finished run stays finished.
func (t *Tracker) Observe(ctx context.Context, o Observation) error {
	id := o.RunID
	if id == "" {
		r, err := t.Store.RunByPipeline(ctx, o.PipelineID)
		if errors.Is(err, run.ErrNotFound) {
			return ErrNotOurs
		}
		if err != nil {
			return err
		}
		id = r.ID
	}
	reported := false
	_, err := t.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		ch, err := t.apply(r, o)
		reported = len(ch.Tasks) > 0
		return ch, err
	})
	if errors.Is(err, run.ErrNotFound) {
		return ErrNotOurs
	}
	if err != nil {
		return fmt.Errorf("observe pipeline %d (%s): %w", o.PipelineID, o.Status, err)
	}
	if reported && t.Reported != nil {
		t.Reported()
	}
	return nil
}

func (t *Tracker) apply(r *run.Run, o Observation) (store.Change, error) {
	var ch store.Change
	if r.PipelineID != 0 && r.PipelineID != o.PipelineID {
		return ch, store.ErrNoChange
	}
	if r.State.Terminal() {
		// A canceled or timed-out run keeps its stack until its pipeline
		// has wound down; record how the pipeline ends, nothing else.
		if r.PipelineID == 0 || o.Status == r.PipelineStatus || gitlab.Terminal(r.PipelineStatus) {
			return ch, store.ErrNoChange
		}
		r.PipelineStatus = o.Status
		ch.Add(fmt.Sprintf("pipeline #%d %s (the run had ended %s)", r.PipelineID, o.Status, r.State))
		return ch, nil
	}
	now := t.now()
	if r.State == run.Dispatching {
		// The hook beat the dispatcher's own record of the pipeline.
		if err := r.MoveTo(run.Running, now); err != nil {
			return ch, err
		}
		r.PipelineID, r.PipelineURL = o.PipelineID, o.URL
		ch.Add(fmt.Sprintf("pipeline #%d reported by GitLab before the trigger answer was recorded", o.PipelineID))
		ch.Report(run.Report{Link: o.URL, Log: fmt.Sprintf("Pipeline #%d started: %s", o.PipelineID, o.URL)})
	}
	if r.State != run.Running {
		return ch, store.ErrNoChange
	}
	if r.PipelineURL == "" {
		r.PipelineURL = o.URL
	}
	if !gitlab.Terminal(o.Status) {
		if o.Status == r.PipelineStatus && len(ch.Events) == 0 {
			return ch, store.ErrNoChange
		}
		r.PipelineStatus = o.Status
		ch.Add("pipeline " + o.Status)
		ch.Report(run.Report{StatusLabel: "Pipeline " + o.Status})
		return ch, nil
	}
	r.PipelineStatus = o.Status
	to := map[string]run.State{"success": run.Succeeded, "failed": run.Failed, "canceled": run.Canceled, "skipped": run.Canceled}[o.Status]
	if err := r.MoveTo(to, now); err != nil {
		return ch, err
	}
	ch.Add(fmt.Sprintf("pipeline #%d %s", r.PipelineID, o.Status))
	ch.Report(run.Report{Log: fmt.Sprintf("Pipeline #%d finished: %s", r.PipelineID, o.Status)})
	if to != run.Succeeded {
		summary := fmt.Sprintf("Pipeline #%d %s", r.PipelineID, o.Status)
		if len(o.FailedJobs) > 0 {
			summary += " in job(s) " + strings.Join(o.FailedJobs, ", ")
		}
		summary += "; see " + r.PipelineURL
		r.Reasons = []string{summary}
		ch.Report(run.Report{Final: run.Failure, StatusLabel: "Pipeline " + o.Status, Summary: summary, Link: r.PipelineURL})
		return ch, nil
	}
	summary := fmt.Sprintf("Pipeline #%d succeeded", r.PipelineID)
	if a, ok := t.Catalog.Get(r.Request.Action); ok {
		if e := a.EntityFor(r); e != nil {
			ch.Report(run.Report{Entity: e, Log: fmt.Sprintf("Wrote %s %q to the catalog", e.Blueprint, e.Identifier)})
			summary += fmt.Sprintf("; %s %s is up to date", e.Blueprint, e.Identifier)
		}
	}
	ch.Report(run.Report{Final: run.Success, StatusLabel: "Done", Summary: summary, Link: r.PipelineURL})
	return ch, nil
}

// Run polls until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	interval := t.PollInterval / 2
	if interval <= 0 {
		interval = time.Second
	}
	worker.Loop(ctx, interval, 0, nil, func(ctx context.Context) bool {
		if err := t.Expire(ctx); err != nil && ctx.Err() == nil {
			t.Log.Warn("expire runs", zap.Error(err))
		}
		if err := t.Poll(ctx); err != nil && ctx.Err() == nil {
			t.Log.Warn("poll pipelines", zap.Error(err))
		}
		return false
	})
}

// Poll asks GitLab about running runs that have had no news for a while:
// webhooks can be lost.
func (t *Tracker) Poll(ctx context.Context) error {
	runs, err := t.Store.ListRuns(ctx, store.Query{
		States:        []run.State{run.Running, run.Canceled, run.TimedOut},
		UpdatedBefore: t.now().Add(-t.PollInterval), ActivePipeline: true, OldestFirst: true, Limit: 500,
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range runs {
		p, err := t.Pipelines.Pipeline(ctx, r.Project, r.PipelineID)
		if err != nil {
			errs = append(errs, fmt.Errorf("run %s: get pipeline %d: %w", r.ID, r.PipelineID, err))
			continue
		}
		if err := t.Observe(ctx, Observation{RunID: r.ID, PipelineID: p.ID, Status: p.Status, URL: p.WebURL}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
