package telemetry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/telemetry/otlptest"
)

// The transport counts every request by status (no answer: "error"),
// traces it as a client span and sends the span's context along.
func TestTransportCountsAndPropagates(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("traceparent"))
		if r.URL.Path == "/boom" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	hc := Transport{System: "gitlab", Metrics: m, Tracer: Tracer(tp)}.Client(&http.Client{Timeout: 5 * time.Second})
	for _, path := range []string{"/ok", "/ok", "/boom"} {
		resp, err := hc.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := hc.Get("http://127.0.0.1:1/refused"); err == nil {
		t.Fatal("a closed port answered")
	}
	want := `
# HELP paved_upstream_requests_total HTTP requests paved sent to GitLab, Port and AWS, retries included, by system, method and status code (error: no answer).
# TYPE paved_upstream_requests_total counter
paved_upstream_requests_total{code="200",method="GET",system="gitlab"} 2
paved_upstream_requests_total{code="502",method="GET",system="gitlab"} 1
paved_upstream_requests_total{code="error",method="GET",system="gitlab"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "paved_upstream_requests_total"); err != nil {
		t.Fatal(err)
	}
	ended := spans.Ended()
	if len(ended) != 4 || len(seen) != 3 {
		t.Fatalf("%d spans, %d requests", len(ended), len(seen))
	}
	for i, tpHeader := range seen {
		if want := "-" + ended[i].SpanContext().SpanID().String() + "-"; !strings.Contains(tpHeader, want) {
			t.Errorf("request %d sent traceparent %q, want its span %s", i, tpHeader, want)
		}
	}
}

// A run's trace context survives the store as a string.
func TestTraceparentRoundTrip(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tr := Tracer(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	ctx, span := tr.Start(context.Background(), "intake")
	r := &run.Run{ID: "r_1", TraceParent: Traceparent(ctx)}
	span.End()
	if !ValidTraceparent(r.TraceParent) {
		t.Fatalf("traceparent %q", r.TraceParent)
	}
	_, child := StartRun(context.Background(), tr, "dispatch", r)
	child.End()
	got := spans.Ended()[1]
	if got.Parent().SpanID() != span.SpanContext().SpanID() || got.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Fatalf("dispatch span is not intake's child: parent %s", got.Parent().SpanID())
	}
	for _, bad := range []string{"", "00-zz-yy-01", "00-00000000000000000000000000000000-0000000000000000-01"} {
		if ValidTraceparent(bad) {
			t.Errorf("%q passed as valid", bad)
		}
		if WithTraceparent(context.Background(), bad) != context.Background() && bad == "" {
			t.Errorf("empty traceparent changed the context")
		}
	}
}

func TestFieldsOfNamesTheRun(t *testing.T) {
	r := &run.Run{ID: "r_1", Request: run.Request{Action: "add-s3-bucket"}, Stack: run.Stack{Tenant: "acme", Environment: "prod"}}
	err := fmtErr(AboutRun(r, errors.New("boom")))
	fields := FieldsOf(err, "r_1")
	keys := map[string]string{}
	for _, f := range fields {
		keys[f.Key] = f.String
	}
	if keys["run_id"] != "r_1" || keys["action"] != "add-s3-bucket" || keys["tenant"] != "acme" || keys["environment"] != "prod" {
		t.Fatalf("fields %v", keys)
	}
	if got := FieldsOf(errors.New("plain"), "r_2"); len(got) != 1 || got[0].Equals(zap.String("run_id", "r_2")) == false {
		t.Fatalf("fields of an error without a run: %v", got)
	}
	if AboutRun(r, nil) != nil {
		t.Fatal("AboutRun made an error of nil")
	}
}

// fmtErr wraps err as callers up the stack do.
func fmtErr(err error) error { return errors.Join(errors.New("context"), err) }

// A nil *Metrics records nothing and does not panic: components run without.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.RunFinished(&run.Run{State: run.Succeeded})
	m.Intake("port", "queued", time.Millisecond)
	m.Dispatched("created", time.Second)
	m.AuthFailure("api", "missing")
	m.PolicyDenied("x")
	m.Upstream("port", "GET", 200, time.Millisecond)
	m.RateLimitWait("gitlab", time.Second)
}

// The JSON exporter's requests decode with OTLP's own message types, ids,
// kinds, statuses and attribute types intact.
func TestJSONExporterSpeaksOTLP(t *testing.T) {
	rec := otlptest.New()
	defer rec.Close()
	tp, shutdown, err := NewTracerProvider(context.Background(), TracingOptions{Endpoint: rec.URL, ServiceName: "paved-test", Version: "v9", SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := Tracer(tp).Start(context.Background(), "parent", trace.WithSpanKind(trace.SpanKindServer))
	_, child := Tracer(tp).Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("n", 42), attribute.Bool("ok", true), attribute.StringSlice("tags", []string{"a", "b"})))
	child.AddEvent("retry")
	child.SetStatus(codes.Error, "boom")
	child.End()
	parent.End()
	if err := shutdown(context.Background()); err != nil { // flushes
		t.Fatal(err)
	}
	spans := map[string]otlptest.Span{}
	for _, s := range rec.Spans() {
		spans[s.Name] = s
	}
	p, c := spans["parent"], spans["child"]
	if p.TraceID != parent.SpanContext().TraceID().String() || p.SpanID != parent.SpanContext().SpanID().String() || p.Service != "paved-test" {
		t.Fatalf("parent %+v", p)
	}
	if c.TraceID != p.TraceID || c.ParentID != p.SpanID || c.Attrs["n"] != "42" || c.Attrs["ok"] != "true" {
		t.Fatalf("child %+v", c)
	}
	if c.Kind != 3 || p.Kind != 2 || c.StatusCode != 2 || c.StatusMessage != "boom" || c.Events != 1 {
		t.Fatalf("child kind %d, parent kind %d, status %d %q, events %d", c.Kind, p.Kind, c.StatusCode, c.StatusMessage, c.Events)
	}
}
