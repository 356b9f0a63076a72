package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/paved-idp/paved/internal/gate"
	"github.com/paved-idp/paved/internal/gitlab/pipelinehook"
	"github.com/paved-idp/paved/internal/portal/port/webhook"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
	"github.com/paved-idp/paved/internal/track"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

type fakeIntake struct {
	submitted []run.Request
	approvers []run.Approver
	panicOn   string
}

func (f *fakeIntake) Submit(_ context.Context, req run.Request) (*run.Run, bool, error) {
	if req.Action == f.panicOn {
		panic("boom")
	}
	f.submitted = append(f.submitted, req)
	st := run.Queued
	var reasons []string
	if req.Action == "refused" {
		st, reasons = run.Rejected, []string{"inputs.size must be <= 3"}
	}
	return &run.Run{ID: "r_1", Request: req, State: st, Reasons: reasons}, true, nil
}
func (f *fakeIntake) Approve(_ context.Context, id string, by run.Approver, _ string) (*run.Run, error) {
	f.approvers = append(f.approvers, by)
	if by.ID == "outsider@acme.example" {
		return nil, fmt.Errorf("approve run %s: %w", id, &gate.ApproverError{RunID: id, Approver: by.ID, Allowed: []string{"platform"}})
	}
	return nil, run.ErrNotFound
}
func (f *fakeIntake) Cancel(context.Context, string, string) (*run.Run, error) {
	return &run.Run{ID: "r_1", State: run.Canceled}, nil
}

// Preview answers like the gate: a run still dispatching is not ready,
// a bad preview is refused, and otherwise the verdict comes back.
func (f *fakeIntake) Preview(_ context.Context, id string, p run.Preview) (*run.Run, error) {
	switch {
	case id == "r_early":
		return nil, gate.ErrNotYet
	case p.Digest == "":
		return nil, gate.ErrBadPreview
	}
	p.Verdict = run.VerdictAwaitApproval
	return &run.Run{ID: id, State: run.AwaitingApproval, Preview: &p}, nil
}

func (f *fakeIntake) Decide(_ context.Context, req run.Request) (*run.Run, error) {
	f.submitted = append(f.submitted, req)
	if req.Inputs["runId"] == nil {
		return nil, gate.ErrBadDecision
	}
	return &run.Run{ID: req.Inputs["runId"].(string), State: run.Queued}, nil
}
func (f *fakeIntake) Deny(context.Context, string, run.Approver, string) (*run.Run, error) {
	return nil, &run.TransitionError{RunID: "r_1", From: run.Succeeded, To: run.Rejected}
}

type fakeRuns struct {
	down, readOnly bool
	// one is the only run there is, with its log lines.
	one   *run.Run
	lines []store.LogLine
}

func (f fakeRuns) Run(_ context.Context, id string) (*run.Run, error) {
	if f.one != nil && f.one.ID == id {
		return f.one, nil
	}
	return nil, run.ErrNotFound
}
func (f fakeRuns) Logs(_ context.Context, _ string, after int64, limit int) ([]store.LogLine, error) {
	var out []store.LogLine
	for _, l := range f.lines {
		if l.Seq > after && len(out) < limit {
			out = append(out, l)
		}
	}
	return out, nil
}
func (f fakeRuns) ListRuns(context.Context, store.Query) ([]*run.Run, error) {
	return nil, nil
}
func (f fakeRuns) Events(context.Context, string) ([]run.Event, error) { return nil, nil }
func (f fakeRuns) Ping(context.Context) error {
	if f.down {
		return errors.New("disk gone")
	}
	return nil
}
func (f fakeRuns) Writable(context.Context) error {
	if f.down || f.readOnly {
		return errors.New("attempt to write a readonly database")
	}
	return nil
}

type fakeTracker struct{ logs []string }

// HandleHook applies hooks for pipeline 1 only; the rest are ignored.
func (f *fakeTracker) HandleHook(_ context.Context, ev pipelinehook.Event) (track.Outcome, error) {
	if ev.PipelineID != 1 {
		return track.Outcome{What: "pipeline is not a paved run's"}, nil
	}
	return track.Outcome{Applied: true, What: "run r_1 is running"}, nil
}
func (f *fakeTracker) RecordOutputs(context.Context, string, map[string]any) error {
	return nil
}
func (f *fakeTracker) AppendLogs(_ context.Context, _ string, lines []string) error {
	f.logs = append(f.logs, lines...)
	return nil
}

