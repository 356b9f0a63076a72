package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paved-idp/paved/internal/run"
)

// TracingOptions configure the exporter; no Endpoint means no tracing.
type TracingOptions struct {
	// Endpoint is the collector's OTLP/HTTP base URL; spans go to
	// <Endpoint>/v1/traces.
	Endpoint    string
	ServiceName string
	Version     string
	// SampleRatio of new traces is kept; a caller's sampled flag is
	// followed either way.
	SampleRatio float64
}

// NewTracerProvider starts the OTLP/HTTP exporter. shutdown flushes what is
// buffered; call it when paved stops. Without an endpoint the provider is a
// no-op one, which still passes a caller's trace context along.
func NewTracerProvider(ctx context.Context, opt TracingOptions) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	if opt.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	u, err := url.Parse(strings.TrimSuffix(opt.Endpoint, "/") + "/v1/traces")
	if err != nil {
		return nil, nil, fmt.Errorf("tracing endpoint: %w", err)
	}
	exp := newJSONExporter(u.String())
	res := resource.NewSchemaless(attribute.String("service.name", opt.ServiceName), attribute.String("service.version", opt.Version))
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(opt.SampleRatio))),
	)
	return sdk, sdk.Shutdown, nil
}

// Tracer is paved's tracer of tp; a nil tp traces nothing.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer("github.com/paved-idp/paved")
}

// OrNoop is t, or a tracer that records nothing when t is nil.
func OrNoop(t trace.Tracer) trace.Tracer {
	if t == nil {
		return Tracer(nil)
	}
	return t
}

// Traceparent is the W3C traceparent of ctx's span, "" when there is none.
// A run stores it, so work done for the run later, in another process
// perhaps, joins the run's trace.
func Traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceparent is ctx with tp as its remote parent span; an empty or
// malformed tp leaves ctx as it is.
func WithTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}

// ValidTraceparent reports whether tp is a W3C traceparent with a valid
// trace and span id.
func ValidTraceparent(tp string) bool {
	return trace.SpanContextFromContext(WithTraceparent(context.Background(), tp)).IsValid()
}

// StartRun starts a span for work on r, as a child of the span r's
// traceparent names.
func StartRun(ctx context.Context, t trace.Tracer, name string, r *run.Run, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx = WithTraceparent(ctx, r.TraceParent)
	ctx, span := OrNoop(t).Start(ctx, name, opts...)
	span.SetAttributes(RunAttributes(r)...)
	return ctx, span
}

// RunAttributes are a run's span attributes, the log fields' twins.
func RunAttributes(r *run.Run) []attribute.KeyValue {
	return []attribute.KeyValue{attribute.String("paved.run.id", r.ID), attribute.String("paved.action", r.Request.Action),
		attribute.String("paved.tenant", r.Stack.Tenant), attribute.String("paved.environment", r.Stack.Environment)}
}

// HeaderCarrier reads and writes trace context in HTTP headers.
type HeaderCarrier = propagation.HeaderCarrier

// Extract is ctx with the trace context of incoming headers.
func Extract(ctx context.Context, h HeaderCarrier) context.Context {
	return propagation.TraceContext{}.Extract(ctx, h)
}

// Inject writes ctx's trace context into outgoing headers.
func Inject(ctx context.Context, h HeaderCarrier) { propagation.TraceContext{}.Inject(ctx, h) }
