// Package track follows pipelines and moves their runs: GitLab's pipeline
// webhook is the fast path, a poller catches runs whose webhook never came,
// and the pipeline's own callbacks add log lines and Pulumi outputs.
package track

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Store is what the tracker needs of the run store.
type Store interface {
	Run(ctx context.Context, id string) (*run.Run, error)
	RunByPipeline(ctx context.Context, pipelineID int64) (*run.Run, error)
	Update(ctx context.Context, id string, fn func(*run.Run) (store.Change, error)) (*run.Run, error)
	ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error)
	AppendLogs(ctx context.Context, id string, lines []string, max int) error
}

// Pipelines reads pipelines from GitLab, always through the run's own
// project, so that what comes back is GitLab's word about that project.
type Pipelines interface {
	Pipeline(ctx context.Context, project string, id int64) (gitlab.Pipeline, error)
	// PipelineOfRun reads a pipeline with the run it is of (RunID): the
	// run its name "paved <run id>" names, else its PAVED_RUN_ID variable.
	PipelineOfRun(ctx context.Context, project string, id int64) (gitlab.Pipeline, error)
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
	// MaxLogLines and MaxOutputBytes cap what one run's pipeline may post
	// in all; zero means DefaultMaxRunLogLines and DefaultMaxOutputBytes.
	MaxLogLines    int
	MaxOutputBytes int
	// RunURL is a run's page (paved's operator page), written to the
	// entity as its lastRun; nil writes none.
	RunURL func(id string) string
}

func (t *Tracker) runURL(id string) string {
	if t.RunURL == nil {
		return ""
	}
	return t.RunURL(id)
}

// unjudgedSuccess says why a pipeline's success cannot count as the run's:
// a guarded run applies only a preview approved and judged apply in this
// dispatch, and a dry run must have previewed; a pipeline that posted no
// such preview (an older provisioning component, a custom one) may have
// applied what nobody approved.
func unjudgedSuccess(r *run.Run) string {
	switch v := r.Verdict(); {
	case r.Operation == run.Drift:
		return ""
	case r.DryRun && v != run.VerdictDryRun:
		return "the dry run's pipeline posted no preview (paved preview), so paved cannot tell what it did; update the provisioning component"
	case r.Guarded && (v != run.VerdictApply || r.ApprovedDigest == ""):
		return "a guarded run applies only an approved preview, and its pipeline ended without one (no paved preview judged apply); update the provisioning component"
	}
	return ""
}

// lifecycle are the entity writes of r's state (catalog.Status*), none
// when the run's action writes no entity or r is a dry run (which changes
// nothing).
func (t *Tracker) lifecycle(r *run.Run, status, reason string) []*run.EntityUpsert {
	a, ok := t.Catalog.Get(r.Request.Action)
	if !ok || r.DryRun || r.Operation == run.Drift {
		return nil
	}
	return a.LifecycleFor(r, status, reason, t.runURL(r.ID))
}

// Observation is what paved learned about a pipeline.
type Observation struct {
	RunID      string
	PipelineID int64
	Status     string // GitLab's pipeline status
	URL        string
	FailedJobs []string
}

// Outcome says what a piece of pipeline news did, for the webhook's answer.
type Outcome struct {
	Applied bool   // a run changed
	What    string // one sentence: what changed, or why nothing did
}

func ignored(format string, args ...any) Outcome {
	return Outcome{What: fmt.Sprintf(format, args...)}
}

func (t *Tracker) now() time.Time {
	if t.Now != nil {
		return t.Now().UTC()
	}
	return time.Now().UTC()
}

// Observe moves run o.RunID to match its pipeline's status, exactly as a
// hook would, whoever learnt the status (hook, poll, reconcile). Stale and
// repeated news changes nothing: a finished run stays finished.
func (t *Tracker) Observe(ctx context.Context, o Observation) (Outcome, error) {
	return t.update(ctx, o.RunID, o.PipelineID, o.Status, func(r *run.Run) (store.Change, error) { return t.apply(r, o) })
}

