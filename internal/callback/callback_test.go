package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePaved implements the callback contract: bearer token, known runs,
// finished runs answer 409; failFirst makes the first requests fail with
// 503 to exercise retries.
type fakePaved struct {
	traceparents []string
	mu           sync.Mutex
	token        string
	runs         map[string]bool // run id -> finished
	failFirst    int
	logs         map[string][]string
	outputs      map[string]map[string]any
	previews     map[string]map[string]any
	verdict      string // the answer to a preview
	auths        []string
}

func newFake() *fakePaved {
	return &fakePaved{token: "s3cret-token", runs: map[string]bool{"r_1": false, "r_done": true},
		logs: map[string][]string{}, outputs: map[string]map[string]any{}, previews: map[string]map[string]any{}, verdict: "apply"}
}

func (f *fakePaved) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	f.traceparents = append(f.traceparents, r.Header.Get("traceparent"))
	if f.failFirst > 0 {
		f.failFirst--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/runs/"), "/")
	if r.Method != http.MethodPost || len(parts) != 2 {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	finished, ok := f.runs[parts[0]]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if finished {
		http.Error(w, "finished", http.StatusConflict)
		return
	}
	switch parts[1] {
	case "logs":
		var b struct{ Lines []string }
		if json.NewDecoder(r.Body).Decode(&b) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		f.logs[parts[0]] = append(f.logs[parts[0]], b.Lines...)
	case "outputs":
		var b struct{ Outputs map[string]any }
		if json.NewDecoder(r.Body).Decode(&b) != nil || b.Outputs == nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		f.outputs[parts[0]] = b.Outputs
	case "preview":
		var b map[string]any
		if json.NewDecoder(r.Body).Decode(&b) != nil || b["digest"] == nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		f.previews[parts[0]] = b
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"verdict": f.verdict, "summary": "+1 ~1 -1 (1 replace)", "reasons": []string{"because"}})
		return
	default:
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestClientContract(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx := context.Background()

	c, err := NewClient(srv.URL+"/", "r_1", f.token, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Backoff = time.Millisecond
	f.failFirst = 2 // two 503s, then success
	if err := c.Logs(ctx, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Outputs(ctx, map[string]any{"url": "https://x"}); err != nil {
		t.Fatal(err)
	}
	if got := f.logs["r_1"]; strings.Join(got, ",") != "a,b" {
		t.Errorf("logs = %v", got)
	}
	if f.outputs["r_1"]["url"] != "https://x" {
		t.Errorf("outputs = %v", f.outputs["r_1"])
	}

	for _, c := range []struct {
		run, token string
		want       error
	}{
		{"r_1", "wrong", ErrUnauthorized},
		{"r_nope", f.token, ErrUnknownRun},
		{"r_done", f.token, ErrRunFinished},
	} {
		cl, _ := NewClient(srv.URL, c.run, c.token, nil)
		cl.Backoff = time.Millisecond
		before := len(f.auths)
		err := cl.Logs(ctx, []string{"x"})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.run, err, c.want)
		}
		if len(f.auths)-before != 1 {
			t.Errorf("%s: a final answer was retried", c.run)
		}
		if err != nil && strings.Contains(err.Error(), c.token) {
			t.Errorf("error leaks the token: %v", err)
		}
	}
}

func TestClientGivesUpOn5xx(t *testing.T) {
	f := newFake()
	f.failFirst = 100
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, _ := NewClient(srv.URL, "r_1", f.token, nil)
	c.Backoff, c.Attempts = time.Millisecond, 3
	err := c.Outputs(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "503") || len(f.auths) != 3 {
		t.Fatalf("err = %v after %d attempts", err, len(f.auths))
	}
	if strings.Contains(err.Error(), f.token) {
		t.Fatal("error leaks the token")
	}
}

func TestReportCommand(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "up.log")
	if err := os.WriteFile(logFile, []byte("Updating (acme-dev-orders)\n+ 32 created\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PAVED_URL", srv.URL)
	t.Setenv("PAVED_RUN_ID", "r_1")
	t.Setenv("PAVED_RUN_TOKEN", f.token)

	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(`{"url":"https://orders.acme.dev.example.com","queues":{"jobs":{"arn":"arn:aws:sqs:x"}}}`))
	cmd.SetArgs([]string{"--log", logFile, "--message", "pulumi up finished", "--outputs", "-"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	if got := f.logs["r_1"]; len(got) != 3 || got[0] != "pulumi up finished" || got[2] != "+ 32 created" {
		t.Errorf("logs = %q", got)
	}
	if f.outputs["r_1"]["url"] != "https://orders.acme.dev.example.com" {
		t.Errorf("outputs = %v", f.outputs["r_1"])
	}
	if strings.Contains(out.String(), f.token) {
		t.Error("output shows the token")
	}
	if cmd.Flags().Lookup("token") != nil {
		t.Error("the token must not be a flag")
	}
}

// The pipeline's TRACEPARENT goes with every callback, so paved's spans for
// them join the run's trace; a malformed one is left out, never fatal.
func TestReportCommandSendsTraceparent(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"not a trace context", ""},
		{"", ""},
	} {
		f := newFake()
		srv := httptest.NewServer(f)
		t.Setenv("PAVED_URL", srv.URL)
		t.Setenv("PAVED_RUN_ID", "r_1")
		t.Setenv("PAVED_RUN_TOKEN", f.token)
		t.Setenv("TRACEPARENT", tc.env)
		cmd := NewCommand()
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SetArgs([]string{"--message", "hello"})
		err := cmd.Execute()
		srv.Close()
		if err != nil {
			t.Fatalf("TRACEPARENT=%q: %v", tc.env, err)
		}
		if len(f.traceparents) != 1 || f.traceparents[0] != tc.want {
			t.Errorf("TRACEPARENT=%q: sent %q, want %q", tc.env, f.traceparents, tc.want)
		}
	}
}

func TestReportCommandNeedsToken(t *testing.T) {
	t.Setenv("PAVED_URL", "http://127.0.0.1:1")
	t.Setenv("PAVED_RUN_ID", "r_1")
	t.Setenv("PAVED_RUN_TOKEN", "")
	cmd := NewCommand()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"--message", "x"})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "PAVED_RUN_TOKEN") {
		t.Fatalf("err = %v", err)
	}
}

// paved preview reads Pulumi's preview, posts its summary and digest, and
// hands paved's verdict to the apply job; a refusal fails the job.
func TestPreviewCommand(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()
	t.Setenv("PAVED_URL", srv.URL)
	t.Setenv("PAVED_RUN_ID", "r_1")
	t.Setenv("PAVED_RUN_TOKEN", f.token)
	verdictFile := filepath.Join(t.TempDir(), "verdict")
	run := func(verdict string) (string, error) {
		f.mu.Lock()
		f.verdict = verdict
		f.mu.Unlock()
		cmd := NewPreviewCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs([]string{"--file", "../preview/testdata/preview.json", "--verdict-file", verdictFile})
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := run("await_approval")
	if err != nil || !strings.Contains(out, "await_approval") {
		t.Fatalf("await: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(verdictFile); string(b) != "await_approval\n" {
		t.Fatalf("verdict file %q", b)
	}
	got := f.previews["r_1"]
	if res, _ := got["resources"].([]any); len(res) != 4 || !strings.HasPrefix(got["digest"].(string), "sha256:") {
		t.Fatalf("posted %v", got)
	}
	if _, err := run("refused"); !errors.Is(err, ErrNotApplied) || !strings.Contains(err.Error(), "because") {
		t.Fatalf("refused: %v", err)
	}
}
