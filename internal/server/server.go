// Package server is paved's HTTP face: a small router on net/http with
// request ids, zap access logs, panic recovery, a body limit and metrics,
// and thin handlers that only translate HTTP to calls on intake, the store
// and the tracker.
package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/portal/port/webhook"
	"github.com/paved-idp/paved/internal/run"
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
	HandleHook(ctx context.Context, ev gitlab.HookEvent) (track.Outcome, error)
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
	metrics *metrics
	routes  []route
}

// New builds the HTTP handler. reg receives paved's HTTP metrics.
//
// The routes are paved's own small table on net/http rather than a router
// package: gin, which paved used, linked its bindings and renderers
// (msgpack, BSON, TOML, YAML, a validator), html/template and an HTTP/3
// stack, 87 packages paved never called, whose code and init cost every
// process about 4 MiB of resident memory and over a millisecond of
// start-up. What paved relied on is kept (TestRoutingKeepsGinsAnswers): a
// path and method that match no route answer 404, not 405; a path that
// matches one but for a trailing slash is redirected; and metrics, spans
// and logs name the route as it is written here.
func New(cfg Config, in Intake, runs Runs, tr Tracker, log *zap.Logger, reg *prometheus.Registry) http.Handler {
	s := &Server{cfg: cfg, intake: in, runs: runs, tracker: tr, log: log, metrics: newMetrics(reg)}
	s.handle("GET", "/healthz", func(c *exchange) { c.json(http.StatusOK, map[string]any{"status": "ok"}) })
	s.handle("GET", "/readyz", s.ready)
	s.handle("GET", "/metrics", wrap(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	s.handle("POST", "/webhooks/port", s.portWebhook)
	s.handle("POST", "/webhooks/gitlab", s.gitlabWebhook)
	s.handle("POST", "/api/v1/runs/:id/logs", s.runToken, s.pipelineLogs)
	s.handle("POST", "/api/v1/runs/:id/outputs", s.runToken, s.pipelineOutputs)
	s.handle("POST", "/api/v1/runs/:id/preview", s.runToken, s.pipelinePreview)
	s.handle("GET", "/api/v1/runs", s.bearer, s.listRuns)
	s.handle("POST", "/api/v1/runs", s.bearer, s.createRun)
	s.handle("GET", "/api/v1/runs/:id", s.bearer, s.getRun)
	s.handle("GET", "/api/v1/runs/:id/logs", s.bearer, s.runLogs)
	s.handle("POST", "/api/v1/runs/:id/approve", s.bearer, s.approve)
	s.handle("POST", "/api/v1/runs/:id/deny", s.bearer, s.deny)
	s.handle("POST", "/api/v1/runs/:id/cancel", s.bearer, s.cancel)
	if cfg.UI != nil {
		s.handle(anyMethod, "/ui/*path", wrap(cfg.UI))
		s.handle("GET", "/", func(c *exchange) { http.Redirect(c.w, c.r, "/ui/", http.StatusSeeOther) })
	}
	return s
}

// ServeHTTP finds the request's route and runs it through the middleware:
// request id, span, access log and metrics, panic recovery, body limit.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, params := s.match(r.Method, r.URL.Path)
	if rt == nil {
		if to, ok := s.slashRedirect(r); ok {
			// As gin did: a redirect for a trailing slash, before any middleware.
			code := http.StatusMovedPermanently
			if r.Method != http.MethodGet {
				code = http.StatusTemporaryRedirect // the method and body are kept
			}
			http.Redirect(w, r, to, code)
			return
		}
	}
	c := &exchange{w: &statusWriter{ResponseWriter: w}, r: r, params: params}
	chain := []handler{noRoute}
	if rt != nil {
		c.route, chain = rt.path, rt.chain
	}
	c.id = r.Header.Get("X-Request-ID")
	if !requestIDOK(c.id) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.id = hex.EncodeToString(b[:])
	}
	w.Header().Set("X-Request-ID", c.id)
	defer s.trace(c)()
	defer s.accessLog(c)()
	defer s.recover(c)
	if s.limitBody(c) {
		c.run(chain)
	}
}

func noRoute(c *exchange) {
	fail(c, http.StatusNotFound, "no such endpoint: "+c.r.Method+" "+c.r.URL.Path)
}

// errorBody is every error answer: a sentence, and the reasons when there are several.
type errorBody struct {
	Error   string   `json:"error"`
	Reasons []string `json:"reasons,omitempty"`
}

// fail answers with an error and stops the route's chain.
func fail(c *exchange, code int, msg string, reasons ...string) {
	c.json(code, errorBody{Error: msg, Reasons: reasons})
	c.stop = true
}

