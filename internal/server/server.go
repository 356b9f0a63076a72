// Package server is paved's HTTP face: a gin router with request ids, zap
// access logs, panic recovery, a body limit and metrics, and thin handlers
// that only translate HTTP to calls on intake, the store and the tracker.
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
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
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
}

// New builds the HTTP handler. reg receives paved's HTTP metrics.
func New(cfg Config, in Intake, runs Runs, tr Tracker, log *zap.Logger, reg *prometheus.Registry) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, intake: in, runs: runs, tracker: tr, log: log, metrics: newMetrics(reg)}
	r := gin.New()
	r.ContextWithFallback = true // handlers' c.Request.Context() ends with the client
	r.Use(s.requestID, s.trace, s.accessLog, gin.CustomRecoveryWithWriter(io.Discard, s.recovered), s.limitBody)
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.ready)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	r.POST("/webhooks/port", s.portWebhook)
	r.POST("/webhooks/gitlab", s.gitlabWebhook)
	api := r.Group("/api/v1")
	api.POST("/runs/:id/logs", s.runToken, s.pipelineLogs)
	api.POST("/runs/:id/outputs", s.runToken, s.pipelineOutputs)
	api.POST("/runs/:id/preview", s.runToken, s.pipelinePreview)
	authed := api.Group("", s.bearer)
	authed.GET("/runs", s.listRuns)
	authed.POST("/runs", s.createRun)
	authed.GET("/runs/:id", s.getRun)
	authed.GET("/runs/:id/logs", s.runLogs)
	authed.POST("/runs/:id/approve", s.approve)
	authed.POST("/runs/:id/deny", s.deny)
	authed.POST("/runs/:id/cancel", s.cancel)
	if cfg.UI != nil {
		r.Any("/ui/*path", gin.WrapH(cfg.UI))
		r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/ui/") })
	}
	r.NoRoute(func(c *gin.Context) {
		fail(c, http.StatusNotFound, "no such endpoint: "+c.Request.Method+" "+c.Request.URL.Path)
	})
	return r
}

// errorBody is every error answer: a sentence, and the reasons when there are several.
type errorBody struct {
	Error   string   `json:"error"`
	Reasons []string `json:"reasons,omitempty"`
}

func fail(c *gin.Context, code int, msg string, reasons ...string) {
	c.AbortWithStatusJSON(code, errorBody{Error: msg, Reasons: reasons})
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !requestIDPattern.MatchString(id) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set("request_id", id)
	c.Header("X-Request-ID", id)
	c.Next()
}

// unwatched routes are probes and scrapes: no span, no access log.
func unwatched(route string) bool {
	return route == "/healthz" || route == "/readyz" || route == "/metrics"
}

// trace runs the request in a server span, a child of the caller's trace
// context when it sent one (a pipeline's `paved report` sends its run's).
func (s *Server) trace(c *gin.Context) {
	route := c.FullPath()
	if unwatched(route) {
		c.Next()
		return
	}
	if route == "" {
		route = "unmatched"
	}
	ctx := telemetry.Extract(c.Request.Context(), telemetry.HeaderCarrier(c.Request.Header))
	ctx, span := telemetry.OrNoop(s.cfg.Tracer).Start(ctx, c.Request.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", c.Request.Method), attribute.String("http.route", route),
			attribute.String("paved.request_id", c.GetString("request_id"))))
	defer span.End()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
	status := c.Writer.Status()
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}

func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	s.metrics.observe(c.Request.Method, route, status, time.Since(start))
	if unwatched(route) {
		return
	}
	// Paths and ids only: bodies and headers can hold secrets and user input.
	s.log.Info("http", zap.String("request_id", c.GetString("request_id")), zap.String("method", c.Request.Method),
		zap.String("route", route), zap.Int("status", status), zap.Duration("latency", time.Since(start)),
		zap.String("client", c.ClientIP()))
}

func (s *Server) recovered(c *gin.Context, v any) {
	s.log.Error("panic in handler", zap.String("request_id", c.GetString("request_id")), zap.Any("panic", v), zap.Stack("stack"))
	fail(c, http.StatusInternalServerError, "internal error; request id "+c.GetString("request_id"))
}

func (s *Server) limitBody(c *gin.Context) {
	if c.Request.ContentLength > s.cfg.MaxBodyBytes {
		fail(c, http.StatusRequestEntityTooLarge, "body is larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes)
	c.Next()
}

// readBody reads the whole body, answering 413 or 400 itself on failure.
func (s *Server) readBody(c *gin.Context) ([]byte, bool) {
	body, err := io.ReadAll(c.Request.Body)
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
func (s *Server) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
	defer cancel()
	if err := s.runs.Ping(ctx); err != nil {
		s.log.Warn("store not reachable", zap.Error(err))
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "store not reachable"})
		return
	}
	if err := s.runs.Writable(ctx); err != nil {
		s.log.Warn("store cannot write", zap.Error(err))
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "store cannot write"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
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

// clientKey is where bearer leaves the authenticated client.
const clientKey = "api_client"

// bearer guards paved's API with the configured clients' tokens.
func (s *Server) bearer(c *gin.Context) {
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
			c.Set(clientKey, found)
			c.Next()
			return
		}
	}
	if ok {
		s.cfg.Metrics.AuthFailure("api", "bad_token")
	}
	c.Header("WWW-Authenticate", `Bearer realm="paved"`)
	fail(c, http.StatusUnauthorized, "a valid API bearer token is required")
}

// runToken guards a run's pipeline callbacks with that run's own token.
func (s *Server) runToken(c *gin.Context) {
	tok, ok := bearerToken(c)
	s.countMissing("run_callback", ok)
	if ok && !run.ValidToken(s.cfg.RunTokenKey, c.Param("id"), tok) {
		s.cfg.Metrics.AuthFailure("run_callback", "bad_token")
		ok = false
	}
	if !ok {
		fail(c, http.StatusUnauthorized, "a valid run token is required (PAVED_RUN_TOKEN)")
		return
	}
	c.Next()
}

// countMissing counts a request that came without credentials.
func (s *Server) countMissing(endpoint string, present bool) {
	if !present {
		s.cfg.Metrics.AuthFailure(endpoint, "missing")
	}
}

func bearerToken(c *gin.Context) (string, bool) {
	h := c.GetHeader("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}
