package demo

import (
	"bytes"
	"context"
	"testing"

	"github.com/paved-idp/paved/internal/telemetry/otlptest"
)

// TestDemoTraces runs the demo with tracing on, against an in-process OTLP
// receiver: each run is one trace, from Port's webhook through intake,
// dispatch (with GitLab's trigger call), every report to Port, and the
// pipeline's callbacks, which join through the TRACEPARENT variable.
func TestDemoTraces(t *testing.T) {
	rec := otlptest.New()
	defer rec.Close()
	var out bytes.Buffer
	if err := Run(context.Background(), &out, Options{ActionsDir: "../../actions", PolicyDir: "../../actions/policy", TracingEndpoint: rec.URL}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	spans := rec.Spans() // paved flushed its spans before Run returned
	byID := map[string]otlptest.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	parentName := func(s otlptest.Span) string { return byID[s.ParentID].Name }
	traces := map[string]bool{}
	queued := 0
	for _, in := range spans {
		if in.Name != "intake" || in.Attrs["paved.duplicate"] == "true" {
			continue
		}
		if in.Service != "paved" {
			t.Errorf("intake span's service is %q", in.Service)
		}
		if traces[in.TraceID] {
			t.Errorf("two runs share trace %s", in.TraceID)
		}
		traces[in.TraceID] = true
		if parentName(in) != "POST /webhooks/port" {
			t.Errorf("run %s: intake's parent is %q, want the webhook's server span", in.Attrs["paved.run.id"], parentName(in))
		}
		names := map[string]int{}
		for _, s := range spans {
			if s.TraceID != in.TraceID {
				continue
			}
			names[s.Name+" < "+parentName(s)]++
		}
		if names["report < intake"] == 0 || names["port POST < report"] == 0 {
			t.Errorf("run %s (%s): no report to Port in its trace: %v", in.Attrs["paved.run.id"], in.Attrs["paved.state"], names)
		}
		if in.Attrs["paved.state"] != "queued" {
			continue
		}
		queued++
		for _, want := range []string{
			"dispatch < intake",                     // the dispatcher picked the stored trace context up
			"gitlab POST < dispatch",                // the trigger call
			"POST /api/v1/runs/:id/logs < dispatch", // the pipeline sent TRACEPARENT back
		} {
			if names[want] == 0 {
				t.Errorf("run %s: no %q span in its trace: %v", in.Attrs["paved.run.id"], want, names)
			}
		}
	}
	if len(traces) != 5 || queued != 3 {
		t.Fatalf("traced %d runs (%d queued), want the demo's 5 (3 queued); %d spans", len(traces), queued, len(spans))
	}
}