func newTest(t *testing.T, runs fakeRuns) (http.Handler, *fakeIntake, *fakeTracker, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	in, tr := &fakeIntake{panicOn: "panic"}, &fakeTracker{}
	cfg := Config{MaxBodyBytes: 1 << 10, PortVerifier: &webhook.Verifier{Secret: []byte("s")}, GitLabWebhookToken: "h", APIClients: []APIClient{NewAPIClient("api", "api", nil), NewAPIClient("backstage", "bs-token", nil), NewAPIClient("ci-bot", "bot-token", []string{"add-s3-bucket"}), NewAPIClient("lead@acme.example", "lead-token", nil)}, RunTokenKey: []byte("k")}
	return New(cfg, in, runs, tr, zap.New(core), prometheus.NewRegistry()), in, tr, logs
}

func call(h http.Handler, method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestMiddleware(t *testing.T) {
	h, _, _, logs := newTest(t, fakeRuns{})
	w := call(h, "GET", "/healthz", "", map[string]string{"X-Request-ID": "abc-123"})
	if w.Code != 200 || w.Header().Get("X-Request-ID") != "abc-123" {
		t.Fatalf("healthz %d, request id %q", w.Code, w.Header().Get("X-Request-ID"))
	}
	if w := call(h, "GET", "/healthz", "", map[string]string{"X-Request-ID": "bad id\n"}); len(w.Header().Get("X-Request-ID")) != 16 {
		t.Fatalf("unsafe request id kept: %q", w.Header().Get("X-Request-ID"))
	}
	if w := call(h, "POST", "/api/v1/runs", strings.Repeat("x", 2<<10), map[string]string{"Authorization": "Bearer api"}); w.Code != 413 {
		t.Fatalf("big body: %d", w.Code)
	}
	body := `{"idempotencyKey":"k","action":"panic","user":{"email":"a@b"}}`
	if w := call(h, "POST", "/api/v1/runs", body, map[string]string{"Authorization": "Bearer api", "X-Request-ID": "req-9"}); w.Code != 500 || !strings.Contains(w.Body.String(), "req-9") {
		t.Fatalf("panic: %d %s", w.Code, w.Body)
	}
	if logs.FilterMessage("panic in handler").Len() != 1 {
		t.Fatal("panic not logged")
	}
	if w := call(h, "GET", "/nope", "", nil); w.Code != 404 || !strings.Contains(w.Body.String(), "no such endpoint") {
		t.Fatalf("404: %d %s", w.Code, w.Body)
	}
	if w := call(h, "GET", "/metrics", "", nil); w.Code != 200 || !strings.Contains(w.Body.String(), `paved_http_requests_total{method="GET",route="/healthz",status="200"}`) {
		t.Fatalf("metrics: %d", w.Code)
	}
}

func TestReadiness(t *testing.T) {
	up, _, _, _ := newTest(t, fakeRuns{})
	down, _, _, _ := newTest(t, fakeRuns{down: true})
	readOnly, _, _, _ := newTest(t, fakeRuns{readOnly: true})
	if w := call(up, "GET", "/readyz", "", nil); w.Code != 200 {
		t.Fatalf("ready: %d", w.Code)
	}
	if w := call(down, "GET", "/readyz", "", nil); w.Code != 503 {
		t.Fatalf("store down: %d", w.Code)
	}
	// Reads still work, but a store that cannot write cannot take a run.
	if w := call(readOnly, "GET", "/readyz", "", nil); w.Code != 503 || !strings.Contains(w.Body.String(), "cannot write") {
		t.Fatalf("read-only store: %d %s", w.Code, w.Body)
	}
}

func TestAPIAuthAndAnswers(t *testing.T) {
	h, in, _, _ := newTest(t, fakeRuns{})
	for _, auth := range []string{"", "Bearer wrong", "Basic api", "Bearer"} {
		if w := call(h, "GET", "/api/v1/runs", "", map[string]string{"Authorization": auth}); w.Code != 401 {
			t.Fatalf("auth %q: %d", auth, w.Code)
		}
	}
	bearer := map[string]string{"Authorization": "Bearer api"}
	if w := call(h, "GET", "/api/v1/runs", "", bearer); w.Code != 200 || !strings.Contains(w.Body.String(), `"runs":[]`) {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	tests := []struct {
		body string
		code int
		want string
	}{
		{`{"idempotencyKey":"k1","action":"add-s3-bucket","user":{"email":"a@b"},"inputs":{"x":1}}`, 201, `"state":"queued"`},
		{`{"idempotencyKey":"k2","action":"refused","user":{"email":"a@b"}}`, 422, `inputs.size must be`},
		{`{"action":"x"}`, 400, "idempotencyKey (or the Idempotency-Key header), user.email"},
		{`{"idempotencyKey":"k","action":"x","user":{"email":"a"},"bogus":1}`, 400, "bogus"},
		{`{"idempotencyKey":"k","action":"x","user":{"email":"a"},"portal":"port"}`, 400, "/webhooks/port"},
		{`not json`, 400, "not a run request"},
	}
	for _, tt := range tests {
		w := call(h, "POST", "/api/v1/runs", tt.body, bearer)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) {
			t.Errorf("POST %s: %d %s, want %d containing %q", tt.body, w.Code, w.Body, tt.code, tt.want)
		}
	}
	if len(in.submitted) != 2 || in.submitted[0].Portal != "api" || in.submitted[0].PortalRunID != "k1" {
		t.Fatalf("submitted %+v", in.submitted)
	}
	// The Idempotency-Key header is the key (Stripe's convention); a body
	// key that disagrees with it is refused.
	withKey := map[string]string{"Authorization": "Bearer api", "Idempotency-Key": "hdr-1"}
	if w := call(h, "POST", "/api/v1/runs", `{"action":"add-s3-bucket","user":{"email":"a@b"}}`, withKey); w.Code != 201 || in.submitted[2].PortalRunID != "hdr-1" {
		t.Fatalf("header key: %d %s %+v", w.Code, w.Body, in.submitted)
	}
	if w := call(h, "POST", "/api/v1/runs", `{"idempotencyKey":"other","action":"add-s3-bucket","user":{"email":"a@b"}}`, withKey); w.Code != 400 || !strings.Contains(w.Body.String(), "differ") {
		t.Fatalf("header and body keys differ: %d %s", w.Code, w.Body)
	}
	if w := call(h, "POST", "/api/v1/runs/r_1/approve", `{"by":"lead@acme.example"}`, bearer); w.Code != 404 {
		t.Fatalf("approve unknown: %d", w.Code)
	}
	if w := call(h, "POST", "/api/v1/runs/r_1/deny", `{"by":"lead@acme.example"}`, bearer); w.Code != 409 {
		t.Fatalf("deny finished: %d", w.Code)
	}
	if w := call(h, "POST", "/api/v1/runs/r_1/cancel", `{"by":"dana"}`, bearer); w.Code != 200 || !strings.Contains(w.Body.String(), "canceled") {
		t.Fatalf("cancel: %d %s", w.Code, w.Body)
	}
	if w := call(h, "POST", "/api/v1/runs/r_1/approve", `{}`, bearer); w.Code != 400 {
		t.Fatalf("approve without approver: %d", w.Code)
	}
}

func TestPipelineCallbacksNeedTheRunsToken(t *testing.T) {
	h, _, tr, _ := newTest(t, fakeRuns{})
	body := `{"lines":["hello"]}`
	if w := call(h, "POST", "/api/v1/runs/r_1/logs", body, map[string]string{"Authorization": "Bearer " + run.Token([]byte("k"), "r_2")}); w.Code != 401 {
		t.Fatalf("another run's token: %d", w.Code)
	}
	if w := call(h, "POST", "/api/v1/runs/r_1/logs", body, map[string]string{"Authorization": "Bearer api"}); w.Code != 401 {
		t.Fatalf("API token on a run callback: %d", w.Code)
	}
	auth := map[string]string{"Authorization": "Bearer " + run.Token([]byte("k"), "r_1")}
	if w := call(h, "POST", "/api/v1/runs/r_1/logs", body, auth); w.Code != 202 || len(tr.logs) != 1 {
		t.Fatalf("logs: %d %v", w.Code, tr.logs)
	}
	if w := call(h, "POST", "/api/v1/runs/r_1/outputs", `{"nope":1}`, auth); w.Code != 400 {
		t.Fatalf("bad outputs: %d", w.Code)
	}
	preview := `{"resources":[{"op":"replace","type":"aws:sns/topic:Topic","name":"events"}],"digest":"sha256:` + strings.Repeat("a", 64) + `"}`
	if w := call(h, "POST", "/api/v1/runs/r_1/preview", preview, nil); w.Code != 401 {
		t.Fatalf("preview without the run's token: %d", w.Code)
	}
	w := call(h, "POST", "/api/v1/runs/r_1/preview", preview, auth)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"verdict":"await_approval"`) || !strings.Contains(w.Body.String(), `"summary":"+0 ~0 -0 (1 replace)"`) {
		t.Fatalf("preview: %d %s", w.Code, w.Body)
	}
	if w := call(h, "POST", "/api/v1/runs/r_1/preview", `{"resources":[]}`, auth); w.Code != 400 || !strings.Contains(w.Body.String(), "sha256:") {
		t.Fatalf("preview without a digest: %d %s", w.Code, w.Body)
	}
	early := map[string]string{"Authorization": "Bearer " + run.Token([]byte("k"), "r_early")}
	if w := call(h, "POST", "/api/v1/runs/r_early/preview", preview, early); w.Code != 503 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("preview of a run still dispatching: %d %v", w.Code, w.Header())
	}
}

func TestPortWebhook(t *testing.T) {
	h, in, _, _ := newTest(t, fakeRuns{})
	body, err := json.Marshal(map[string]any{"action": "refused", "resourceType": "run", "status": "TRIGGERED",
		"trigger": map[string]any{"by": map[string]any{"user": map[string]any{"email": "a@b"}}},
		"context": map[string]any{"runId": "r_port", "blueprint": "service"},
		"payload": map[string]any{"entity": nil, "action": map[string]any{"trigger": "CREATE"}, "properties": map[string]any{"size": 9}}})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Unix()
	tsStr := strconvI(ts)
	sig := webhook.Sign([]byte("s"), tsStr, body)
	w := call(h, "POST", "/webhooks/port", string(body), map[string]string{"X-Port-Timestamp": tsStr, "X-Port-Signature": sig})
	if w.Code != 202 || !strings.Contains(w.Body.String(), `"state":"rejected"`) || !strings.Contains(w.Body.String(), "inputs.size") {
		t.Fatalf("port webhook: %d %s", w.Code, w.Body)
	}
	if len(in.submitted) != 1 || in.submitted[0].PortalRunID != "r_port" || in.submitted[0].Portal != "port" {
		t.Fatalf("submitted %+v", in.submitted)
	}
	w = call(h, "POST", "/webhooks/port", string(bytes.ToUpper(body)), map[string]string{"X-Port-Timestamp": tsStr, "X-Port-Signature": sig})
	if w.Code != 401 || len(in.submitted) != 1 {
		t.Fatalf("tampered: %d", w.Code)
	}
}

func TestGitLabWebhook(t *testing.T) {
	h, _, _, _ := newTest(t, fakeRuns{})
	hook := `{"object_kind":"pipeline","object_attributes":{"id":1,"status":"running"}}`
	if w := call(h, "POST", "/webhooks/gitlab", hook, map[string]string{"X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Token": "h"}); w.Code != 200 || !strings.Contains(w.Body.String(), `"applied":"run r_1 is running"`) {
		t.Fatalf("hook: %d %s", w.Code, w.Body)
	}
	// A hook the tracker had no use for is 200 "ignored", never "applied".
	other := `{"object_kind":"pipeline","object_attributes":{"id":5,"status":"success"}}`
	if w := call(h, "POST", "/webhooks/gitlab", other, map[string]string{"X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Token": "h"}); w.Code != 200 ||
		!strings.Contains(w.Body.String(), `"ignored":"pipeline is not a paved run's"`) || strings.Contains(w.Body.String(), "applied") {
		t.Fatalf("ignored hook: %d %s", w.Code, w.Body)
	}
	if w := call(h, "POST", "/webhooks/gitlab", `{}`, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "h"}); w.Code != 200 || !strings.Contains(w.Body.String(), "ignored") {
		t.Fatalf("push hook: %d %s", w.Code, w.Body)
	}
	if w := call(h, "POST", "/webhooks/gitlab", `{`, map[string]string{"X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Token": "h"}); w.Code != 400 {
		t.Fatalf("broken hook: %d", w.Code)
	}
}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

func TestCallbackLimits(t *testing.T) {
	h, _, _, _ := newTest(t, fakeRuns{})
	auth := map[string]string{"Authorization": "Bearer " + run.Token([]byte("k"), "r_1")}
	if w := call(h, "POST", "/api/v1/runs/r_1/logs", `{"lines":["`+strings.Repeat("x", 2<<10)+`"]}`, auth); w.Code != 413 {
		t.Fatalf("big log body: %d", w.Code)
	}
	if w := call(h, "POST", "/api/v1/runs/r_1/logs", `{"lines":"nope"}`, auth); w.Code != 400 || !strings.Contains(w.Body.String(), "lines") {
		t.Fatalf("bad log body: %d %s", w.Code, w.Body)
	}
}

// Refused callers are counted by endpoint and reason, and a request in a
// caller's trace becomes a server span of that trace.
func TestAuthFailuresCountedAndRequestsTraced(t *testing.T) {
	reg := prometheus.NewRegistry()
	spans := tracetest.NewSpanRecorder()
	cfg := Config{MaxBodyBytes: 1 << 10, PortVerifier: &webhook.Verifier{Secret: []byte("s")}, GitLabWebhookToken: "h", APIClients: []APIClient{NewAPIClient("api", "api", nil), NewAPIClient("backstage", "bs-token", nil), NewAPIClient("ci-bot", "bot-token", []string{"add-s3-bucket"}), NewAPIClient("lead@acme.example", "lead-token", nil)},
		RunTokenKey: []byte("k"), Metrics: telemetry.NewMetrics(reg), Tracer: telemetry.Tracer(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))}
	h := New(cfg, &fakeIntake{}, fakeRuns{}, &fakeTracker{}, zap.NewNop(), prometheus.NewRegistry())
	call(h, "POST", "/webhooks/port", `{}`, nil)
	call(h, "POST", "/webhooks/port", `{}`, map[string]string{"X-Port-Signature": "v1,bad", "X-Port-Timestamp": strconv.FormatInt(time.Now().Unix(), 10)})
	call(h, "POST", "/webhooks/gitlab", `{}`, map[string]string{"X-Gitlab-Token": "wrong", "X-Gitlab-Event": "Pipeline Hook"})
	call(h, "GET", "/api/v1/runs", ``, nil)
	call(h, "GET", "/api/v1/runs", ``, map[string]string{"Authorization": "Bearer nope"})
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	call(h, "POST", "/api/v1/runs/r_1/logs", `{"lines":["x"]}`, map[string]string{"Authorization": "Bearer forged", "traceparent": parent})
	want := `
# HELP paved_auth_failures_total Refused callers, by what they called (port_webhook, gitlab_webhook, api, run_callback, operator) and why (missing, bad_signature, stale_timestamp, bad_token, bad_csrf, cross_site).
# TYPE paved_auth_failures_total counter
paved_auth_failures_total{endpoint="api",reason="bad_token"} 1
paved_auth_failures_total{endpoint="api",reason="missing"} 1
paved_auth_failures_total{endpoint="gitlab_webhook",reason="bad_token"} 1
paved_auth_failures_total{endpoint="port_webhook",reason="bad_signature"} 1
paved_auth_failures_total{endpoint="port_webhook",reason="missing"} 1
paved_auth_failures_total{endpoint="run_callback",reason="bad_token"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "paved_auth_failures_total"); err != nil {
		t.Fatal(err)
	}
	ended := spans.Ended()
	last := ended[len(ended)-1]
	if last.Name() != "POST /api/v1/runs/:id/logs" || last.Parent().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || last.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("last span %q has parent %v", last.Name(), last.Parent())
	}
}

// Named API clients: runs record who submitted them, a client limited to
// some actions is refused others with 403 and the reason, Backstage group
// refs become team identifiers, and an unknown token is 401.
func TestAPIClientsAreNamedAndLimited(t *testing.T) {
	h, in, _, _ := newTest(t, fakeRuns{})
	body := `{"action":"%s","user":{"email":"dana@acme.example","teams":["group:default/payments","group:ops/sre","web"]},"inputs":{}}`
	w := call(h, "POST", "/api/v1/runs", fmt.Sprintf(body, "create-service"), map[string]string{"Authorization": "Bearer bs-token", "Idempotency-Key": "task-1"})
	if w.Code != http.StatusCreated {
		t.Fatalf("backstage submit: %d %s", w.Code, w.Body)
	}
	got := in.submitted[len(in.submitted)-1]
	if got.Caller != "backstage" || strings.Join(got.User.Teams, ",") != "payments,ops/sre,web" {
		t.Fatalf("submitted caller %q teams %q", got.Caller, got.User.Teams)
	}
	w = call(h, "POST", "/api/v1/runs", fmt.Sprintf(body, "create-service"), map[string]string{"Authorization": "Bearer bot-token", "Idempotency-Key": "bot-1"})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `API client \"ci-bot\" may not run action \"create-service\"; it may run: add-s3-bucket`) {
		t.Fatalf("limited client: %d %s", w.Code, w.Body)
	}
	n := len(in.submitted)
	if w := call(h, "POST", "/api/v1/runs", fmt.Sprintf(body, "add-s3-bucket"), map[string]string{"Authorization": "Bearer bot-token", "Idempotency-Key": "bot-2"}); w.Code != http.StatusCreated || len(in.submitted) != n+1 {
		t.Fatalf("allowed action: %d %s", w.Code, w.Body)
	}
	if w := call(h, "POST", "/api/v1/runs", fmt.Sprintf(body, "add-s3-bucket"), map[string]string{"Authorization": "Bearer revoked", "Idempotency-Key": "x"}); w.Code != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d", w.Code)
	}
	if w := call(h, "POST", "/api/v1/runs/r_1/approve", `{"by":"bot@acme.example"}`, map[string]string{"Authorization": "Bearer bot-token"}); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "may not approve, deny or cancel") {
		t.Fatalf("limited client approving: %d %s", w.Code, w.Body)
	}
	w = call(h, "POST", "/api/v1/runs", `{"action":"create-service","user":{"email":"d@x"},"entity":{"identifier":"checkout","team":["group:default/payments"]},"inputs":{}}`, map[string]string{"Authorization": "Bearer bs-token", "Idempotency-Key": "task-2"})
	if got := in.submitted[len(in.submitted)-1]; w.Code != http.StatusCreated || len(got.Entity.Team) != 1 || got.Entity.Team[0] != "payments" {
		t.Fatalf("entity team %q (%d)", got.Entity.Team, w.Code)
	}
}

