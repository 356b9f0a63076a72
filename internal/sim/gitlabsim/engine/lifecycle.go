package engine

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/paved-idp/paved/internal/sim/gitlabsim/wire"
)

// workflowNameLocked is the workflow:name of proj's configuration, "" for none.
func (e *Engine) workflowNameLocked(proj wire.Project) string {
	switch {
	case proj.NoWorkflowName:
		return ""
	case proj.WorkflowName != "":
		return proj.WorkflowName
	case e.cfg.NoWorkflowName:
		return ""
	case e.cfg.WorkflowName != "":
		return e.cfg.WorkflowName
	}
	return DefaultWorkflowName
}

// pipelineName expands template as GitLab does when it creates a pipeline:
// the pipeline's variables win over the predefined ones they shadow.
func pipelineName(template string, proj wire.Project, ref, sha, source string, vars []wire.Variable) string {
	if template == "" {
		return ""
	}
	all := map[string]string{
		"CI_PIPELINE_SOURCE": source, "CI_COMMIT_REF_NAME": ref, "CI_COMMIT_BRANCH": ref, "CI_COMMIT_SHA": sha,
		"CI_PROJECT_ID": strconv.FormatInt(proj.ID, 10), "CI_PROJECT_PATH": proj.Path, "CI_DEFAULT_BRANCH": proj.DefaultBranch,
	}
	for _, v := range vars {
		all[v.Key] = v.Value
	}
	return ExpandName(template, all)
}

// changedLocked tells Config.Changed of p's new state and wakes every
// Wait; the caller holds e.mu, so each change yields exactly one snapshot.
func (e *Engine) changedLocked(p *pipeline) {
	if e.cfg.Changed != nil {
		e.cfg.Changed(p.snapshot(), p.webRoot, p.quiet)
	}
	close(e.changed)
	e.changed = make(chan struct{})
}

// Create records a new pipeline, tells Config.Changed, and starts its
// lifecycle. It fails with ErrNameTooLong, saving nothing, when the
// workflow:name makes too long a name.
func (e *Engine) Create(np Spec) (wire.Pipeline, error) {
	now := time.Now().UTC()
	sha := fakeSHA(np.Project.Path, np.Ref)
	e.mu.Lock()
	name := pipelineName(e.workflowNameLocked(np.Project), np.Project, np.Ref, sha, np.Source, np.Variables)
	if utf8.RuneCountInString(name) > MaxNameLength {
		e.mu.Unlock()
		return wire.Pipeline{}, ErrNameTooLong
	}
	e.nextID++
	e.nextJobID++
	e.iids[np.Project.ID]++
	webRoot := np.WebRoot
	if e.cfg.WebURL != "" {
		webRoot = e.cfg.WebURL
	}
	p := &pipeline{webRoot: webRoot, quiet: np.Quiet}
	p.Pipeline = wire.Pipeline{
		ID: e.nextID, IID: e.iids[np.Project.ID], ProjectID: np.Project.ID, ProjectPath: np.Project.Path,
		Ref: np.Ref, SHA: sha, Source: np.Source, Name: name, Status: wire.StatusCreated,
		Variables: np.Variables, CreatedAt: now, UpdatedAt: now,
		Job: wire.Job{ID: e.nextJobID, Name: "provision", Stage: "deploy", Status: wire.StatusCreated, CreatedAt: now},
	}
	p.WebURL = webRoot + "/" + np.Project.Path + "/-/pipelines/" + strconv.FormatInt(p.ID, 10)
	ctx, cancel := context.WithCancel(e.ctx)
	p.cancel = cancel
	e.pipelines[p.ID] = p
	snap := p.snapshot()
	e.changedLocked(p)
	e.mu.Unlock()

	var out Outcome
	if np.Outcome != nil {
		out = *np.Outcome
	} else {
		out = e.cfg.Decide(snap)
	}
	e.wg.Add(1)
	go e.drive(ctx, p.ID, out, np.RunJob)
	return snap, nil
}

// drive moves one pipeline through its statuses until it ends, is canceled
// or the engine closes.
func (e *Engine) drive(ctx context.Context, id int64, out Outcome, runJob bool) {
	defer e.wg.Done()
	if !sleep(ctx, out.Created) || !e.transition(id, wire.StatusPending, "") {
		return
	}
	if !sleep(ctx, out.Pending) || !e.transition(id, wire.StatusRunning, "") {
		return
	}
	var jobErr error
	done := make(chan struct{})
	if e.cfg.Job != nil && runJob {
		snap, _, _ := e.Get(id)
		go func() {
			defer close(done)
			jobErr = e.cfg.Job(ctx, snap)
		}()
	} else {
		close(done)
	}
	timerOK := sleep(ctx, out.Running)
	<-done // the Job sees ctx too, so this ends promptly on cancel or Close
	if !timerOK || ctx.Err() != nil {
		return
	}
	final, reason := out.Status, ""
	switch {
	case jobErr != nil:
		final, reason = wire.StatusFailed, "script_failure"
	case final == wire.StatusFailed:
		reason = "script_failure"
	case final == wire.StatusCanceled:
	default:
		final = wire.StatusSuccess
	}
	e.transition(id, final, reason)
}

// transition moves a pipeline (and its job) to status unless it is already
// terminal, and queues a hook. It reports whether the move happened.
func (e *Engine) transition(id int64, status, failureReason string) bool {
	now := time.Now().UTC()
	e.mu.Lock()
	p, ok := e.pipelines[id]
	if !ok || wire.Terminal(p.Status) {
		e.mu.Unlock()
		return false
	}
	p.Status, p.UpdatedAt = status, now
	p.Job.Status = status
	switch {
	case status == wire.StatusRunning:
		p.StartedAt, p.Job.StartedAt = now, now
	case wire.Terminal(status):
		p.FinishedAt, p.Job.FinishedAt = now, now
		p.Job.FailureReason = failureReason
		p.cancel()
	}
	e.changedLocked(p)
	e.mu.Unlock()
	return true
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func fakeSHA(path, ref string) string {
	h := sha1.Sum([]byte(path + "@" + ref))
	return hex.EncodeToString(h[:])
}
