// Package server is paved's HTTP face: its routes, their guards (API
// clients' tokens, runs' tokens), and thin handlers that only translate
// HTTP to calls on intake, the store and the tracker. Routing and the
// middleware are package router's.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/gitlab/pipelinehook"
	"github.com/paved-idp/paved/internal/portal/port/webhook"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/server/router"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
	"github.com/paved-idp/paved/internal/track"
)

// Intake records requests as runs.
type Intake interface {
	Submit(ctx context.Context, req run.Request) (*run.Run, bool, error)
	Approve(ctx context.Context, id string, by run.Approver, reason string) (*run.Run, error)
	Deny(ctx context.Context, id string, by run.Approver, reason string) (*run.Run, error)
	Cancel(ctx context.Context, id, by string) (*run.Run, error)
	// Decide applies a decision sent as a portal action.
	Decide(ctx context.Context, req run.Request) (*run.Run, error)
	// Preview judges the preview a run's pipeline posted.
	Preview(ctx context.Context, id string, p run.Preview) (*run.Run, error)
}

// Runs reads runs.
type Runs interface {
	Run(ctx context.Context, id string) (*run.Run, error)
	ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error)
	Events(ctx context.Context, id string) ([]run.Event, error)
	Logs(ctx context.Context, id string, after int64, limit int) ([]store.LogLine, error)
	Ping(ctx context.Context) error
	// Writable proves the store can commit a write.
	Writable(ctx context.Context) error
}

// Tracker takes pipeline news.
type Tracker interface {
	HandleHook(ctx context.Context, ev pipelinehook.Event) (track.Outcome, error)
	RecordOutputs(ctx context.Context, id string, outputs map[string]any) error
	AppendLogs(ctx context.Context, id string, lines []string) error
}

// Extender gives an ephemeral stack a new TTL, asked by a portal action.
type Extender interface {
	Extend(ctx context.Context, req run.Request) (*run.Run, error)
}

// Config is what the handlers need besides their collaborators. Secrets are
// resolved values here.
type Config struct {
	MaxBodyBytes       int64
	PortVerifier       *webhook.Verifier // nil: Port intake is off
	GitLabWebhookToken string
	// APIClients are the API's callers, by token hash.
	APIClients  []APIClient
	RunTokenKey []byte
	// StreamsDone, when closed, ends the API's log streams (paved is
	// shutting down; clients reconnect).
	StreamsDone <-chan struct{}
	// UI is the operator page, served under /ui/ (nil: no page).
	UI http.Handler
	// Extender gives ephemeral stacks a new TTL (the portal action
	// expiry.ExtendAction); nil: the action is unknown.
	Extender Extender
	// Metrics count refused callers; Tracer traces requests (nil: neither).
	Metrics *telemetry.Metrics
	Tracer  trace.Tracer
}

// Server holds the handlers' collaborators.
type Server struct {
	cfg     Config
	intake  Intake
	runs    Runs
	tracker Tracker
	log     *zap.Logger
}

