// Package engine is gitlabsim's model of what GitLab does with pipelines,
// apart from the API around it: the projects, the name each pipeline gets
// from its project's workflow:name, and each pipeline's life from created
// through pending and running to success, failed or canceled, on timers,
// with the job played while it runs. Package gitlabsim serves the REST API
// and the webhooks over it.
package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/paved-idp/paved/internal/sim/gitlabsim/wire"
)

// DefaultWorkflowName is the workflow:name of paved's provisioning
// component (deploy/gitlab/templates/provision.yml).
const DefaultWorkflowName = "paved $PAVED_RUN_ID"

// ErrNameTooLong: the workflow:name came out longer than
// MaxNameLength. GitLab then fails the pipeline unsaved.
var ErrNameTooLong = errors.New("pipeline name too long")

// Outcome is how a pipeline will end and how long each phase lasts.
type Outcome struct {
	Status  string        // success (default), failed or canceled
	Created time.Duration // time spent in "created"
	Pending time.Duration // time spent in "pending"
	Running time.Duration // minimum time spent in "running" (Job may take longer)
}

// Config sets an Engine up.
type Config struct {
	// Projects, when set, are the only projects that exist (AddProject
	// aside); otherwise any project is created on first use.
	Projects []wire.Project
	// WebURL is the GitLab web root of web_url fields; "" uses each
	// pipeline's Spec.WebRoot.
	WebURL string
	// WorkflowName is the workflow:name of projects that set none of their
	// own; "" means DefaultWorkflowName. NoWorkflowName makes it none.
	WorkflowName   string
	NoWorkflowName bool
	// Decide picks each pipeline's fate when Spec.Outcome does not; required.
	Decide func(wire.Pipeline) Outcome
	// Job plays a running pipeline's job when Spec.RunJob; an error fails
	// the pipeline. ctx ends when the pipeline is canceled or the engine closes.
	Job func(ctx context.Context, p wire.Pipeline) error
	// Changed is told of every new pipeline and every status change, with
	// the pipeline's snapshot, its web root and its Spec.Quiet: in order,
	// under the engine's lock, so it must not call the Engine.
	Changed func(p wire.Pipeline, webRoot string, quiet bool)
}

// Spec is a pipeline to create.
type Spec struct {
	Project   wire.Project
	Ref       string
	Source    string
	WebRoot   string // the web root the request came in by
	Variables []wire.Variable
	Outcome   *Outcome // nil: Config.Decide
	RunJob    bool     // Config.Job plays the pipeline's job
	Quiet     bool     // passed on to Config.Changed: announce no changes
}

// Engine holds the simulated projects and pipelines.
type Engine struct {
	cfg  Config
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu        sync.Mutex
	projects  *wire.Projects
	pipelines map[int64]*pipeline
	nextID    int64
	nextJobID int64
	iids      map[int64]int64
	// changed is closed (and replaced) whenever a pipeline is created or
	// changes status, waking Wait.
	changed chan struct{}
}

type pipeline struct {
	wire.Pipeline
	webRoot string
	quiet   bool
	cancel  context.CancelFunc // ends the lifecycle goroutine and the Job
}

// New returns an engine; Close stops its timers and jobs.
func New(cfg Config) *Engine {
	ctx, stop := context.WithCancel(context.Background())
	return &Engine{
		cfg: cfg, ctx: ctx, stop: stop,
		projects:  wire.NewProjects(cfg.Projects),
		pipelines: map[int64]*pipeline{},
		nextID:    100,
		nextJobID: 5000,
		iids:      map[int64]int64{},
		changed:   make(chan struct{}),
	}
}

// Close stops every pipeline timer and running Job and waits for them.
func (e *Engine) Close() {
	e.stop()
	e.wg.Wait()
}

// Project resolves a project id or path (creating it when projects are
// not fixed).
func (e *Engine) Project(idOrPath string) (wire.Project, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.projects.Lookup(idOrPath)
	if !ok {
		return wire.Project{}, false
	}
	return *p, true
}

// AddProject makes p exist; its id and path must be new.
func (e *Engine) AddProject(p wire.Project) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.projects.Add(p); err != nil {
		return fmt.Errorf("add project: %w", err)
	}
	return nil
}

// Get returns pipeline id's snapshot and web root.
func (e *Engine) Get(id int64) (wire.Pipeline, string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.pipelines[id]
	if !ok {
		return wire.Pipeline{}, "", false
	}
	return p.snapshot(), p.webRoot, true
}

// Select returns the pipelines keep accepts, by id, with their web roots.
func (e *Engine) Select(keep func(wire.Pipeline) bool) ([]wire.Pipeline, map[int64]string) {
	e.mu.Lock()
	var list []wire.Pipeline
	roots := map[int64]string{}
	for _, p := range e.pipelines {
		if keep(p.Pipeline) {
			list = append(list, p.snapshot())
			roots[p.ID] = p.webRoot
		}
	}
	e.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	return list, roots
}

// Cancel cancels pipeline id unless it has finished; it reports whether it did.
func (e *Engine) Cancel(id int64) bool { return e.transition(id, wire.StatusCanceled, "") }

// Wait blocks until pipeline id exists and cond holds for it, and returns
// that snapshot; it fails only when ctx ends.
func (e *Engine) Wait(ctx context.Context, id int64, cond func(wire.Pipeline) bool) (wire.Pipeline, error) {
	for {
		e.mu.Lock()
		p, ok := e.pipelines[id]
		var snap wire.Pipeline
		if ok {
			snap = p.snapshot()
		}
		changed := e.changed
		e.mu.Unlock()
		if ok && cond(snap) {
			return snap, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return snap, fmt.Errorf("wait for pipeline %d: %w", id, ctx.Err())
		}
	}
}

func (p *pipeline) snapshot() wire.Pipeline {
	c := p.Pipeline
	c.Variables = append([]wire.Variable(nil), p.Variables...)
	return c
}
