package gitlabsim

import (
	"context"
	"errors"
	"fmt"

	"github.com/paved-idp/paved/internal/sim/gitlabsim/engine"
	"github.com/paved-idp/paved/internal/sim/gitlabsim/webhook"
)

// NewPipeline describes a pipeline for CreatePipeline.
type NewPipeline struct {
	// Project is the project's id or path. With Config.Projects empty an
	// unknown one is created on first use; otherwise it must exist (see
	// AddProject).
	Project string
	// Ref defaults to the project's default branch.
	Ref string
	// Variables are the pipeline's variables; an empty VariableType means
	// env_var.
	Variables []Variable
	// Source defaults to "api", what POST /projects/:id/pipeline makes.
	Source string
	// Outcome, when set, replaces Config.Decide for this pipeline.
	Outcome *Outcome
	// RunJob makes Config.Job play this pipeline's job, as it does for every
	// pipeline created through the API. It is off by default: a foreign
	// project runs its own CI configuration, not paved's provisioning job.
	RunJob bool
	// NoHooks keeps the pipeline's status changes from posting hooks, so
	// that the only hooks of it are the ones DeliverHook posts.
	NoHooks bool
}

// AddProject makes p exist, also when Config.Projects fixed the set of
// projects: a second, foreign project next to paved's own, say
// Project{ID: 999, Path: "someone/else"}. Its id and path must be new.
func (s *Sim) AddProject(p Project) error {
	if err := s.engine.AddProject(p); err != nil {
		return fmt.Errorf("gitlabsim: %w", err)
	}
	return nil
}

// CreatePipeline creates a pipeline as if someone had started it in
// GitLab, without an API request: no fault injection, no CreateCalls count,
// and no Job unless np.RunJob. Otherwise it is a pipeline like any other:
// named from its project's workflow:name, driven through its statuses by
// np.Outcome or Config.Decide, listed by the API, and (unless np.NoHooks)
// announced by hooks to the hook URL like every project's pipelines, as a
// group webhook would announce them. Tests use it for pipelines paved must
// not adopt or believe, e.g. one in a foreign project carrying another
// run's PAVED_RUN_ID.
func (s *Sim) CreatePipeline(np NewPipeline) (Pipeline, error) {
	source := np.Source
	if source == "" {
		source = "api"
	}
	if !IsSource(source) {
		return Pipeline{}, fmt.Errorf("gitlabsim: create pipeline: unknown source %q", source)
	}
	s.mu.Lock()
	root := s.lastRoot
	s.mu.Unlock()
	proj, ok := s.engine.Project(np.Project)
	if !ok {
		return Pipeline{}, fmt.Errorf("gitlabsim: create pipeline: project %q not found", np.Project)
	}
	ref := np.Ref
	if ref == "" {
		ref = proj.DefaultBranch
	}
	vars := make([]Variable, 0, len(np.Variables))
	for _, v := range np.Variables {
		if v.VariableType == "" {
			v.VariableType = "env_var"
		}
		vars = append(vars, v)
	}
	p, err := s.engine.Create(engine.Spec{Project: proj, Ref: ref, Source: source, WebRoot: root,
		Variables: vars, Outcome: np.Outcome, RunJob: np.RunJob, Quiet: np.NoHooks})
	if err != nil {
		return Pipeline{}, fmt.Errorf("gitlabsim: create pipeline in %s: %w", proj.Path, err)
	}
	return p, nil
}

// HookBody is the Pipeline Hook body of pipeline id in its current status,
// for a test that replays or forges a delivery (see webhook.Post).
func (s *Sim) HookBody(id int64) ([]byte, bool) {
	p, root, ok := s.engine.Get(id)
	if !ok {
		return nil, false
	}
	return webhook.Body(p, root), true
}

// DeliverHook posts the Pipeline Hook of pipeline id in its current status
// to the hook URL now, and returns once the receiver has answered: nil for
// a 2xx, else why not. Unlike the hooks queued on every status change it
// bypasses fault injection, the queue and retries, so a test knows its hook
// has been handled when DeliverHook returns. Hooks records it.
func (s *Sim) DeliverHook(ctx context.Context, id int64) error {
	p, root, ok := s.engine.Get(id)
	if !ok {
		return fmt.Errorf("gitlabsim: deliver hook: no pipeline %d", id)
	}
	s.mu.Lock()
	url, token := s.hookURL, s.hookToken
	if url == "" {
		s.mu.Unlock()
		return errors.New("gitlabsim: deliver hook: no hook URL")
	}
	body := webhook.Body(p, root)
	d := HookDelivery{PipelineID: id, Status: p.Status, EventUUID: webhook.NewUUID()}
	idx := len(s.hooks)
	s.hooks = append(s.hooks, d)
	s.mu.Unlock()

	err := webhook.Post(ctx, s.cfg.HookClient, url, token, d.EventUUID, body)
	s.hookAttempted(webhook.Job{Index: idx}, err)
	if err != nil {
		return fmt.Errorf("gitlabsim: deliver hook of pipeline %d: %w", id, err)
	}
	return nil
}

// WaitPipeline blocks until pipeline id exists and cond holds for it, and
// returns that snapshot; it fails only when ctx ends. Tests synchronise on
// the simulator with it instead of sleeping.
func (s *Sim) WaitPipeline(ctx context.Context, id int64, cond func(Pipeline) bool) (Pipeline, error) {
	p, err := s.engine.Wait(ctx, id, cond)
	if err != nil {
		return p, fmt.Errorf("gitlabsim: %w", err)
	}
	return p, nil
}
