package runreport

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/portal/port"
	"github.com/paved-idp/paved/internal/run"
)

// seen is one request as Port would receive it.
type seen struct {
	Method, Path, Query string
	Body                map[string]any
}

// fakeAPI stands in for *port.Client, whose own tests cover the token, the
// transport and the errors: it records each call and, when answer is set,
// decodes answer's JSON into the call's out.
type fakeAPI struct {
	t      *testing.T
	calls  []seen
	answer func(method, path string) string
}

func (f *fakeAPI) Call(_ context.Context, op, method, path string, body, out any) error {
	s := seen{Method: method}
	s.Path, s.Query, _ = strings.Cut(path, "?")
	if body != nil {
		// Compared as Port decodes it, so omitempty and the JSON names count.
		raw, err := json.Marshal(body)
		if err != nil {
			f.t.Fatalf("%s: encode body: %v", op, err)
		}
		if err := json.Unmarshal(raw, &s.Body); err != nil {
			f.t.Fatalf("%s: body is not a JSON object: %v", op, err)
		}
	}
	f.calls = append(f.calls, s)
	if f.answer != nil && out != nil {
		return json.Unmarshal([]byte(f.answer(method, path)), out)
	}
	return nil
}

func TestReportRequests(t *testing.T) {
	entity := &run.EntityUpsert{
		Blueprint: "queue", Identifier: "acme-staging-orders", Title: "orders",
		Team: []string{"payments"}, Properties: map[string]any{"arn": "arn:aws:sqs:eu-west-1:1:orders", "fifo": true},
		Relations: map[string]any{"service": "payments-api"},
	}
	const pipeline = "https://gitlab.example.com/platform/infra/-/pipelines/4711"
	tests := []struct {
		name  string
		runID string
		rep   run.Report
		want  []seen
	}{
		{"log", "r_1", run.Report{Log: "pulumi up: 3 to create"}, []seen{
			{Method: "POST", Path: "/v1/actions/runs/r_1/logs", Body: map[string]any{"message": "pulumi up: 3 to create"}},
		}},
		{"status label", "r_1", run.Report{StatusLabel: "Queued (2nd in line)"}, []seen{
			{Method: "PATCH", Path: "/v1/actions/runs/r_1", Body: map[string]any{"statusLabel": "Queued (2nd in line)"}},
		}},
		{"link", "r_1", run.Report{Link: pipeline}, []seen{
			{Method: "PATCH", Path: "/v1/actions/runs/r_1", Body: map[string]any{"link": []any{pipeline}}},
		}},
		{"log and label in one log call", "r_1", run.Report{Log: "Starting a pipeline", StatusLabel: "Starting pipeline"}, []seen{
			{Method: "POST", Path: "/v1/actions/runs/r_1/logs", Body: map[string]any{"message": "Starting a pipeline", "statusLabel": "Starting pipeline"}},
		}},
		{"link and label in one patch", "r_1", run.Report{Link: pipeline, StatusLabel: "Running"}, []seen{
			{Method: "PATCH", Path: "/v1/actions/runs/r_1", Body: map[string]any{"link": []any{pipeline}, "statusLabel": "Running"}},
		}},
		{"entity", "r_1", run.Report{Entity: entity}, []seen{
			{Method: "POST", Path: "/v1/blueprints/queue/entities", Query: "create_missing_related_entities=true&merge=true&run_id=r_1&upsert=true", Body: map[string]any{
				"identifier": "acme-staging-orders", "title": "orders", "team": []any{"payments"},
				"properties": map[string]any{"arn": "arn:aws:sqs:eu-west-1:1:orders", "fifo": true},
				"relations":  map[string]any{"service": "payments-api"},
			}},
		}},
		{"entity without properties", "r_1", run.Report{Entity: &run.EntityUpsert{Blueprint: "service", Identifier: "svc"}}, []seen{
			{Method: "POST", Path: "/v1/blueprints/service/entities", Query: "create_missing_related_entities=true&merge=true&run_id=r_1&upsert=true", Body: map[string]any{
				"identifier": "svc", "properties": map[string]any{},
			}},
		}},
		{"final success", "r_1", run.Report{Final: run.Success, Summary: "Queue orders created", StatusLabel: "Done", Link: pipeline}, []seen{
			{Method: "PATCH", Path: "/v1/actions/runs/r_1", Body: map[string]any{
				"status": "SUCCESS", "summary": "Queue orders created", "statusLabel": "Done", "link": []any{pipeline},
			}},
		}},
		{"everything, in order", "r_1", run.Report{Entity: entity, Log: "done", Final: run.Failure, Summary: "pulumi up failed"}, []seen{
			{Method: "POST", Path: "/v1/blueprints/queue/entities", Query: "create_missing_related_entities=true&merge=true&run_id=r_1&upsert=true", Body: map[string]any{
				"identifier": "acme-staging-orders", "title": "orders", "team": []any{"payments"},
				"properties": map[string]any{"arn": "arn:aws:sqs:eu-west-1:1:orders", "fifo": true},
				"relations":  map[string]any{"service": "payments-api"},
			}},
			{Method: "POST", Path: "/v1/actions/runs/r_1/logs", Body: map[string]any{"message": "done"}},
			{Method: "PATCH", Path: "/v1/actions/runs/r_1", Body: map[string]any{"status": "FAILURE", "statusLabel": "Failed", "summary": "pulumi up failed"}},
		}},
		{"huge log is truncated", "r_1", run.Report{Log: strings.Repeat("é", 200<<10)}, []seen{
			{Method: "POST", Path: "/v1/actions/runs/r_1/logs", Body: map[string]any{"message": strings.Repeat("é", 128<<10) + " …[truncated by paved]"}},
		}},
		{"empty report sends nothing", "r_1", run.Report{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAPI{t: t}
			if err := Report(context.Background(), f, tt.runID, tt.rep); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f.calls, tt.want) {
				t.Fatalf("requests:\n%+v\nwant\n%+v", f.calls, tt.want)
			}
		})
	}
}

