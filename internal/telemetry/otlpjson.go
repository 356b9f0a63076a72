package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// jsonExporter sends spans over OTLP/HTTP in OTLP's JSON encoding
// (Content-Type application/json; ids in hex, enums as numbers, 64-bit
// integers as strings, as the OTLP specification says). It stands in for
// the official otlptracehttp exporter, whose import links gRPC and the
// protobuf registries into paved and costs ~13 MiB of idle memory for a
// feature that is off by default.
type jsonExporter struct {
	url string
	hc  *http.Client
}

func newJSONExporter(url string) *jsonExporter {
	return &jsonExporter{url: url, hc: &http.Client{Timeout: 10 * time.Second}}
}

// OTLP's JSON message shapes (opentelemetry-proto, trace/v1), the fields
// paved sets.
type (
	otlpRequest struct {
		ResourceSpans []otlpResourceSpans `json:"resourceSpans"`
	}
	otlpResourceSpans struct {
		Resource   otlpResource     `json:"resource"`
		ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
	}
	otlpResource struct {
		Attributes []otlpKeyValue `json:"attributes"`
	}
	otlpScopeSpans struct {
		Scope otlpScope  `json:"scope"`
		Spans []otlpSpan `json:"spans"`
	}
	otlpScope struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
	}
	otlpSpan struct {
		TraceID           string         `json:"traceId"`
		SpanID            string         `json:"spanId"`
		ParentSpanID      string         `json:"parentSpanId,omitempty"`
		TraceState        string         `json:"traceState,omitempty"`
		Name              string         `json:"name"`
		Kind              int            `json:"kind"`
		StartTimeUnixNano string         `json:"startTimeUnixNano"`
		EndTimeUnixNano   string         `json:"endTimeUnixNano"`
		Attributes        []otlpKeyValue `json:"attributes,omitempty"`
		Events            []otlpEvent    `json:"events,omitempty"`
		Status            otlpStatus     `json:"status"`
	}
	otlpEvent struct {
		TimeUnixNano string         `json:"timeUnixNano"`
		Name         string         `json:"name"`
		Attributes   []otlpKeyValue `json:"attributes,omitempty"`
	}
	otlpStatus struct {
		Code    int    `json:"code,omitempty"` // 0 unset, 1 ok, 2 error
		Message string `json:"message,omitempty"`
	}
	otlpKeyValue struct {
		Key   string       `json:"key"`
		Value otlpAnyValue `json:"value"`
	}
	otlpAnyValue struct {
		StringValue *string          `json:"stringValue,omitempty"`
		BoolValue   *bool            `json:"boolValue,omitempty"`
		IntValue    *string          `json:"intValue,omitempty"`
		DoubleValue *float64         `json:"doubleValue,omitempty"`
		ArrayValue  *otlpArrayValues `json:"arrayValue,omitempty"`
	}
	otlpArrayValues struct {
		Values []otlpAnyValue `json:"values"`
	}
)

// ExportSpans posts one batch; the batch span processor calls it.
func (e *jsonExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	body, err := json.Marshal(encodeSpans(spans))
	if err != nil {
		return fmt.Errorf("otlp: encode %d spans: %w", len(spans), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("otlp: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err != nil {
		return fmt.Errorf("otlp: export %d spans: %w", len(spans), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("otlp: export %d spans: collector answered %s", len(spans), resp.Status)
	}
	return nil
}

// Shutdown has nothing to release: every export is its own request.
func (e *jsonExporter) Shutdown(context.Context) error { return nil }

// encodeSpans groups spans by resource and scope, as OTLP nests them.
func encodeSpans(spans []sdktrace.ReadOnlySpan) otlpRequest {
	var out otlpRequest
	byResource := map[string]int{}
	byScope := map[[2]string]int{}
	for _, s := range spans {
		rkey := s.Resource().Encoded(attribute.DefaultEncoder())
		ri, ok := byResource[rkey]
		if !ok {
			ri = len(out.ResourceSpans)
			byResource[rkey] = ri
			out.ResourceSpans = append(out.ResourceSpans, otlpResourceSpans{Resource: otlpResource{Attributes: keyValues(s.Resource().Attributes())}})
		}
		sc := s.InstrumentationScope()
		skey := [2]string{rkey, sc.Name + "\x00" + sc.Version}
		si, ok := byScope[skey]
		rs := &out.ResourceSpans[ri]
		if !ok {
			si = len(rs.ScopeSpans)
			byScope[skey] = si
			rs.ScopeSpans = append(rs.ScopeSpans, otlpScopeSpans{Scope: otlpScope{Name: sc.Name, Version: sc.Version}})
		}
		rs.ScopeSpans[si].Spans = append(rs.ScopeSpans[si].Spans, encodeSpan(s))
	}
	return out
}

func encodeSpan(s sdktrace.ReadOnlySpan) otlpSpan {
	sc := s.SpanContext()
	o := otlpSpan{
		TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(), TraceState: sc.TraceState().String(),
		Name: s.Name(), Kind: int(s.SpanKind()), // trace.SpanKind numbers OTLP's SpanKind
		StartTimeUnixNano: nanos(s.StartTime()), EndTimeUnixNano: nanos(s.EndTime()),
		Attributes: keyValues(s.Attributes()),
	}
	if p := s.Parent(); p.IsValid() {
		o.ParentSpanID = p.SpanID().String()
	}
	for _, ev := range s.Events() {
		o.Events = append(o.Events, otlpEvent{TimeUnixNano: nanos(ev.Time), Name: ev.Name, Attributes: keyValues(ev.Attributes)})
	}
	switch st := s.Status(); st.Code {
	case codes.Ok:
		o.Status = otlpStatus{Code: 1}
	case codes.Error:
		o.Status = otlpStatus{Code: 2, Message: st.Description}
	}
	return o
}

func nanos(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

func keyValues(kvs []attribute.KeyValue) []otlpKeyValue {
	out := make([]otlpKeyValue, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, otlpKeyValue{Key: string(kv.Key), Value: anyValue(kv.Value)})
	}
	return out
}

func anyValue(v attribute.Value) otlpAnyValue {
	switch v.Type() {
	case attribute.BOOL:
		b := v.AsBool()
		return otlpAnyValue{BoolValue: &b}
	case attribute.INT64:
		i := strconv.FormatInt(v.AsInt64(), 10)
		return otlpAnyValue{IntValue: &i}
	case attribute.FLOAT64:
		f := v.AsFloat64()
		return otlpAnyValue{DoubleValue: &f}
	case attribute.STRINGSLICE:
		return arrayOf(v.AsStringSlice(), attribute.StringValue)
	case attribute.INT64SLICE:
		return arrayOf(v.AsInt64Slice(), attribute.Int64Value)
	case attribute.BOOLSLICE:
		return arrayOf(v.AsBoolSlice(), attribute.BoolValue)
	case attribute.FLOAT64SLICE:
		return arrayOf(v.AsFloat64Slice(), attribute.Float64Value)
	}
	s := v.String()
	return otlpAnyValue{StringValue: &s}
}

// arrayOf is a slice attribute as OTLP's arrayValue.
func arrayOf[T any](xs []T, value func(T) attribute.Value) otlpAnyValue {
	vals := make([]otlpAnyValue, len(xs))
	for i, x := range xs {
		vals[i] = anyValue(value(x))
	}
	return otlpAnyValue{ArrayValue: &otlpArrayValues{Values: vals}}
}

var _ sdktrace.SpanExporter = (*jsonExporter)(nil)