// GET /api/v1/runs/{id}/logs is a server-sent event stream that resumes
// after Last-Event-ID and ends with the run's final state.
func TestRunLogStream(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	runs := fakeRuns{one: &run.Run{ID: "r_9", State: run.Succeeded}, lines: []store.LogLine{{Seq: 1, At: at, Line: "one"}, {Seq: 2, At: at, Line: "two"}, {Seq: 3, At: at, Line: "three"}}}
	h, _, _, _ := newTest(t, runs)
	w := call(h, "GET", "/api/v1/runs/r_9/logs", "", map[string]string{"Authorization": "Bearer bs-token", "Last-Event-ID": "1"})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	want := "retry: 2000\n\n" +
		`id: 2` + "\n" + `data: {"seq":2,"at":"2026-12-01T09:00:00Z","line":"two"}` + "\n\n" +
		`id: 3` + "\n" + `data: {"seq":3,"at":"2026-12-01T09:00:00Z","line":"three"}` + "\n\n" +
		"event: end\ndata: succeeded\n\n"
	if w.Body.String() != want {
		t.Fatalf("stream body:\n%s\nwant:\n%s", w.Body, want)
	}
	if w := call(h, "GET", "/api/v1/runs/r_nope/logs", "", map[string]string{"Authorization": "Bearer bs-token"}); w.Code != http.StatusNotFound {
		t.Fatalf("unknown run: %d", w.Code)
	}
	if w := call(h, "GET", "/api/v1/runs/r_9/logs", "", map[string]string{"Authorization": "Bearer bs-token", "Last-Event-ID": "x"}); w.Code != http.StatusBadRequest {
		t.Fatalf("bad Last-Event-ID: %d", w.Code)
	}
	if w := call(h, "GET", "/api/v1/runs/r_9/logs", "", nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", w.Code)
	}
}