func TestReportRefusesInvalid(t *testing.T) {
	tests := []struct {
		name  string
		runID string
		rep   run.Report
	}{
		{"unknown final", "r_1", run.Report{Final: "DONE"}},
		{"empty run id", "", run.Report{Log: "x"}},
		{"run id with a slash", "r/1", run.Report{Log: "x"}},
		{"run id ..", "..", run.Report{StatusLabel: "x"}},
		{"run id with a space", "r 1", run.Report{Final: run.Success}},
		{"run id with a newline", "r_1\n", run.Report{Link: "https://x"}},
		{"run id with a control character", "r\x00", run.Report{Log: "x"}},
		{"run id with a query", "r?x=1", run.Report{Entity: &run.EntityUpsert{Blueprint: "b", Identifier: "svc"}}},
		{"run id too long", strings.Repeat("r", 129), run.Report{Log: "x"}},
		{"huge run id", strings.Repeat("r", 500<<10), run.Report{Final: run.Failure}},
		{"entity without blueprint", "r_1", run.Report{Entity: &run.EntityUpsert{Identifier: "svc"}}},
		{"entity identifier with space", "r_1", run.Report{Entity: &run.EntityUpsert{Blueprint: "b", Identifier: "my svc"}}},
		{"entity identifier ..", "r_1", run.Report{Entity: &run.EntityUpsert{Blueprint: "b", Identifier: ".."}}},
		{"huge entity identifier", "r_1", run.Report{Entity: &run.EntityUpsert{Blueprint: strings.Repeat("b", 500<<10), Identifier: strings.Repeat("é ", 250<<10)}}},
		{"huge unknown final", "r_1", run.Report{Final: strings.Repeat("F", 500<<10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAPI{t: t}
			err := Report(context.Background(), f, tt.runID, tt.rep)
			if err == nil || !port.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent error", err)
			}
			if n := len(err.Error()); n > 300 {
				t.Fatalf("error of %d bytes: %.400s", n, err)
			}
			if n := len(f.calls); n != 0 {
				t.Fatalf("sent %d requests for an invalid report", n)
			}
		})
	}
}

func TestFinishedRefusesInvalidRunID(t *testing.T) {
	for _, id := range []string{"", "..", "r/1", "r 1", "r\x1b", strings.Repeat("r", 129), strings.Repeat("r/", 250<<10)} {
		f := &fakeAPI{t: t}
		_, err := Finished(context.Background(), f, id)
		if err == nil || !port.IsPermanent(err) || len(err.Error()) > 300 {
			t.Fatalf("run id %.40q: err = %.400v, want a short permanent error", id, err)
		}
		if n := len(f.calls); n != 0 {
			t.Fatalf("run id %.40q: sent %d requests", id, n)
		}
	}
}

func TestFinished(t *testing.T) {
	for _, tt := range []struct {
		status string
		want   bool
	}{{"IN_PROGRESS", false}, {"SUCCESS", true}, {"FAILURE", true}} {
		f := &fakeAPI{t: t, answer: func(method, path string) string {
			if method != http.MethodGet || path != "/v1/actions/runs/r_1" {
				t.Errorf("%s %s", method, path)
			}
			return fmt.Sprintf(`{"ok":true,"run":{"id":"r_1","status":%q}}`, tt.status)
		}}
		got, err := Finished(context.Background(), f, "r_1")
		if err != nil || got != tt.want {
			t.Fatalf("status %s: finished=%v err=%v", tt.status, got, err)
		}
	}
}
