package telemetry

import (
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Transport counts and traces every HTTP request to another system. Put it
// beneath a client's retries, so that each attempt counts.
type Transport struct {
	System  string // gitlab, port, aws
	Next    http.RoundTripper
	Metrics *Metrics
	Tracer  trace.Tracer
}

// RoundTrip sends req in a client span, with the span's trace context in
// its headers.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	ctx, span := OrNoop(t.Tracer).Start(req.Context(), t.System+" "+req.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("server.address", req.URL.Host),
			attribute.String("url.path", req.URL.Path)))
	defer span.End()
	out := req.Clone(ctx) // a RoundTripper must not change its request
	Inject(ctx, HeaderCarrier(out.Header))
	start := time.Now()
	resp, err := next.RoundTrip(out)
	if err != nil {
		t.Metrics.Upstream(t.System, req.Method, 0, time.Since(start))
		span.RecordError(err)
		span.SetStatus(codes.Error, "no answer")
		return nil, err
	}
	t.Metrics.Upstream(t.System, req.Method, resp.StatusCode, time.Since(start))
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, resp.Status)
	}
	return resp, nil
}

// Client is a copy of hc whose requests go through a Transport.
func (t Transport) Client(hc *http.Client) *http.Client {
	c := &http.Client{}
	if hc != nil {
		copied := *hc
		c = &copied
	}
	t.Next = c.Transport
	c.Transport = &t
	return c
}
