package track

import (
	"fmt"

	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Adopt records p as r's pipeline and applies p's status exactly as a hook
// would, in the caller's transaction: a pipeline that had already finished
// when paved found it finishes the run at once. p must be GitLab's own word
// (read from the run's project), never a hook's. A pipeline that is not the
// run's — a second one made in a race, or one that landed after the run
// ended — is canceled, never left running unwatched. how says how paved
// found it, for the audit trail.
func (t *Tracker) Adopt(r *run.Run, p gitlab.Pipeline, how string) (store.Change, error) {
	var ch store.Change
	switch {
	case p.ID <= r.PreviewPipelineID:
		// The pipeline that previewed the run before its approval, whose
		// news may come late: not the apply pipeline; it ends by itself.
		return ch, store.ErrNoChange
	case r.PipelineID == p.ID:
		// Already recorded (another path came first); its status still counts.
		return t.apply(r, Observation{RunID: r.ID, PipelineID: p.ID, Status: p.Status, URL: p.WebURL})
	case r.PipelineID != 0:
		ch.Add(fmt.Sprintf("pipeline #%d duplicates the run's pipeline #%d; canceling it", p.ID, r.PipelineID))
		ch.Tasks = append(ch.Tasks, store.CancelTask(p.ID))
		return ch, nil
	case r.State != run.Dispatching:
		r.PipelineID, r.PipelineURL, r.PipelineStatus = p.ID, p.WebURL, p.Status
		if p.ProjectID != 0 {
			r.ProjectID = p.ProjectID
		}
		if gitlab.Terminal(p.Status) {
			ch.Add(fmt.Sprintf("pipeline #%d had started after the run ended (%s); it is %s", p.ID, r.State, p.Status))
			return ch, nil
		}
		ch.Add(fmt.Sprintf("pipeline #%d started after the run ended (%s); canceling it", p.ID, r.State))
		ch.Tasks = append(ch.Tasks, store.CancelTask(p.ID))
		return ch, nil
	}
	if err := r.MoveTo(run.Running, t.now()); err != nil {
		return ch, err
	}
	r.PipelineID, r.PipelineURL = p.ID, p.WebURL
	if p.ProjectID != 0 {
		r.ProjectID = p.ProjectID
	}
	ch.Add(fmt.Sprintf("%s: #%d %s", how, p.ID, p.WebURL))
	started := run.Report{Link: p.WebURL, Log: fmt.Sprintf("Pipeline #%d started: %s", p.ID, p.WebURL)}

	if !gitlab.Terminal(p.Status) {
		r.PipelineStatus = p.Status
		started.StatusLabel = "Pipeline " + p.Status
		ch.Report(started)
		return ch, nil
	}
	ch.Report(started)
	return t.applyTo(r, Observation{RunID: r.ID, PipelineID: p.ID, Status: p.Status, URL: p.WebURL}, ch)
}
