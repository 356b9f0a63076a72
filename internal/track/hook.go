package track

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/gitlab/pipelinehook"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// HandleHook applies a GitLab pipeline webhook. A hook is evidence only
// about its own project and pipeline: group webhooks deliver every
// project's events, and anyone who can run a pipeline can set PAVED_RUN_ID.
// So it moves a run only when it names the run's project and the run's
// recorded pipeline. For a run whose pipeline is not known yet, the hook's
// word is not taken: paved reads the pipeline from the run's project in
// GitLab and adopts it only if it is on the run's ref and is the run's, by
// the name paved's component gives it ("paved <run id>", one request) or,
// for a pipeline without that name, by its PAVED_RUN_ID (see
// gitlab.Client.PipelineOfRun). Everything else is ignored, with the reason.
func (t *Tracker) HandleHook(ctx context.Context, ev pipelinehook.Event) (Outcome, error) {
	r, err := t.runOfHook(ctx, ev)
	if errors.Is(err, run.ErrNotFound) {
		return ignored("pipeline #%d of project %s is not a paved run's", ev.PipelineID, hookProject(ev)), nil
	}
	if err != nil {
		return Outcome{}, err
	}
	if !sameProject(r, ev) {
		return ignored("pipeline #%d is in project %s, not in run %s's project %s", ev.PipelineID, hookProject(ev), r.ID, r.Project), nil
	}
	if r.PipelineID != 0 {
		if r.PipelineID != ev.PipelineID {
			return ignored("pipeline #%d is not run %s's pipeline (#%d)", ev.PipelineID, r.ID, r.PipelineID), nil
		}
		o := Observation{RunID: r.ID, PipelineID: ev.PipelineID, Status: ev.Status, URL: ev.URL}
		for _, b := range ev.Builds {
			if b.Status == "failed" {
				o.FailedJobs = append(o.FailedJobs, b.Name)
			}
		}
		sort.Strings(o.FailedJobs)
		return t.Observe(ctx, o)
	}
	if r.State != run.Dispatching {
		return ignored("run %s has no pipeline and is %s, not starting one", r.ID, r.State), nil
	}
	// The hook beat the dispatcher's record of the trigger answer (or the
	// answer was lost): ask GitLab, in the run's project.
	p, err := t.Pipelines.PipelineOfRun(ctx, r.Project, ev.PipelineID)
	if gitlab.IsNotFound(err) {
		return ignored("GitLab has no pipeline #%d in run %s's project %s", ev.PipelineID, r.ID, r.Project), nil
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("verify pipeline %d for run %s: %w", ev.PipelineID, r.ID, err)
	}
	switch {
	case p.RunID != r.ID && p.RunIDFromName:
		return ignored("pipeline #%d in %s is named %q, not after run %s", p.ID, r.Project, p.Name, r.ID), nil
	case p.RunID != r.ID:
		return ignored("pipeline #%d in %s carries %s %q, not run %s", p.ID, r.Project, gitlab.RunIDVariable, p.RunID, r.ID), nil
	case p.Ref != r.Ref:
		return ignored("pipeline #%d runs on ref %q, run %s on %q", p.ID, p.Ref, r.ID, r.Ref), nil
	}
	how := "pipeline reported by GitLab before the trigger answer was recorded (its " + gitlab.RunIDVariable + " names the run)"
	if p.RunIDFromName {
		how = fmt.Sprintf("pipeline reported by GitLab before the trigger answer was recorded (named %q)", p.Name)
	}
	return t.update(ctx, r.ID, p.ID, p.Status, func(r *run.Run) (store.Change, error) {
		return t.Adopt(r, p, how)
	})
}

// runOfHook finds the run a hook names by PAVED_RUN_ID, or else the one
// that recorded its pipeline.
func (t *Tracker) runOfHook(ctx context.Context, ev pipelinehook.Event) (*run.Run, error) {
	if id := ev.Variables[gitlab.RunIDVariable]; id != "" {
		return t.Store.Run(ctx, id)
	}
	return t.Store.RunByPipeline(ctx, ev.PipelineID)
}

// sameProject reports whether the hook's project is the run's: by numeric
// id once paved has learnt it from GitLab, else by the configured project
// (an id or a path, which GitLab matches case-insensitively).
func sameProject(r *run.Run, ev pipelinehook.Event) bool {
	if r.ProjectID != 0 {
		return ev.ProjectID == r.ProjectID
	}
	if id, err := strconv.ParseInt(r.Project, 10, 64); err == nil {
		return ev.ProjectID == id
	}
	return ev.ProjectPath != "" && strings.EqualFold(ev.ProjectPath, r.Project)
}

func hookProject(ev pipelinehook.Event) string {
	if ev.ProjectPath != "" {
		return fmt.Sprintf("%s (id %d)", ev.ProjectPath, ev.ProjectID)
	}
	return fmt.Sprintf("id %d", ev.ProjectID)
}