// requestIDOK reports whether a caller's request id matches
// ^[A-Za-z0-9._-]{1,64}$. It is written out because a regexp's {1,64}
// compiles to a 60 KB program, built at every start.
func requestIDOK(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// unwatched routes are probes and scrapes: no span, no access log.
func unwatched(route string) bool {
	return route == "/healthz" || route == "/readyz" || route == "/metrics"
}

// trace runs the request in a server span, a child of the caller's trace
// context when it sent one (a pipeline's `paved report` sends its run's);
// the function it returns ends the span with the answer's status.
func (s *Server) trace(c *exchange) (end func()) {
	route := c.route
	if unwatched(route) {
		return func() {}
	}
	if route == "" {
		route = "unmatched"
	}
	ctx := telemetry.Extract(c.r.Context(), telemetry.HeaderCarrier(c.r.Header))
	ctx, span := telemetry.OrNoop(s.cfg.Tracer).Start(ctx, c.r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", c.r.Method), attribute.String("http.route", route),
			attribute.String("paved.request_id", c.id)))
	c.r = c.r.WithContext(ctx)
	return func() {
		status := c.w.Status()
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}
}

// accessLog returns the function that counts the answered request and logs it.
func (s *Server) accessLog(c *exchange) (done func()) {
	start := time.Now()
	return func() {
		route := c.route
		if route == "" {
			route = "unmatched"
		}
		status := c.w.Status()
		s.metrics.observe(c.r.Method, route, status, time.Since(start))
		if unwatched(route) {
			return
		}
		// Paths and ids only: bodies and headers can hold secrets and user input.
		s.log.Info("http", zap.String("request_id", c.id), zap.String("method", c.r.Method),
			zap.String("route", route), zap.Int("status", status), zap.Duration("latency", time.Since(start)),
			zap.String("client", clientIP(c.r)))
	}
}

// recover answers 500 for a handler's panic, and logs it. A panic for a
// connection gone (a broken pipe, a reset, http.ErrAbortHandler) only ends
// the request: there is nobody to answer.
func (s *Server) recover(c *exchange) {
	v := recover()
	if v == nil {
		return
	}
	if err, ok := v.(error); ok && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, http.ErrAbortHandler)) {
		return
	}
	s.log.Error("panic in handler", zap.String("request_id", c.id), zap.Any("panic", v), zap.Stack("stack"))
	fail(c, http.StatusInternalServerError, "internal error; request id "+c.id)
}

// limitBody refuses a body declared larger than the limit, and caps the
// rest at it; false means it answered.
func (s *Server) limitBody(c *exchange) bool {
	if c.r.ContentLength > s.cfg.MaxBodyBytes {
		fail(c, http.StatusRequestEntityTooLarge, "body is larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
		return false
	}
	c.r.Body = http.MaxBytesReader(c.w, c.r.Body, s.cfg.MaxBodyBytes)
	return true
}

// readBody reads the whole body, answering 413 or 400 itself on failure.
func (s *Server) readBody(c *exchange) ([]byte, bool) {
	body, err := io.ReadAll(c.r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		fail(c, http.StatusRequestEntityTooLarge, "body is larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
		return nil, false
	case err != nil:
		fail(c, http.StatusBadRequest, "read body: "+err.Error())
		return nil, false
	}
	return body, true
}

// ready answers readiness: paved is ready when its store takes a write,
// since every request it accepts must be written before it is answered.
func (s *Server) ready(c *exchange) {
	ctx, cancel := context.WithTimeout(c.r.Context(), 5*time.Second)
	defer cancel()
	if err := s.runs.Ping(ctx); err != nil {
		s.log.Warn("store not reachable", zap.Error(err))
		c.json(http.StatusServiceUnavailable, map[string]any{"status": "store not reachable"})
		return
	}
	if err := s.runs.Writable(ctx); err != nil {
		s.log.Warn("store cannot write", zap.Error(err))
		c.json(http.StatusServiceUnavailable, map[string]any{"status": "store cannot write"})
		return
	}
	c.json(http.StatusOK, map[string]any{"status": "ready"})
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

// bearer guards paved's API with the configured clients' tokens.
func (s *Server) bearer(c *exchange) {
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
			c.client = found
			return
		}
	}
	if ok {
		s.cfg.Metrics.AuthFailure("api", "bad_token")
	}
	c.w.Header().Set("WWW-Authenticate", `Bearer realm="paved"`)
	fail(c, http.StatusUnauthorized, "a valid API bearer token is required")
}

// runToken guards a run's pipeline callbacks with that run's own token.
func (s *Server) runToken(c *exchange) {
	tok, ok := bearerToken(c)
	s.countMissing("run_callback", ok)
	if ok && !run.ValidToken(s.cfg.RunTokenKey, c.param("id"), tok) {
		s.cfg.Metrics.AuthFailure("run_callback", "bad_token")
		ok = false
	}
	if !ok {
		fail(c, http.StatusUnauthorized, "a valid run token is required (PAVED_RUN_TOKEN)")
	}
}

// countMissing counts a request that came without credentials.
func (s *Server) countMissing(endpoint string, present bool) {
	if !present {
		s.cfg.Metrics.AuthFailure(endpoint, "missing")
	}
}

func bearerToken(c *exchange) (string, bool) {
	h := c.r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}
