// Package gitlabsim is an in-process simulator of the parts of GitLab's REST
// API v4 and pipeline webhooks that paved uses. It follows GitLab's public
// documentation (doc/api/pipelines.md, doc/api/rest/*, webhook_events.md
// "Pipeline events") field by field, so that paved's tests and `paved demo`
// exercise the real wire format rather than whatever paved happens to send.
//
// Projects: when Config.Projects is empty, any project id or path is created
// on first use (numeric ids get the path "sim/project-<id>"); when it lists
// projects, every other project answers 404 "Project Not Found".
//
// Each pipeline moves created → pending → running → success|failed|canceled on
// timers chosen by Config.Decide, runs Config.Job while running, and posts a
// "Pipeline Hook" on every status change. Faults (5xx, 429, latency, dropped
// hooks, lost create responses) are drawn from a seeded math/rand/v2 source.
package gitlabsim

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

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
	// Seed makes fault injection deterministic.
	Seed uint64
	// Faults to inject from the start; see SetFaults.
	Faults Faults
}

// Project is one simulated GitLab project.
type Project = wire.Project

// Outcome is how a pipeline will end and how long each phase lasts.
type Outcome struct {
	Status  string        // success (default), failed or canceled
	Created time.Duration // time spent in "created"
	Pending time.Duration // time spent in "pending"
	Running time.Duration // minimum time spent in "running" (Job may take longer)
}

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
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	sender *webhook.Sender // delivers hooks one at a time, in order

	mu        sync.Mutex
	rng       *rand.Rand
	faults    Faults
	hookURL   string
	hookToken string
	projects  *wire.Projects
	pipelines map[int64]*pipeline
	nextID    int64
	nextJobID int64
	iids      map[int64]int64
	hooks     []HookDelivery
	stats     Stats
}

type pipeline struct {
	Pipeline
	webRoot string
	cancel  context.CancelFunc // ends the lifecycle goroutine and the Job
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
		projects:  wire.NewProjects(cfg.Projects),
		pipelines: map[int64]*pipeline{},
		nextID:    100,
		nextJobID: 5000,
		iids:      map[int64]int64{},
	}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Pipeline, 0, len(s.pipelines))
	for _, p := range s.pipelines {
		out = append(out, p.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Pipeline returns one pipeline's snapshot.
func (s *Sim) Pipeline(id int64) (Pipeline, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pipelines[id]
	if !ok {
		return Pipeline{}, false
	}
	return p.snapshot(), true
}

// CreateCalls counts requests to the create and trigger endpoints, whether
// or not they created a pipeline.
func (s *Sim) CreateCalls() int { return s.Stats().CreateCalls }

// CountByRunID counts pipelines whose PAVED_RUN_ID variable equals runID.
func (s *Sim) CountByRunID(runID string) int { return s.RunIDCounts()[runID] }

// RunIDCounts maps each PAVED_RUN_ID value to its number of pipelines; an
// exactly-once test asserts every count is 1.
func (s *Sim) RunIDCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, p := range s.pipelines {
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

func (p *pipeline) snapshot() Pipeline {
	c := p.Pipeline
	c.Variables = append([]Variable(nil), p.Variables...)
	return c
}

// create records a new pipeline and starts its lifecycle.
func (s *Sim) create(proj *Project, ref, source, webRoot string, vars []Variable) Pipeline {
	now := time.Now().UTC()
	s.mu.Lock()
	s.nextID++
	s.nextJobID++
	s.iids[proj.ID]++
	if s.cfg.WebURL != "" {
		webRoot = s.cfg.WebURL
	}
	p := &pipeline{webRoot: webRoot}
	p.Pipeline = Pipeline{
		ID: s.nextID, IID: s.iids[proj.ID], ProjectID: proj.ID, ProjectPath: proj.Path,
		Ref: ref, SHA: fakeSHA(proj.Path, ref), Source: source, Status: StatusCreated,
		Variables: vars, CreatedAt: now, UpdatedAt: now,
		Job: Job{ID: s.nextJobID, Name: "provision", Stage: "deploy", Status: StatusCreated, CreatedAt: now},
	}
	p.WebURL = webRoot + "/" + proj.Path + "/-/pipelines/" + strconv.FormatInt(p.ID, 10)
	ctx, cancel := context.WithCancel(s.ctx)
	p.cancel = cancel
	s.pipelines[p.ID] = p
	s.stats.PipelinesMade++
	snap := p.snapshot()
	s.emitHookLocked(p)
	s.mu.Unlock()

	out := s.cfg.Decide(snap)
	s.wg.Add(1)
	go s.drive(ctx, p.ID, out)
	return snap
}

// drive moves one pipeline through its statuses until it ends, is canceled
// or the simulator closes.
func (s *Sim) drive(ctx context.Context, id int64, out Outcome) {
	defer s.wg.Done()
	if !sleep(ctx, out.Created) || !s.transition(id, StatusPending, "") {
		return
	}
	if !sleep(ctx, out.Pending) || !s.transition(id, StatusRunning, "") {
		return
	}
	var jobErr error
	done := make(chan struct{})
	if s.cfg.Job != nil {
		snap, _ := s.Pipeline(id)
		go func() {
			defer close(done)
			jobErr = s.cfg.Job(ctx, snap)
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
		final, reason = StatusFailed, "script_failure"
	case final == StatusFailed:
		reason = "script_failure"
	case final == StatusCanceled:
	default:
		final = StatusSuccess
	}
	s.transition(id, final, reason)
}

// transition moves a pipeline (and its job) to status unless it is already
// terminal, and queues a hook. It reports whether the move happened.
func (s *Sim) transition(id int64, status, failureReason string) bool {
	now := time.Now().UTC()
	s.mu.Lock()
	p, ok := s.pipelines[id]
	if !ok || Terminal(p.Status) {
		s.mu.Unlock()
		return false
	}
	p.Status, p.UpdatedAt = status, now
	p.Job.Status = status
	switch {
	case status == StatusRunning:
		p.StartedAt, p.Job.StartedAt = now, now
	case Terminal(status):
		p.FinishedAt, p.Job.FinishedAt = now, now
		p.Job.FailureReason = failureReason
		p.cancel()
	}
	s.emitHookLocked(p)
	s.mu.Unlock()
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
