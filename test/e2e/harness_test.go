// Package e2e drives the real paved binary, as a child process, through the
// Port and GitLab simulators over real HTTP, with a real SQLite file.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/demo"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/sim/portsim"
)

var pavedBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "paved-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pavedBin = filepath.Join(dir, "paved")
	build := exec.Command("go", "build", "-o", pavedBin, "./cmd/paved")
	build.Dir = repoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build paved:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

const (
	portID, portSecret = "e2e-client", "e2e-port-secret"
	glToken, hookToken = "glpat-e2e", "e2e-hook-token"
	apiToken, runKey   = "e2e-api-token", "e2e-run-key"
)

// env is one paved process between fresh simulators.
type env struct {
	t      *testing.T
	url    string
	port   *portsim.Sim
	gitlab *gitlabsim.Sim
	dbPath string
	stderr *bytes.Buffer
	cmd    *exec.Cmd
}

type options struct {
	outcome      func(gitlabsim.Pipeline) gitlabsim.Outcome
	faults       gitlabsim.Faults
	pollInterval time.Duration
	// actionTimeout replaces every action's timeout (in a copy of actions/).
	actionTimeout string
}

// copyActions copies actions/ (and its policy) to dir, with every action's
// timeout set to timeout.
func copyActions(t *testing.T, dir, timeout string) string {
	t.Helper()
	src := filepath.Join(repoRoot(), "actions")
	dst := filepath.Join(dir, "actions")
	for _, sub := range []string{"", "policy"} {
		if err := os.MkdirAll(filepath.Join(dst, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(filepath.Join(src, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(src, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if sub == "" {
				b = timeoutLine.ReplaceAll(b, []byte("timeout: "+timeout))
			}
			if err := os.WriteFile(filepath.Join(dst, sub, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

var timeoutLine = regexp.MustCompile(`(?m)^timeout: .*$`)

func start(t *testing.T, opt options) *env {
	t.Helper()
	e := &env{t: t, stderr: &bytes.Buffer{}}
	e.port = portsim.New(portsim.Config{ClientID: portID, ClientSecret: portSecret, AnyBlueprint: true,
		Users: map[string]portsim.User{"dana@acme.example": {Teams: []string{"payments"}}, "sam@acme.example": {Teams: []string{"web"}}}})
	portSrv := httptest.NewServer(e.port.Handler())
	t.Cleanup(portSrv.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // paved binds it; the tiny race is acceptable on loopback in tests
	e.url = "http://" + addr

	if opt.outcome == nil {
		opt.outcome = func(gitlabsim.Pipeline) gitlabsim.Outcome {
			return gitlabsim.Outcome{Status: gitlabsim.StatusSuccess, Created: 20 * time.Millisecond, Pending: 30 * time.Millisecond, Running: 100 * time.Millisecond}
		}
	}
	e.gitlab = gitlabsim.New(gitlabsim.Config{Token: glToken, HookURL: e.url + "/webhooks/gitlab", HookToken: hookToken,
		Decide: opt.outcome, Job: demo.ProvisionJob(&http.Client{Timeout: 5 * time.Second}), Faults: opt.faults})
	glSrv := httptest.NewServer(e.gitlab)
	t.Cleanup(func() { e.gitlab.Close(); glSrv.Close() })

	if opt.pollInterval == 0 {
		opt.pollInterval = time.Minute
	}
	dir := t.TempDir()
	e.dbPath = filepath.Join(dir, "paved.db")
	actions := filepath.Join(repoRoot(), "actions")
	if opt.actionTimeout != "" {
		actions = copyActions(t, dir, opt.actionTimeout)
	}
	cfg := fmt.Sprintf(`server: {listen: %q, publicURL: %q, shutdownTimeout: 5s}
store: {driver: sqlite, path: %q}
actionsDir: %q
policyDir: %q
port: {enabled: true, baseURL: %q, clientID: env:E2E_PORT_ID, clientSecret: env:E2E_PORT_SECRET, signatureTolerance: 5m}
gitlab: {baseURL: %q, token: env:E2E_GITLAB_TOKEN, webhookToken: env:E2E_HOOK_TOKEN, requestsPerMinute: 6000, timeout: 5s, pollInterval: %s}
api: {tokens: [env:E2E_API_TOKEN], runTokenKey: env:E2E_RUN_KEY}
environments: [{name: dev}, {name: staging}, {name: prod, production: true}]
tenants: [acme, globex]
workers: {interval: 50ms, reportConcurrency: 4, lease: 10s}
log: {format: json, level: info}
`, addr, e.url, e.dbPath, actions, filepath.Join(actions, "policy"), portSrv.URL, glSrv.URL, opt.pollInterval)
	cfgPath := filepath.Join(dir, "paved.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.cmd = exec.Command(pavedBin, "serve", "--config", cfgPath)
	e.cmd.Env = append(os.Environ(), "E2E_PORT_ID="+portID, "E2E_PORT_SECRET="+portSecret, "E2E_GITLAB_TOKEN="+glToken,
		"E2E_HOOK_TOKEN="+hookToken, "E2E_API_TOKEN="+apiToken, "E2E_RUN_KEY="+runKey)
	e.cmd.Stderr = e.stderr
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	e.waitReady()
	return e
}

func (e *env) stop() {
	if e.cmd.ProcessState != nil {
		return
	}
	_ = e.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-done
	}
	if e.t.Failed() {
		e.t.Logf("paved log:\n%s", e.stderr.String())
	}
	for _, secret := range []string{portSecret, glToken, hookToken, apiToken, runKey} {
		if strings.Contains(e.stderr.String(), secret) {
			e.t.Errorf("paved logged a secret")
		}
	}
}

func (e *env) waitReady() {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(e.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if e.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("paved did not become ready; log:\n%s", e.stderr.String())
}

// answer is paved's reply to a webhook.
type answer struct {
	Code      int
	RunID     string   `json:"runId"`
	State     string   `json:"state"`
	Reasons   []string `json:"reasons"`
	Duplicate bool     `json:"duplicate"`
	Error     string   `json:"error"`
}

// press sends a signed Port action and returns Port's run id and paved's answer.
func (e *env) press(inv portsim.Invocation) (string, answer) {
	e.t.Helper()
	id, err := e.port.CreateRun(inv)
	if err != nil {
		e.t.Fatal(err)
	}
	body, err := e.port.WebhookBody(id, e.url+"/webhooks/port")
	if err != nil {
		e.t.Fatal(err)
	}
	return id, e.deliver(body, time.Now(), nil)
}

// deliver posts a webhook body signed at ts; tamper may change the request after signing.
func (e *env) deliver(body []byte, ts time.Time, tamper func(*http.Request)) answer {
	e.t.Helper()
	req, err := e.port.SignedRequest(context.Background(), e.url+"/webhooks/port", body, ts)
	if err != nil {
		e.t.Fatal(err)
	}
	if tamper != nil {
		tamper(req)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) answer {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &a)
	a.Code = resp.StatusCode
	return a
}

// api calls paved's API with the API token and decodes the JSON answer.
func (e *env) api(method, path string, out any) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			e.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// waitPort waits until Port's run has a final status and returns it.
func (e *env) waitPort(portRunID string) portsim.RunRecord {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r, ok := e.port.Run(portRunID); ok && r.Status != "" && r.Status != "IN_PROGRESS" {
			time.Sleep(100 * time.Millisecond) // let any (wrong) later report show up
			r, _ = e.port.Run(portRunID)
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, _ := e.port.Run(portRunID)
	e.t.Fatalf("Port run %s never finished: %+v", portRunID, r)
	return r
}

func (e *env) storedRuns() int {
	e.t.Helper()
	var list struct {
		Runs []json.RawMessage `json:"runs"`
	}
	if code := e.api("GET", "/api/v1/runs", &list); code != 200 {
		e.t.Fatalf("list runs: %d", code)
	}
	return len(list.Runs)
}

var (
	dana     = portsim.Invoker{Email: "dana@acme.example", FirstName: "Dana", LastName: "Ruiz"}
	sam      = portsim.Invoker{Email: "sam@acme.example", FirstName: "Sam", LastName: "Okafor"}
	checkout = &portsim.Entity{Identifier: "checkout", Title: "Checkout", Blueprint: "service", Team: []string{"payments"}}
)

func bucket(user portsim.Invoker, envName string, inputs map[string]any) portsim.Invocation {
	in := map[string]any{"tenant": "acme", "environment": envName, "bucketName": "receipts"}
	for k, v := range inputs {
		in[k] = v
	}
	return portsim.Invocation{Action: "add-s3-bucket", Blueprint: "service", Operation: "DAY-2", User: user, Entity: checkout, Inputs: in}
}

func logText(r portsim.RunRecord) string {
	var b strings.Builder
	for _, l := range r.Logs {
		b.WriteString(l.Message + "\n")
	}
	return b.String()
}

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

// runState reads a run's state from paved's API.
func (e *env) runState(id string) string {
	e.t.Helper()
	var got struct{ State string }
	e.api("GET", "/api/v1/runs/"+id, &got)
	return got.State
}

// waitState waits until paved's run reaches state.
func (e *env) waitState(id, state string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if e.runState(id) == state {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("run %s is %s, never %s", id, e.runState(id), state)
}

// post calls paved's API with the API token and a JSON body.
func (e *env) post(path, body string) int {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	return e.do(req).Code
}

func longPipeline(gitlabsim.Pipeline) gitlabsim.Outcome {
	return gitlabsim.Outcome{Status: gitlabsim.StatusSuccess, Created: 10 * time.Millisecond, Pending: 10 * time.Millisecond, Running: time.Hour}
}
