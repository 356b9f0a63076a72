// Package gitlabsim is an in-process simulator of the parts of GitLab's REST
// API v4 and pipeline webhooks that paved uses. It follows GitLab's public
// documentation (doc/api/pipelines.md, doc/api/rest/*, webhook_events.md
// "Pipeline events") field by field, so that paved's tests and `paved demo`
// exercise the real wire format rather than whatever paved happens to send.
//
// Projects: when Config.Projects is empty, any project id or path is created
// on first use (numeric ids get the path "sim/project-<id>"); when it lists
// projects, every other project answers 404 "Project Not Found". AddProject
// adds one later, e.g. a foreign project next to paved's own.
//
// Names: every pipeline gets the name GitLab computes from its project's
// workflow:name (Project.WorkflowName, else Config.WorkflowName, else
// DefaultWorkflowName, the provisioning component's "paved $PAVED_RUN_ID"),
// with $VAR, ${VAR} and %VAR% expanded from the pipeline's variables and a
// few predefined CI_* variables; a project with NoWorkflowName names none.
//
// Foreign pipelines: CreatePipeline makes a pipeline without an API request
// (someone else's pipeline, in any project, with any variables); hooks of
// every project's pipelines go to the one hook URL, as a group webhook's
// would, and DeliverHook posts a pipeline's hook now and reports the answer.
//
// Each pipeline moves created → pending → running → success|failed|canceled on
// timers chosen by Config.Decide, runs Config.Job while running, and posts a
// "Pipeline Hook" on every status change (package engine keeps the projects
// and pipelines; this package serves the API and hooks over it). Tests wait
// for a pipeline's state with WaitPipeline rather than sleeping. Faults
// (5xx, 429, latency, dropped hooks, lost create responses) are drawn from a
// seeded math/rand/v2 source.
package gitlabsim

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/paved-idp/paved/internal/sim/gitlabsim/engine"
	"github.com/paved-idp/paved/internal/sim/gitlabsim/webhook"
	"github.com/paved-idp/paved/internal/sim/gitlabsim/wire"
)

// RunIDVariable is the pipeline variable paved uses to find its pipelines.
const RunIDVariable = "PAVED_RUN_ID"

// Pipeline statuses the simulator produces (a subset of GitLab's).
const (
	StatusCreated  = wire.StatusCreated
	StatusPending  = wire.StatusPending
	StatusRunning  = wire.StatusRunning
	StatusSuccess  = wire.StatusSuccess
	StatusFailed   = wire.StatusFailed
	StatusCanceled = wire.StatusCanceled
)

// Config sets the simulator up. The zero value works: any non-empty token is
// accepted, projects are auto-created, pipelines succeed after ~30 ms, and no
// hooks are sent.
type Config struct {
	// Token is the accepted PRIVATE-TOKEN / Bearer token; empty accepts any
	// non-empty token (a missing one is still 401).
	Token string
	// TriggerToken is the accepted `token` of POST /trigger/pipeline; empty
	// accepts any non-empty token.
	TriggerToken string
	// WebURL is the GitLab web root used in web_url fields; empty means
	// "http://" + the Host of the creating request.
	WebURL string
	// Projects, when set, are the only projects that exist.
	Projects []Project
	// Decide picks each pipeline's fate when it is created; nil uses
	// DefaultDecide.
	Decide func(p Pipeline) Outcome
	// Job runs while a pipeline is running (the demo plays the provisioning
	// job here). An error fails the pipeline with failure_reason
	// script_failure. ctx ends when the pipeline is canceled or the
	// simulator closes.
	Job func(ctx context.Context, p Pipeline) error
	// HookURL receives Pipeline Hooks; empty sends none. HookToken is sent as
	// X-Gitlab-Token.
	HookURL, HookToken string
	// HookClient posts hooks; nil uses a client with a 5 s timeout.
	HookClient *http.Client
	// HookRetries is how many times a failed delivery is retried (default 2;
	// negative means none). GitLab itself guarantees no delivery.
	HookRetries int
	// WorkflowName is the workflow:name of projects that do not set their
	// own; "" means DefaultWorkflowName.
	WorkflowName string
	// NoWorkflowName gives projects that do not set their own workflow:name
	// none at all, as when their configuration lacks paved's component: their
	// pipelines' name is null.
	NoWorkflowName bool
	// Seed makes fault injection deterministic.
	Seed uint64
	// Faults to inject from the start; see SetFaults.
	Faults Faults
}

// Project is one simulated GitLab project.
type Project = wire.Project

// DefaultWorkflowName is the workflow:name of paved's provisioning
// component (deploy/gitlab/templates/provision.yml).
const DefaultWorkflowName = engine.DefaultWorkflowName

// ExpandName is the name GitLab gives a pipeline whose configuration has
// workflow:name template and whose variables are vars ("" for none).
func ExpandName(template string, vars map[string]string) string {
	return engine.ExpandName(template, vars)
}

// IsSource reports whether s is one of GitLab's documented pipeline sources.
func IsSource(s string) bool { return wire.IsSource(s) }

// Outcome is how a pipeline will end and how long each phase lasts.
type Outcome = engine.Outcome

// DefaultDecide lets every pipeline succeed after 5 ms created, 10 ms
// pending and 15 ms running.
func DefaultDecide(Pipeline) Outcome {
	return Outcome{Status: StatusSuccess, Created: 5 * time.Millisecond, Pending: 10 * time.Millisecond, Running: 15 * time.Millisecond}
}