// An approval names the approver with their teams (group refs become team
// identifiers); one the policy does not name is 403 with the rule.
func TestApprovalNamesTheApprover(t *testing.T) {
	h, in, _, _ := newTest(t, fakeRuns{})
	bearer := map[string]string{"Authorization": "Bearer bs-token"}
	call(h, "POST", "/api/v1/runs/r_1/approve", `{"approver":{"email":"lead@acme.example","teams":["group:default/platform"]},"reason":"ok"}`, bearer)
	if got := in.approvers[len(in.approvers)-1]; got.ID != "lead@acme.example" || len(got.Teams) != 1 || got.Teams[0] != "platform" {
		t.Fatalf("approver %+v", got)
	}
	// A person's own token names the approver, and nobody else, without teams.
	call(h, "POST", "/api/v1/runs/r_1/approve", `{"reason":"ok","approver":{"email":"LEAD@acme.example","teams":["platform"]}}`, map[string]string{"Authorization": "Bearer lead-token"})
	if got := in.approvers[len(in.approvers)-1]; got.ID != "lead@acme.example" || len(got.Teams) != 0 {
		t.Fatalf("approver by token %+v", got)
	}
	if w := call(h, "POST", "/api/v1/runs/r_1/approve", `{"by":"boss@acme.example"}`, map[string]string{"Authorization": "Bearer lead-token"}); w.Code != http.StatusForbidden {
		t.Fatalf("a personal token approving as another: %d %s", w.Code, w.Body)
	}
	if w := call(h, "POST", "/api/v1/runs", `{"action":"create-service","user":{"email":"boss@acme.example"},"inputs":{}}`, map[string]string{"Authorization": "Bearer lead-token", "Idempotency-Key": "k"}); w.Code != http.StatusForbidden {
		t.Fatalf("a personal token submitting as another: %d %s", w.Code, w.Body)
	}
	// Only the operator page makes operator identities; approvers are emails.
	for _, body := range []string{`{"by":"operator:alice"}`, `{"approver":{"email":"operator:alice"}}`, `{"by":"lead"}`} {
		if w := call(h, "POST", "/api/v1/runs/r_1/approve", body, bearer); w.Code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", body, w.Code, w.Body)
		}
	}
	w := call(h, "POST", "/api/v1/runs/r_1/approve", `{"approver":{"email":"outsider@acme.example"}}`, bearer)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "is not named by the policy's rule data.paved.policy.approvers") {
		t.Fatalf("outsider: %d %s", w.Code, w.Body)
	}
}

