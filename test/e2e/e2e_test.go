package e2e

import (
	"bytes"
	h "github.com/paved-idp/paved/test/harness"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/sim/portsim"
)

func TestActionSucceedsAndReportsBack(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	portRun, ans := e.Press(h.Bucket(h.Dana, "dev", map[string]any{"retentionDays": 14}))
	if ans.Code != http.StatusAccepted || ans.State != "queued" || ans.RunID == "" {
		t.Fatalf("answer = %+v, want 202 queued", ans)
	}
	r := e.WaitPort(portRun)
	if r.Status != "SUCCESS" || r.TerminalAttempts != 1 {
		t.Fatalf("Port run = %s after %d terminal attempts, want one SUCCESS", r.Status, r.TerminalAttempts)
	}
	pipes := e.GitLab.Pipelines()
	if len(pipes) != 1 {
		t.Fatalf("%d pipelines, want 1", len(pipes))
	}
	p := pipes[0]
	if len(r.Links) == 0 || r.Links[len(r.Links)-1] != p.WebURL {
		t.Fatalf("Port links %v, want the pipeline %s", r.Links, p.WebURL)
	}
	for key, want := range map[string]string{"PAVED_RUN_ID": ans.RunID, "PAVED_ACTION": "add-s3-bucket", "PAVED_TENANT": "acme",
		"PAVED_ENVIRONMENT": "dev", "PAVED_SERVICE": "checkout", "PAVED_OPERATION": "DAY-2"} {
		if got, _ := p.Var(key); got != want {
			t.Errorf("pipeline variable %s = %q, want %q", key, got, want)
		}
	}
	for _, v := range p.Variables {
		if v.Key == "PAVED_REQUEST" && (v.VariableType != "file" || !strings.Contains(v.Value, `"bucketName":"receipts"`)) {
			t.Errorf("PAVED_REQUEST = %+v, want a file variable with the inputs", v)
		}
	}
	logs := h.LogText(r)
	for _, want := range []string{"paved accepted run " + ans.RunID, "Pipeline #", "pulumi up --yes --stack acme-dev-checkout", "finished: success"} {
		if !strings.Contains(logs, want) {
			t.Errorf("Port log lacks %q:\n%s", want, logs)
		}
	}
	ents := e.Port.Entities("s3_bucket")
	if len(ents) != 1 || ents[0].Properties["arn"] != "arn:aws:s3:::acme-dev-checkout-receipts" {
		t.Fatalf("entities = %+v, want the bucket with its ARN", ents)
	}
	var got struct {
		State       string `json:"state"`
		PipelineURL string `json:"pipelineUrl"`
		Events      []struct {
			State   string `json:"state"`
			Message string `json:"message"`
		} `json:"events"`
	}
	if code := e.API("GET", "/api/v1/runs/"+ans.RunID, &got); code != 200 || got.State != "succeeded" || got.PipelineURL != p.WebURL {
		t.Fatalf("GET run = %d %+v", code, got)
	}
	var states []string
	for _, ev := range got.Events {
		states = append(states, ev.State)
	}
	if s := strings.Join(states, ","); !strings.Contains(s, "queued") || !strings.Contains(s, "dispatching") || !strings.HasSuffix(s, "succeeded") {
		t.Fatalf("event states %s", s)
	}
}

func TestRefusalsAreStoredAndReported(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	tests := []struct {
		name  string
		inv   portsim.Invocation
		wants []string
	}{
		{"policy: prod change by someone outside the owning team", h.Bucket(h.Sam, "prod", nil), []string{"payments", "sam@acme.example"}},
		{"policy: unknown environment", h.Bucket(h.Dana, "qa", nil), []string{`"qa"`}},
		{"policy: unknown tenant", h.Bucket(h.Dana, "dev", map[string]any{"tenant": "initech"}), []string{`"initech"`}},
		{"schema: every field named", portsim.Invocation{Action: "add-sqs-queue", Blueprint: "service", Operation: "DAY-2", User: h.Dana, Entity: h.Checkout,
			Inputs: map[string]any{"tenant": "acme", "environment": "dev", "queueName": "Bad Name!", "visibilityTimeoutSeconds": 999999}},
			[]string{"inputs.queueName", "inputs.visibilityTimeoutSeconds"}},
		{"schema: a public bucket is not an input", h.Bucket(h.Dana, "dev", map[string]any{"public": true}), []string{"public"}},
		{"unknown action", portsim.Invocation{Action: "launch-rocket", Blueprint: "service", Operation: "DAY-2", User: h.Dana, Entity: h.Checkout,
			Inputs: map[string]any{}}, []string{`"launch-rocket"`, "add-s3-bucket"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			portRun, ans := e.Press(tt.inv)
			if ans.Code != http.StatusAccepted || ans.State != "rejected" || len(ans.Reasons) == 0 {
				t.Fatalf("answer = %+v, want 202 rejected with reasons", ans)
			}
			r := e.WaitPort(portRun)
			if r.Status != "FAILURE" || r.TerminalAttempts != 1 {
				t.Fatalf("Port run = %s (%d attempts), want one FAILURE", r.Status, r.TerminalAttempts)
			}
			for _, want := range tt.wants {
				if !strings.Contains(r.Summary, want) || !strings.Contains(strings.Join(ans.Reasons, " "), want) {
					t.Errorf("summary %q / reasons %q lack %q", r.Summary, ans.Reasons, want)
				}
			}
		})
	}
	if n := e.GitLab.CreateCalls(); n != 0 {
		t.Fatalf("refused runs made %d pipelines", n)
	}
}