// Faults are injected into API requests and hook deliveries. Rates are
// fractions in [0, 1].
type Faults struct {
	ServerErrorRate float64       // requests answered 500
	RateLimitRate   float64       // requests answered 429 with RateLimit-Reset / Retry-After
	RateLimitReset  time.Duration // how far ahead the 429 reset lies (default 1 s, whole seconds)
	Latency         time.Duration // added before every API answer
	// SlowRate is the fraction of API requests held for SlowLatency before
	// they are handled: set it past the client's timeout to make calls time out.
	SlowRate     float64
	SlowLatency  time.Duration
	HookDropRate float64 // hooks never sent
	// LostCreateRate is the fraction of pipeline creations that succeed but
	// answer 502, as when a proxy times out: the case exactly-once must survive.
	LostCreateRate float64
}

// Variable is one pipeline variable.
type Variable = wire.Variable

// Pipeline is a snapshot of one simulated pipeline.
type Pipeline = wire.Pipeline

// Job is the pipeline's single build, "provision" in stage "deploy".
type Job = wire.Job

// HookDelivery records one Pipeline Hook the simulator meant to send.
type HookDelivery = webhook.Delivery

// Stats counts what the simulator has seen.
type Stats struct {
	Requests      int // API requests, including faulted ones
	CreateCalls   int // requests to the create and trigger endpoints
	ServerErrors  int // injected 5xx (including lost creates)
	RateLimited   int // injected 429
	Unauthorized  int
	HooksSent     int
	HooksDropped  int
	HooksFailed   int // given up after retries
	PipelinesMade int
}

// Terminal reports whether a status is final.
func Terminal(status string) bool { return wire.Terminal(status) }

// Sim is the simulator; it is an http.Handler serving /api/v4.
type Sim struct {
	cfg    Config
	engine *engine.Engine // the projects and pipelines
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	sender *webhook.Sender // delivers hooks one at a time, in order

	// mu guards what follows. Lock order: the engine's lock, then mu
	// (pipelineChanged runs under the former), so no code calls the engine
	// while it holds mu.
	mu        sync.Mutex
	rng       *rand.Rand
	faults    Faults
	hookURL   string
	hookToken string
	hooks     []HookDelivery
	stats     Stats
	// lastRoot is the web root of the latest API request, for pipelines
	// CreatePipeline makes without one.
	lastRoot string
}

// New starts a simulator. Call Close to stop its timers and hook sender.
func New(cfg Config) *Sim {
	if cfg.Decide == nil {
		cfg.Decide = DefaultDecide
	}
	if cfg.HookClient == nil {
		cfg.HookClient = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.HookRetries == 0 {
		cfg.HookRetries = 2
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Sim{
		cfg: cfg, ctx: ctx, stop: stop,
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		faults:    cfg.Faults,
		hookURL:   cfg.HookURL,
		hookToken: cfg.HookToken,
		lastRoot:  "http://gitlab.example.com",
	}
	s.engine = engine.New(engine.Config{
		Projects: cfg.Projects, WebURL: cfg.WebURL,
		WorkflowName: cfg.WorkflowName, NoWorkflowName: cfg.NoWorkflowName,
		Decide: cfg.Decide, Job: cfg.Job, Changed: s.pipelineChanged,
	})
	s.sender = webhook.NewSender(cfg.HookClient, cfg.HookRetries, 4096, s.hookAttempted,
		func(webhook.Job) { s.count(func(st *Stats) { st.HooksFailed++ }) })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sender.Run(ctx)
	}()
	return s
}

// Close stops every pipeline timer, running Job and pending hook, and waits
// for the simulator's goroutines to end.
func (s *Sim) Close() {
	s.engine.Close()
	s.stop()
	s.wg.Wait()
}

// SetFaults replaces the injected faults.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// SetHook points pipeline hooks at url with the secret token (the demo only
// knows paved's address after it starts).
func (s *Sim) SetHook(url, token string) {
	s.mu.Lock()
	s.hookURL, s.hookToken = url, token
	s.mu.Unlock()
}

// Pipelines returns snapshots of all pipelines, oldest first.
func (s *Sim) Pipelines() []Pipeline {
	list, _ := s.engine.Select(func(Pipeline) bool { return true })
	return list
}

// Pipeline returns one pipeline's snapshot.
func (s *Sim) Pipeline(id int64) (Pipeline, bool) {
	p, _, ok := s.engine.Get(id)
	return p, ok
}

// CreateCalls counts requests to the create and trigger endpoints, whether
// or not they created a pipeline.
func (s *Sim) CreateCalls() int { return s.Stats().CreateCalls }

// CountByRunID counts pipelines whose PAVED_RUN_ID variable equals runID.
func (s *Sim) CountByRunID(runID string) int { return s.RunIDCounts()[runID] }

// RunIDCounts maps each PAVED_RUN_ID value to its number of pipelines; an
// exactly-once test asserts every count is 1.
func (s *Sim) RunIDCounts() map[string]int {
	out := map[string]int{}
	for _, p := range s.Pipelines() {
		if v, ok := p.Var(RunIDVariable); ok {
			out[v]++
		}
	}
	return out
}

// Hooks returns the hook deliveries so far, in the order they were queued.
func (s *Sim) Hooks() []HookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]HookDelivery(nil), s.hooks...)
}

// Stats returns the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
