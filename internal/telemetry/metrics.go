// Package telemetry is how paved is watched: its Prometheus metrics, its
// OpenTelemetry traces (and the trace context a run carries from the
// webhook to the pipeline and back), and the fields every log line about a
// run carries.
package telemetry

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paved-idp/paved/internal/run"
)

// Metrics are paved's own counters and histograms. A nil *Metrics records
// nothing, so components and their tests need none.
type Metrics struct {
	runsFinished    *prometheus.CounterVec
	runDuration     *prometheus.HistogramVec
	intake          *prometheus.HistogramVec
	dispatch        *prometheus.HistogramVec
	authFailures    *prometheus.CounterVec
	policyDenials   *prometheus.CounterVec
	upstream        *prometheus.CounterVec
	upstreamSeconds *prometheus.HistogramVec
	rateWaits       *prometheus.CounterVec
	rateWaitSeconds *prometheus.CounterVec
}

// fast buckets span a request's work (1 ms to 2.5 s); slow ones a run's
// life (1 s to 2 h).
var (
	fast = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	slow = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}
)

// NewMetrics makes the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paved_runs_finished_total",
			Help: "Runs that reached a final state, by action and state (rejected, succeeded, failed, canceled, timed_out)."}, []string{"action", "state"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paved_run_duration_seconds",
			Help: "From a run's record to its final state, by action and state.", Buckets: slow}, []string{"action", "state"}),
		intake: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paved_intake_seconds",
			Help: "Intake of one request (schema, policy, durable record), by portal and outcome (queued, awaiting_approval, rejected, duplicate, error).", Buckets: fast}, []string{"portal", "outcome"}),
		dispatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paved_dispatch_seconds",
			Help: "From a run's record until GitLab created its pipeline (or refused to), stack queueing included, by outcome (created, refused).", Buckets: slow}, []string{"outcome"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paved_auth_failures_total",
			Help: "Refused callers, by what they called (port_webhook, gitlab_webhook, api, run_callback, operator) and why (missing, bad_signature, stale_timestamp, bad_token, bad_csrf, cross_site)."}, []string{"endpoint", "reason"}),
		policyDenials: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paved_policy_denials_total",
			Help: "Policy denials by the rule that denied (unnamed: the policy gave a plain message); one run may count under several rules."}, []string{"rule"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paved_upstream_requests_total",
			Help: "HTTP requests paved sent to GitLab, Port and AWS, retries included, by system, method and status code (error: no answer)."}, []string{"system", "method", "code"}),
		upstreamSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paved_upstream_request_seconds",
			Help: "Latency of one HTTP request to GitLab, Port or AWS, by system.", Buckets: fast}, []string{"system"}),
		rateWaits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paved_rate_limit_waits_total",
			Help: "Times work waited for a rate limit, by system: paved's own GitLab cap or a 429's reset (gitlab), Port's rate limit (port)."}, []string{"system"}),
		rateWaitSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paved_rate_limit_wait_seconds_total",
			Help: "Time spent waiting for rate limits, by system."}, []string{"system"}),
	}
	reg.MustRegister(m.runsFinished, m.runDuration, m.intake, m.dispatch, m.authFailures, m.policyDenials,
		m.upstream, m.upstreamSeconds, m.rateWaits, m.rateWaitSeconds)
	return m
}

// RunFinished counts a run that reached its final state.
func (m *Metrics) RunFinished(r *run.Run) {
	if m == nil || !r.State.Terminal() {
		return
	}
	m.runsFinished.WithLabelValues(r.Request.Action, string(r.State)).Inc()
	if !r.CreatedAt.IsZero() && !r.UpdatedAt.Before(r.CreatedAt) {
		m.runDuration.WithLabelValues(r.Request.Action, string(r.State)).Observe(r.UpdatedAt.Sub(r.CreatedAt).Seconds())
	}
}

// Intake observes one submission.
func (m *Metrics) Intake(portal, outcome string, d time.Duration) {
	if m != nil {
		m.intake.WithLabelValues(portal, outcome).Observe(d.Seconds())
	}
}

// Dispatched observes how long a run waited for its pipeline.
func (m *Metrics) Dispatched(outcome string, d time.Duration) {
	if m != nil {
		m.dispatch.WithLabelValues(outcome).Observe(d.Seconds())
	}
}

// AuthFailure counts a refused caller.
func (m *Metrics) AuthFailure(endpoint, reason string) {
	if m != nil {
		m.authFailures.WithLabelValues(endpoint, reason).Inc()
	}
}

// PolicyDenied counts one denial under its rule ("" is unnamed).
func (m *Metrics) PolicyDenied(rule string) {
	if m == nil {
		return
	}
	if rule == "" {
		rule = "unnamed"
	}
	m.policyDenials.WithLabelValues(rule).Inc()
}

// Upstream observes one HTTP request to another system; code 0 means no
// answer came.
func (m *Metrics) Upstream(system, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	c := "error"
	if code > 0 {
		c = strconv.Itoa(code)
	}
	m.upstream.WithLabelValues(system, method, c).Inc()
	m.upstreamSeconds.WithLabelValues(system).Observe(d.Seconds())
}

// RateLimitWait counts a wait for a rate limit.
func (m *Metrics) RateLimitWait(system string, d time.Duration) {
	if m == nil || d <= 0 {
		return
	}
	m.rateWaits.WithLabelValues(system).Inc()
	m.rateWaitSeconds.WithLabelValues(system).Add(d.Seconds())
}