// New builds the HTTP handler: paved's routes on package router, whose
// middleware gives every request an id, a span, an access log and metrics
// (into reg), panic recovery and the body limit.
func New(cfg Config, in Intake, runs Runs, tr Tracker, log *zap.Logger, reg *prometheus.Registry) http.Handler {
	s := &Server{cfg: cfg, intake: in, runs: runs, tracker: tr, log: log}
	rt := router.New(router.Options{MaxBodyBytes: cfg.MaxBodyBytes, Log: log, Tracer: cfg.Tracer, Registry: reg,
		Unwatched: []string{"/healthz", "/readyz", "/metrics"}})
	rt.Handle("GET", "/healthz", func(c *router.Exchange) { c.JSON(http.StatusOK, map[string]any{"status": "ok"}) })
	rt.Handle("GET", "/readyz", s.ready)
	rt.Handle("GET", "/metrics", router.Wrap(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	rt.Handle("POST", "/webhooks/port", s.portWebhook)
	rt.Handle("POST", "/webhooks/gitlab", s.gitlabWebhook)
	rt.Handle("POST", "/api/v1/runs/:id/logs", s.runToken, s.pipelineLogs)
	rt.Handle("POST", "/api/v1/runs/:id/outputs", s.runToken, s.pipelineOutputs)
	rt.Handle("POST", "/api/v1/runs/:id/preview", s.runToken, s.pipelinePreview)
	rt.Handle("GET", "/api/v1/runs", s.bearer(s.listRuns))
	rt.Handle("POST", "/api/v1/runs", s.bearer(s.createRun))
	rt.Handle("GET", "/api/v1/runs/:id", s.bearer(s.getRun))
	rt.Handle("GET", "/api/v1/runs/:id/logs", s.bearer(s.runLogs))
	rt.Handle("POST", "/api/v1/runs/:id/approve", s.bearer(s.approve))
	rt.Handle("POST", "/api/v1/runs/:id/deny", s.bearer(s.deny))
	rt.Handle("POST", "/api/v1/runs/:id/cancel", s.bearer(s.cancel))
	if cfg.UI != nil {
		rt.Handle(router.AnyMethod, "/ui/*path", router.Wrap(cfg.UI))
		rt.Handle("GET", "/", func(c *router.Exchange) { http.Redirect(c.W, c.R, "/ui/", http.StatusSeeOther) })
	}
	return rt
}

// ready answers readiness: paved is ready when its store takes a write,
// since every request it accepts must be written before it is answered.
func (s *Server) ready(c *router.Exchange) {
	ctx, cancel := context.WithTimeout(c.R.Context(), 5*time.Second)
	defer cancel()
	if err := s.runs.Ping(ctx); err != nil {
		s.log.Warn("store not reachable", zap.Error(err))
		c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "store not reachable"})
		return
	}
	if err := s.runs.Writable(ctx); err != nil {
		s.log.Warn("store cannot write", zap.Error(err))
		c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "store cannot write"})
		return
	}
	c.JSON(http.StatusOK, map[string]any{"status": "ready"})
}

// APIClient is a caller of the API, known by its token's SHA-256: paved
// keeps no token it could leak, and comparing digests of equal length in
// constant time tells nothing about a guess.
type APIClient struct {
	Name string
	Hash [sha256.Size]byte
	// Actions, when not empty, are all the client may submit.
	Actions []string
}

// NewAPIClient hashes a client's token.
func NewAPIClient(name, token string, actions []string) APIClient {
	return APIClient{Name: name, Hash: sha256.Sum256([]byte(token)), Actions: actions}
}

// apiHandler is an API route's handler, given the caller bearer let in.
type apiHandler func(c *router.Exchange, client *APIClient)

// bearer guards paved's API with the configured clients' tokens. It wraps
// the handler, rather than preceding it in the route's chain, to hand it
// the caller it let in.
func (s *Server) bearer(h apiHandler) router.Handler {
	return func(c *router.Exchange) {
		tok, ok := bearerToken(c)
		s.countMissing("api", ok)
		if ok {
			sum := sha256.Sum256([]byte(tok))
			var found *APIClient
			for i := range s.cfg.APIClients {
				// Every client is compared: timing tells nothing of which matched.
				if subtle.ConstantTimeCompare(sum[:], s.cfg.APIClients[i].Hash[:]) == 1 {
					found = &s.cfg.APIClients[i]
				}
			}
			if found != nil {
				h(c, found)
				return
			}
		}
		if ok {
			s.cfg.Metrics.AuthFailure("api", "bad_token")
		}
		c.W.Header().Set("WWW-Authenticate", `Bearer realm="paved"`)
		c.Fail(http.StatusUnauthorized, "a valid API bearer token is required")
	}
}

// runToken guards a run's pipeline callbacks with that run's own token.
func (s *Server) runToken(c *router.Exchange) {
	tok, ok := bearerToken(c)
	s.countMissing("run_callback", ok)
	if ok && !run.ValidToken(s.cfg.RunTokenKey, c.Param("id"), tok) {
		s.cfg.Metrics.AuthFailure("run_callback", "bad_token")
		ok = false
	}
	if !ok {
		c.Fail(http.StatusUnauthorized, "a valid run token is required (PAVED_RUN_TOKEN)")
	}
}

// countMissing counts a request that came without credentials.
func (s *Server) countMissing(endpoint string, present bool) {
	if !present {
		s.cfg.Metrics.AuthFailure(endpoint, "missing")
	}
}

func bearerToken(c *router.Exchange) (string, bool) {
	h := c.R.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}