func TestPipelineFailureIsReported(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{Outcome: func(gitlabsim.Pipeline) gitlabsim.Outcome {
		return gitlabsim.Outcome{Status: gitlabsim.StatusFailed, Created: 10 * time.Millisecond, Pending: 10 * time.Millisecond, Running: 50 * time.Millisecond}
	}})
	portRun, ans := e.Press(h.Bucket(h.Dana, "dev", nil))
	r := e.WaitPort(portRun)
	if r.Status != "FAILURE" || !strings.Contains(r.Summary, "failed") || !strings.Contains(r.Summary, "/-/pipelines/") {
		t.Fatalf("Port run = %s %q, want FAILURE naming the pipeline", r.Status, r.Summary)
	}
	if ents := e.Port.Entities("s3_bucket"); len(ents) != 1 || ents[0].Properties["status"] != "failed" || ents[0].Properties["arn"] != nil {
		t.Fatalf("a failed run's entity: %v, want only its status, failed", ents)
	}
	var got struct{ State string }
	e.API("GET", "/api/v1/runs/"+ans.RunID, &got)
	if got.State != "failed" {
		t.Fatalf("run state %s, want failed", got.State)
	}
}

func TestJobFailureFromTheProvisioningScript(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	portRun, _ := e.Press(portsim.Invocation{Action: "add-sqs-queue", Blueprint: "service", Operation: "DAY-2", User: h.Dana, Entity: h.Checkout,
		Inputs: map[string]any{"tenant": "acme", "environment": "staging", "queueName": "payment-events"}})
	r := e.WaitPort(portRun)
	if r.Status != "FAILURE" || !strings.Contains(h.LogText(r), "QueueAlreadyExists") || !strings.Contains(r.Summary, "provision") {
		t.Fatalf("Port run = %s %q\n%s", r.Status, r.Summary, h.LogText(r))
	}
}

func TestBadDeliveriesStoreNothing(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	id, err := e.Port.CreateRun(h.Bucket(h.Dana, "dev", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := e.Port.WebhookBody(id, e.URL+"/webhooks/port")
	tests := []struct {
		name   string
		body   []byte
		ts     time.Time
		tamper func(*http.Request)
		code   int
	}{
		{"missing signature", body, time.Now(), func(r *http.Request) { r.Header.Del("X-Port-Signature") }, 401},
		{"wrong signature", body, time.Now(), func(r *http.Request) { r.Header.Set("X-Port-Signature", "v1,AAAA") }, 401},
		{"stale timestamp", body, time.Now().Add(-6 * time.Minute), nil, 401},
		{"future timestamp", body, time.Now().Add(6 * time.Minute), nil, 401},
		{"body changed after signing", body, time.Now(), func(r *http.Request) {
			b := bytes.Replace(body, []byte("receipts"), []byte("receiptz"), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}, 401},
		{"not JSON", []byte("hello"), time.Now(), nil, 400},
		{"JSON that is not a Port run", []byte(`{"hello":"world"}`), time.Now(), nil, 400},
		{"body over 1 MiB", append(append([]byte(`{"x":"`), bytes.Repeat([]byte("a"), 1<<20)...), []byte(`"}`)...), time.Now(), nil, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := e.Deliver(tt.body, tt.ts, tt.tamper); a.Code != tt.code || a.Error == "" {
				t.Fatalf("answer = %+v, want %d with an error", a, tt.code)
			}
		})
	}
	if n := e.StoredRuns(); n != 0 {
		t.Fatalf("%d runs stored from bad deliveries", n)
	}
	req, _ := http.NewRequest("POST", e.URL+"/webhooks/gitlab", strings.NewReader(`{"object_kind":"pipeline"}`))
	req.Header.Set("X-Gitlab-Event", "Pipeline Hook")
	req.Header.Set("X-Gitlab-Token", "wrong")
	if a := e.Do(req); a.Code != 401 {
		t.Fatalf("GitLab hook with a wrong token: %d", a.Code)
	}
	if code := e.API("GET", "/api/v1/runs/r_nope", nil); code != 404 {
		t.Fatalf("unknown run: %d", code)
	}
	noAuth, _ := http.Get(e.URL + "/api/v1/runs")
	noAuth.Body.Close()
	if noAuth.StatusCode != 401 {
		t.Fatalf("API without a token: %d", noAuth.StatusCode)
	}
}

func TestRepeatedDeliveryMakesOnePipeline(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	portRun, first := e.Press(h.Bucket(h.Dana, "dev", nil))
	body, _ := e.Port.WebhookBody(portRun, e.URL+"/webhooks/port")
	for i := 0; i < 3; i++ {
		again := e.Deliver(body, time.Now(), nil)
		if again.Code != http.StatusAccepted || again.RunID != first.RunID || !again.Duplicate {
			t.Fatalf("delivery %d answered %+v, want the first run %s marked duplicate", i+2, again, first.RunID)
		}
	}
	r := e.WaitPort(portRun)
	if r.Status != "SUCCESS" || r.TerminalAttempts != 1 {
		t.Fatalf("Port run %s after %d terminal attempts", r.Status, r.TerminalAttempts)
	}
	if n := e.GitLab.CountByRunID(first.RunID); n != 1 || e.StoredRuns() != 1 {
		t.Fatalf("%d pipelines and %d runs, want 1 and 1", n, e.StoredRuns())
	}
}

func TestLostWebhooksAreCaughtByThePoller(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{GitLabFaults: gitlabsim.Faults{HookDropRate: 1}, PollInterval: 300 * time.Millisecond})
	portRun, _ := e.Press(h.Bucket(h.Dana, "dev", nil))
	if r := e.WaitPort(portRun); r.Status != "SUCCESS" {
		t.Fatalf("Port run %s, want SUCCESS through polling", r.Status)
	}
	if st := e.GitLab.Stats(); st.HooksSent != 0 || st.HooksDropped == 0 {
		t.Fatalf("hooks were delivered (%+v); the test proves nothing", st)
	}
}