// The approve-run action is answered at once (Port invokes it as a
// synchronous webhook and marks its run by the status code).
func TestPortApproveRunActionIsAnsweredSynchronously(t *testing.T) {
	h, in, _, _ := newTest(t, fakeRuns{})
	send := func(inputs map[string]any) *httptest.ResponseRecorder {
		body, err := json.Marshal(map[string]any{"action": gate.ApproveRunAction, "resourceType": "run", "status": "TRIGGERED",
			"trigger": map[string]any{"by": map[string]any{"user": map[string]any{"email": "lead@acme.example"}}},
			"context": map[string]any{"runId": "r_port_approval"},
			"payload": map[string]any{"entity": map[string]any{"identifier": "checkout", "blueprint": "service"}, "action": map[string]any{"trigger": "DAY-2"}, "properties": inputs}})
		if err != nil {
			t.Fatal(err)
		}
		ts := strconvI(time.Now().Unix())
		return call(h, "POST", "/webhooks/port", string(body), map[string]string{"X-Port-Timestamp": ts, "X-Port-Signature": webhook.Sign([]byte("s"), ts, body)})
	}
	if w := send(map[string]any{"runId": "r_waiting", "decision": "approve"}); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"message":"run r_waiting is now queued"`) {
		t.Fatalf("approve: %d %s", w.Code, w.Body)
	}
	if got := in.submitted[len(in.submitted)-1]; got.User.Email != "lead@acme.example" || got.Inputs["decision"] != "approve" {
		t.Fatalf("decided with %+v", got)
	}
	if w := send(map[string]any{"decision": "approve"}); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "runId") {
		t.Fatalf("no run id: %d %s", w.Code, w.Body)
	}
}