// update runs fn on a run in one transaction and says what it did.
func (t *Tracker) update(ctx context.Context, id string, pipeline int64, status string, fn func(*run.Run) (store.Change, error)) (Outcome, error) {
	changed, reported := false, false
	r, err := t.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		ch, err := fn(r)
		changed, reported = err == nil, err == nil && len(ch.Tasks) > 0
		return ch, err
	})
	if errors.Is(err, run.ErrNotFound) {
		return ignored("no paved run %s", id), nil
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("observe pipeline %d (%s) of run %s: %w", pipeline, status, id, err)
	}
	if reported && t.Reported != nil {
		t.Reported()
	}
	if !changed {
		return ignored("no change: run %s is %s and already knows pipeline #%d is %s (or the news is stale)", r.ID, r.State, pipeline, status), nil
	}
	return Outcome{Applied: true, What: fmt.Sprintf("run %s is %s (pipeline #%d %s)", r.ID, r.State, pipeline, status)}, nil
}

// apply moves r to match what GitLab says of its own pipeline o. Only news
// about the run's recorded pipeline counts; Adopt records one first.
func (t *Tracker) apply(r *run.Run, o Observation) (store.Change, error) {
	return t.applyTo(r, o, store.Change{})
}

func (t *Tracker) applyTo(r *run.Run, o Observation, ch store.Change) (store.Change, error) {
	noChange := func() (store.Change, error) {
		if len(ch.Events) > 0 || len(ch.Tasks) > 0 {
			return ch, nil
		}
		return ch, store.ErrNoChange
	}
	if r.PipelineID == 0 || r.PipelineID != o.PipelineID {
		return noChange()
	}
	if r.State.Terminal() {
		// A canceled or timed-out run keeps its stack until its pipeline
		// has wound down; record how the pipeline ends, nothing else.
		if o.Status == r.PipelineStatus || gitlab.Terminal(r.PipelineStatus) {
			return noChange()
		}
		r.PipelineStatus = o.Status
		ch.Add(fmt.Sprintf("pipeline #%d %s (the run had ended %s)", r.PipelineID, o.Status, r.State))
		return ch, nil
	}
	if r.State == run.AwaitingApproval && o.Status != r.PipelineStatus {
		// The preview's pipeline winds down while the run waits: its status
		// is kept, so a cancel knows whether it still holds the stack.
		r.PipelineStatus = o.Status
		ch.Add(fmt.Sprintf("pipeline #%d %s (the run awaits approval)", r.PipelineID, o.Status))
		return ch, nil
	}
	if r.State != run.Running {
		return noChange()
	}
	if r.PipelineURL == "" {
		r.PipelineURL = o.URL
	}
	if !gitlab.Terminal(o.Status) {
		if o.Status == r.PipelineStatus {
			return noChange()
		}
		r.PipelineStatus = o.Status
		ch.Add("pipeline " + o.Status)
		ch.Report(run.Report{StatusLabel: "Pipeline " + o.Status})
		return ch, nil
	}
	r.PipelineStatus = o.Status
	to := map[string]run.State{"success": run.Succeeded, "failed": run.Failed, "canceled": run.Canceled, "skipped": run.Canceled}[o.Status]
	unjudged := ""
	if to == run.Succeeded {
		if unjudged = unjudgedSuccess(r); unjudged != "" {
			to = run.Failed
		}
	}
	if err := r.MoveTo(to, t.now()); err != nil {
		return ch, err
	}
	ch.Add(fmt.Sprintf("pipeline #%d %s", r.PipelineID, o.Status))
	ch.Report(run.Report{Log: fmt.Sprintf("Pipeline #%d finished: %s", r.PipelineID, o.Status)})
	verdict := r.Verdict()
	if to != run.Succeeded {
		summary := fmt.Sprintf("Pipeline #%d %s", r.PipelineID, o.Status)
		if len(o.FailedJobs) > 0 {
			summary += " in job(s) " + strings.Join(o.FailedJobs, ", ")
		}
		summary += "; see " + r.PipelineURL
		label := "Pipeline " + o.Status
		if verdict == run.VerdictRefused || verdict == run.VerdictChanged {
			// Why the pipeline stopped is paved's own word on its preview.
			summary = strings.Join(r.Preview.Reasons, "; ") + " (" + summary + ")"
			label = map[string]string{run.VerdictRefused: "Refused by policy at preview", run.VerdictChanged: "Preview changed since approval"}[verdict]
		}
		if unjudged != "" {
			summary, label = unjudged+" (pipeline #"+fmt.Sprint(r.PipelineID)+" succeeded; see "+r.PipelineURL+")", "No judged preview"
		}
		r.Reasons = []string{summary}
		// The entity failed only if paved let the pipeline apply (or it
		// posted no preview, so paved cannot tell); a refused preview
		// changed nothing.
		if verdict == "" || verdict == run.VerdictApply {
			for _, e := range t.lifecycle(r, catalog.StatusFailed, summary) {
				ch.Report(run.Report{Entity: e})
			}
		}
		ch.Report(run.Report{Final: run.Failure, StatusLabel: label, Summary: summary, Link: r.PipelineURL})
		return ch, nil
	}
	if r.Operation == run.Drift {
		summary := fmt.Sprintf("Drift check of %s: no result posted (pipeline #%d)", r.Stack.Key(), r.PipelineID)
		if r.Preview != nil {
			summary = fmt.Sprintf("Drift check of %s: %s", r.Stack.Key(), catalog.DriftSummary(r.Preview))
			for _, ref := range r.ReportsOn {
				ch.Report(run.Report{Entity: catalog.DriftFor(&run.EntityUpsert{Blueprint: ref.Blueprint, Identifier: ref.Identifier}, r.Preview, t.now())})
			}
		}
		ch.Report(run.Report{Final: run.Success, StatusLabel: "Drift checked", Summary: summary, Link: r.PipelineURL})
		return ch, nil
	}
	if r.DryRun {
		// Nothing was applied: the entity stays as it is.
		summary := fmt.Sprintf("Dry run: nothing was applied. Pipeline #%d succeeded", r.PipelineID)
		label := "Dry run"
		if r.Preview != nil {
			summary = fmt.Sprintf("Dry run: the change would be %s; nothing was applied (pipeline #%d)", r.Preview.Label(), r.PipelineID)
			label += ": " + r.Preview.Label()
		}
		ch.Report(run.Report{Final: run.Success, StatusLabel: label, Summary: summary, Link: r.PipelineURL})
		return ch, nil
	}
	summary := fmt.Sprintf("Pipeline #%d succeeded", r.PipelineID)
	if r.Preview != nil {
		summary += ": applied " + r.Preview.LabelWithCost()
	}
	if r.TTL > 0 && r.Operation == run.Create {
		// The stack's time runs from when it is ready, not from the request.
		r.ExpiresAt = t.now().Add(r.TTL)
		ch.Add(fmt.Sprintf("the stack is ephemeral: it expires at %s", r.ExpiresAt.Format(time.RFC3339)))
		summary += fmt.Sprintf("; the stack expires at %s", r.ExpiresAt.Format(time.RFC3339))
	}
	if a, ok := t.Catalog.Get(r.Request.Action); ok {
		if r.Operation == run.Delete {
			// The stack is gone: its own entities are marked destroyed, or
			// deleted where the action says so.
			n := 0
			for _, e := range a.LifecycleFor(r, catalog.StatusAfter(r.Operation, true), "", t.runURL(r.ID)) {
				if a.DeleteDestroyed {
					ch.Report(run.Report{Delete: &run.EntityRef{Blueprint: e.Blueprint, Identifier: e.Identifier}})
				} else {
					catalog.AddCost(e, r.Preview)
					ch.Report(run.Report{Entity: e})
				}
				n++
			}
			if n > 0 {
				summary += fmt.Sprintf("; %d entities %s", n, map[bool]string{true: "deleted from the catalog", false: "marked destroyed"}[a.DeleteDestroyed])
			}
		} else if e := a.EntityWithLifecycle(r, catalog.StatusAfter(r.Operation, true), "", t.runURL(r.ID)); e != nil {
			// An ephemeral stack's expiry goes onto its own entities, which
			// the expiry scheduler tells apart from shared ones (this one may
			// be a service's, shared by its environments).
			catalog.AddCost(e, r.Preview)
			ch.Report(run.Report{Entity: e, Log: fmt.Sprintf("Wrote %s %q to the catalog", e.Blueprint, e.Identifier)})
			summary += fmt.Sprintf("; %s %s is up to date", e.Blueprint, e.Identifier)
		}
	}
	ch.Report(run.Report{Final: run.Success, StatusLabel: "Done", Summary: summary, Link: r.PipelineURL})
	return ch, nil
}
