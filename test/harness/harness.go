// Package harness runs the real paved binary as a child process between
// the Port and GitLab simulators, over real HTTP and with a real SQLite file,
// for the end-to-end and chaos suites under test/.
package harness

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
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/demo"
	"github.com/paved-idp/paved/internal/sim/cloudsim"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/sim/portsim"
	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
)

// Credentials of the test world; they exist only in the test process and
// the paved it starts.
const (
	PortID, PortSecret = "e2e-client", "e2e-port-secret"
	GitLabToken        = "glpat-e2e"
	HookToken          = "e2e-hook-token"
	APIToken, RunKey   = "e2e-api-token", "e2e-run-key"
)

// Build compiles paved into dir and returns the binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "paved")
	build := exec.Command("go", "build", "-o", bin, "./cmd/paved")
	build.Dir = RepoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build paved: %w", err)
	}
	return bin, nil
}

// Main builds paved, runs the package's tests and cleans up; call it from
// TestMain. The binary's path goes to *bin.
func Main(m *testing.M, bin *string) { MainRun(m, bin, (*testing.M).Run) }

// MainRun is Main with the tests run by run (e.g. pgtest.Main, which also
// stops the PostgreSQL cluster the tests started).
func MainRun(m *testing.M, bin *string, run func(*testing.M) int) {
	dir, err := os.MkdirTemp("", "paved-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *bin, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// RepoRoot is the checkout's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Options shape the test world.
type Options struct {
	Outcome      func(gitlabsim.Pipeline) gitlabsim.Outcome // default: success in ~150 ms
	GitLabFaults gitlabsim.Faults
	PortFaults   portsim.Faults
	// PortRateLimit and PortRateLimitPeriod are the Port simulator's rate
	// limit (default 1,000 requests per 5m, as Port documents).
	PortRateLimit       int
	PortRateLimitPeriod time.Duration
	PollInterval        time.Duration // default 1m
	GitLabTimeout       time.Duration // default 5s
	PortTimeout         time.Duration // default 5s
	// ActionTimeout replaces every action's timeout (in a copy of actions/).
	ActionTimeout string
	// ReconcileAfter is gitlab.reconcileAfter (default 3s).
	ReconcileAfter time.Duration
	// Limits is the config's limits block, e.g. "{runLogLines: 5}".
	Limits string
	// DatabaseURL, when set, runs paved on PostgreSQL at that URL instead
	// of a SQLite file; replicas (see Replica) share it.
	DatabaseURL string
	// Workers is the config's workers block (default interval 50ms,
	// reportConcurrency 8, lease 10s).
	Workers string
	// Extra is more config, appended as is (e.g. an operator: block).
	Extra string
	// Env is more environment for paved, as NAME=value. The values are
	// secrets: paved's log must never hold one.
	Env []string
	// APIClients are paved's named API callers (api.clients), by name.
	APIClients map[string]APIClient
}

// APIClient is one named caller of paved's API.
type APIClient struct {
	// Token reaches paved through its environment; it is a secret, which
	// paved's log must never hold.
	Token string
	// Actions, when set, are all the client may submit.
	Actions []string
}

// apiClients renders clients as the api block's clients entry and the
// environment that carries their tokens.
func apiClients(clients map[string]APIClient) (cfg string, env []string) {
	if len(clients) == 0 {
		return "", nil
	}
	names := make([]string, 0, len(clients))
	for name := range clients {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(", clients: {")
	for i, name := range names {
		c := clients[name]
		v := fmt.Sprintf("E2E_API_CLIENT_%d", i)
		env = append(env, v+"="+c.Token)
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q: {token: env:%s", name, v)
		if len(c.Actions) > 0 {
			quoted := make([]string, len(c.Actions))
			for j, a := range c.Actions {
				quoted[j] = strconv.Quote(a)
			}
			fmt.Fprintf(&b, ", actions: [%s]", strings.Join(quoted, ", "))
		}
		b.WriteString("}")
	}
	b.WriteString("}")
	return b.String(), env
}

// Env is one paved process (restartable) between fresh simulators.
type Env struct {
	t      testing.TB
	bin    string
	URL    string
	Port   *portsim.Sim
	GitLab *gitlabsim.Sim
	// Cloud is what the pipeline jobs provision into; a test may change it
	// behind paved's back (drift, another tool).
	Cloud  *cloudsim.Cloud
	DBPath string

	cfgPath string
	dir     string
	dbURL   string
	env     []string // Options.Env
	// config renders paved's config for a listen address.
	config func(addr string) string
	mu     sync.Mutex
	stderr bytes.Buffer
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// Start starts the simulators and paved, and waits until paved is ready.
func Start(t testing.TB, bin string, opt Options) *Env {
	t.Helper()
	clientsCfg, clientsEnv := apiClients(opt.APIClients)
	e := &Env{t: t, bin: bin, env: append(append([]string(nil), opt.Env...), clientsEnv...)}
	e.Port = portsim.New(portsim.Config{ClientID: PortID, ClientSecret: PortSecret, AnyBlueprint: true, Faults: opt.PortFaults, RateLimit: opt.PortRateLimit, RateLimitPeriod: opt.PortRateLimitPeriod,
		Users: map[string]portsim.User{"dana@acme.example": {Teams: []string{"payments"}}, "sam@acme.example": {Teams: []string{"web"}},
			// A team whose name is not its identifier, as in most Port orgs.
			"eve@acme.example": {Teams: []string{"Payments EU"}, TeamIdentifiers: []string{"payments_eu"}},
			// The platform team, which the shipped policy names among production approvers.
			"lee@acme.example": {Teams: []string{"platform"}}}})
	portSrv := httptest.NewServer(e.Port.Handler())
	t.Cleanup(portSrv.Close)

	addr := freeAddr(t)
	e.URL = "http://" + addr

	if opt.Outcome == nil {
		opt.Outcome = func(gitlabsim.Pipeline) gitlabsim.Outcome {
			return gitlabsim.Outcome{Status: gitlabsim.StatusSuccess, Created: 20 * time.Millisecond, Pending: 30 * time.Millisecond, Running: 100 * time.Millisecond}
		}
	}
	e.Cloud = cloudsim.NewCloud()
	e.GitLab = gitlabsim.New(gitlabsim.Config{Token: GitLabToken, HookURL: e.URL + "/webhooks/gitlab", HookToken: HookToken,
		Decide: opt.Outcome, Job: demo.ProvisionJob(&http.Client{Timeout: 5 * time.Second}, e.Cloud), Faults: opt.GitLabFaults})
	glSrv := httptest.NewServer(e.GitLab)
	t.Cleanup(func() { e.GitLab.Close(); glSrv.Close() })

	opt.PollInterval = or(opt.PollInterval, time.Minute)
	opt.GitLabTimeout = or(opt.GitLabTimeout, 5*time.Second)
	opt.PortTimeout = or(opt.PortTimeout, 5*time.Second)
	opt.ReconcileAfter = or(opt.ReconcileAfter, 3*time.Second)
	if opt.Limits == "" {
		opt.Limits = "{}"
	}
	dir := t.TempDir()
	e.DBPath = filepath.Join(dir, "paved.db")
	actions := filepath.Join(RepoRoot(), "actions")
	if opt.ActionTimeout != "" {
		actions = copyActions(t, dir, opt.ActionTimeout)
	}
	if opt.DatabaseURL == "" && os.Getenv(StoreEnv) == "postgres" {
		opt.DatabaseURL = pgtest.DSN(t)
	}
	storeCfg := fmt.Sprintf("{driver: sqlite, path: %q}", e.DBPath)
	if opt.DatabaseURL != "" {
		storeCfg, e.dbURL = "{driver: postgres, dsn: env:E2E_DATABASE_URL}", opt.DatabaseURL
	}
	if opt.Workers == "" {
		opt.Workers = "{interval: 50ms, reportConcurrency: 8, lease: 10s}"
	}
	e.dir = dir
	e.config = func(addr string) string {
		return fmt.Sprintf(`server: {listen: %q, publicURL: %q, shutdownTimeout: 5s}
store: %s
actionsDir: %q
policyDir: %q
port: {enabled: true, baseURL: %q, clientID: env:E2E_PORT_ID, clientSecret: env:E2E_PORT_SECRET, signatureTolerance: 5m, timeout: %s}
gitlab: {baseURL: %q, token: env:E2E_GITLAB_TOKEN, webhookToken: env:E2E_HOOK_TOKEN, requestsPerMinute: 6000, timeout: %s, pollInterval: %s, reconcileAfter: %s}
api: {tokens: [env:E2E_API_TOKEN], runTokenKey: env:E2E_RUN_KEY%s}
environments: [{name: dev}, {name: staging}, {name: prod, production: true}]
tenants: [acme, globex]
workers: %s
limits: %s
log: {format: json, level: info}
%s
`, addr, "http://"+addr, storeCfg, actions, filepath.Join(actions, "policy"), portSrv.URL, opt.PortTimeout, glSrv.URL, opt.GitLabTimeout, opt.PollInterval, opt.ReconcileAfter, clientsCfg, opt.Workers, opt.Limits, opt.Extra)
	}
	e.cfgPath = filepath.Join(dir, "paved.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(e.config(addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	e.launch()
	return e
}

// StoreEnv names the variable that runs every Env on PostgreSQL
// (PAVED_E2E_STORE=postgres) instead of SQLite; the package's TestMain must
// then run its tests through pgtest.Main (see MainRun).
const StoreEnv = "PAVED_E2E_STORE"

// OnPostgres reports whether e's store is PostgreSQL.
func (e *Env) OnPostgres() bool { return e.dbURL != "" }

// Replica starts another paved process beside e, on its own address but
// sharing e's simulators and store (PostgreSQL: Options.DatabaseURL). Port
// webhooks reach it through its own Deliver; GitLab's hooks still go to e.
func (e *Env) Replica() *Env {
	e.t.Helper()
	if e.dbURL == "" {
		e.t.Fatal("harness: replicas need a shared store (Options.DatabaseURL)")
	}
	addr := freeAddr(e.t)
	r := &Env{t: e.t, bin: e.bin, URL: "http://" + addr, Port: e.Port, GitLab: e.GitLab, dir: e.dir, dbURL: e.dbURL, env: e.env, config: e.config}
	r.cfgPath = filepath.Join(e.dir, fmt.Sprintf("paved-%s.yaml", strings.ReplaceAll(addr, ":", "-")))
	if err := os.WriteFile(r.cfgPath, []byte(e.config(addr)), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(r.Stop)
	r.launch()
	return r
}

// freeAddr is a loopback address nobody listens on (paved binds it; the
// tiny race is acceptable on loopback in tests).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func or(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// launch starts the paved process and waits until it is ready.
func (e *Env) launch() {
	e.t.Helper()
	cmd := exec.Command(e.bin, "serve", "--config", e.cfgPath)
	cmd.Env = append(os.Environ(), "E2E_PORT_ID="+PortID, "E2E_PORT_SECRET="+PortSecret, "E2E_GITLAB_TOKEN="+GitLabToken,
		"E2E_HOOK_TOKEN="+HookToken, "E2E_API_TOKEN="+APIToken, "E2E_RUN_KEY="+RunKey, "E2E_DATABASE_URL="+e.dbURL)
	cmd.Env = append(cmd.Env, e.env...)
	cmd.Stderr = lockedWriter{&e.mu, &e.stderr}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	e.mu.Lock()
	e.cmd, e.exited = cmd, exited
	e.starts++
	e.mu.Unlock()
	e.waitReady(exited)
}

// Kill ends paved with SIGKILL, as a crash would.
func (e *Env) Kill() {
	e.mu.Lock()
	cmd, exited := e.cmd, e.exited
	e.mu.Unlock()
	_ = cmd.Process.Kill()
	<-exited
}

// Term ends paved with SIGTERM (a graceful shutdown) and waits for it.
func (e *Env) Term() {
	e.mu.Lock()
	cmd, exited := e.cmd, e.exited
	e.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		e.t.Errorf("paved did not stop within 15s of SIGTERM")
		_ = cmd.Process.Kill()
		<-exited
	}
	if cmd.ProcessState != nil && !cmd.ProcessState.Success() {
		e.t.Errorf("paved exited %v after SIGTERM, want 0", cmd.ProcessState)
	}
}

// Restart starts paved again on the same database and address.
func (e *Env) Restart() { e.launch() }

// Starts counts the times paved was started.
func (e *Env) Starts() int { e.mu.Lock(); defer e.mu.Unlock(); return e.starts }

// Stop ends paved with SIGINT (a graceful shutdown) and checks its log
// holds no secret.
func (e *Env) Stop() {
	e.mu.Lock()
	cmd, exited := e.cmd, e.exited
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	log := e.Log()
	if e.t.Failed() {
		full := filepath.Join(os.TempDir(), "paved-"+strings.NewReplacer("/", "-", " ", "_").Replace(e.t.Name())+".log")
		if err := os.WriteFile(full, []byte(log), 0o600); err == nil {
			e.t.Logf("paved's whole log: %s", full)
		}
		e.t.Logf("paved log (tail):\n%s", tail(log, 8000))
	}
	secrets := []string{PortSecret, GitLabToken, HookToken, APIToken, RunKey}
	for _, kv := range e.env {
		if _, v, _ := strings.Cut(kv, "="); v != "" {
			secrets = append(secrets, v)
		}
	}
	for _, secret := range secrets {
		if strings.Contains(log, secret) {
			e.t.Errorf("paved logged a secret")
		}
	}
}

// Log is everything paved wrote to stderr, across restarts.
func (e *Env) Log() string { e.mu.Lock(); defer e.mu.Unlock(); return e.stderr.String() }

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (e *Env) waitReady(exited <-chan struct{}) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(e.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			e.t.Fatalf("paved exited at start; log:\n%s", tail(e.Log(), 8000))
		case <-time.After(25 * time.Millisecond):
		}
	}
	e.t.Fatalf("paved did not become ready; log:\n%s", tail(e.Log(), 8000))
}

// copyActions copies actions/ (and its policy) to dir, with every action's
// timeout set to timeout.
func copyActions(t testing.TB, dir, timeout string) string {
	t.Helper()
	src := filepath.Join(RepoRoot(), "actions")
	dst := filepath.Join(dir, "actions")
	for _, sub := range []string{"", "policy"} {
		if err := os.MkdirAll(filepath.Join(dst, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(filepath.Join(src, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range entries {
			if ent.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(src, sub, ent.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if sub == "" {
				b = timeoutLine.ReplaceAll(b, []byte("timeout: "+timeout))
			}
			if err := os.WriteFile(filepath.Join(dst, sub, ent.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

var timeoutLine = regexp.MustCompile(`(?m)^timeout: .*$`)

// Answer is paved's reply to a webhook or API call.
type Answer struct {
	Code      int
	RunID     string   `json:"runId"`
	State     string   `json:"state"`
	Reasons   []string `json:"reasons"`
	Duplicate bool     `json:"duplicate"`
	Error     string   `json:"error"`
	// Applied and Ignored are a GitLab hook's answer.
	Applied string `json:"applied"`
	Ignored string `json:"ignored"`
}

// Press sends a signed Port action and returns Port's run id and paved's answer.
func (e *Env) Press(inv portsim.Invocation) (string, Answer) {
	e.t.Helper()
	id, err := e.Port.CreateRun(inv)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := e.TryDeliver(e.WebhookBody(id), time.Now(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return id, a
}

// WebhookBody is Port's webhook body for one of its runs.
func (e *Env) WebhookBody(portRunID string) []byte {
	body, err := e.Port.WebhookBody(portRunID, e.URL+"/webhooks/port")
	if err != nil {
		e.t.Fatal(err)
	}
	return body
}

// Deliver posts a webhook body signed at ts; tamper may change the request after signing.
func (e *Env) Deliver(body []byte, ts time.Time, tamper func(*http.Request)) Answer {
	e.t.Helper()
	a, err := e.TryDeliver(body, ts, tamper)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// TryDeliver is Deliver that returns transport errors (paved down).
func (e *Env) TryDeliver(body []byte, ts time.Time, tamper func(*http.Request)) (Answer, error) {
	req, err := e.Port.SignedRequest(context.Background(), e.URL+"/webhooks/port", body, ts)
	if err != nil {
		return Answer{}, err
	}
	if tamper != nil {
		tamper(req)
	}
	return e.TryDo(req)
}

// GitLabHook posts a Pipeline Hook body to paved as GitLab would, with the
// right token, and returns paved's answer.
func (e *Env) GitLabHook(body []byte) Answer {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.URL+"/webhooks/gitlab", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Pipeline Hook")
	req.Header.Set("X-Gitlab-Token", HookToken)
	return e.Do(req)
}

// Do sends a request and decodes paved's JSON answer.
func (e *Env) Do(req *http.Request) Answer {
	e.t.Helper()
	a, err := e.TryDo(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

var client = &http.Client{Timeout: 10 * time.Second}

// TryDo is Do that returns transport errors.
func (e *Env) TryDo(req *http.Request) (Answer, error) {
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	var a Answer
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &a)
	a.Code = resp.StatusCode
	return a, nil
}

// API calls paved's API with the API token and decodes the JSON answer into out.
func (e *Env) API(method, path string, out any) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+APIToken)
	resp, err := client.Do(req)
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

// Post calls paved's API with the API token and a JSON body.
func (e *Env) Post(path, body string) int {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+APIToken)
	req.Header.Set("Content-Type", "application/json")
	return e.Do(req).Code
}

// Finished reports whether Port holds a final status for the run.
func (e *Env) Finished(portRunID string) bool {
	r, ok := e.Port.Run(portRunID)
	return ok && (r.Status == "SUCCESS" || r.Status == "FAILURE")
}

// WaitPort waits until Port's run has a final status and returns it.
func (e *Env) WaitPort(portRunID string) portsim.RunRecord {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if e.Finished(portRunID) {
			time.Sleep(100 * time.Millisecond) // let any (wrong) later report show up
			r, _ := e.Port.Run(portRunID)
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, _ := e.Port.Run(portRunID)
	e.t.Fatalf("Port run %s never finished: %+v", portRunID, r)
	return r
}

// StoredRuns counts the runs paved holds.
func (e *Env) StoredRuns() int {
	e.t.Helper()
	var list struct {
		Runs []json.RawMessage `json:"runs"`
	}
	if code := e.API("GET", "/api/v1/runs?limit=1000", &list); code != 200 {
		e.t.Fatalf("list runs: %d", code)
	}
	return len(list.Runs)
}

// RunState reads a run's state from paved's API.
func (e *Env) RunState(id string) string {
	e.t.Helper()
	var got struct{ State string }
	e.API("GET", "/api/v1/runs/"+id, &got)
	return got.State
}

// WaitState waits until paved's run reaches state.
func (e *Env) WaitState(id, state string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if e.RunState(id) == state {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("run %s is %s, never %s", id, e.RunState(id), state)
}

// The test world's people and service.
var (
	Dana     = portsim.Invoker{Email: "dana@acme.example", FirstName: "Dana", LastName: "Ruiz"}
	Sam      = portsim.Invoker{Email: "sam@acme.example", FirstName: "Sam", LastName: "Okafor"}
	Eve      = portsim.Invoker{Email: "eve@acme.example", FirstName: "Eve", LastName: "Lund"}
	Lee      = portsim.Invoker{Email: "lee@acme.example", FirstName: "Lee", LastName: "Park"}
	Checkout = &portsim.Entity{Identifier: "checkout", Title: "Checkout", Blueprint: "service", Team: []string{"payments"}}
)

// Bucket is an add-s3-bucket action on service checkout.
func Bucket(user portsim.Invoker, envName string, inputs map[string]any) portsim.Invocation {
	in := map[string]any{"tenant": "acme", "environment": envName, "bucketName": "receipts"}
	for k, v := range inputs {
		in[k] = v
	}
	return portsim.Invocation{Action: "add-s3-bucket", Blueprint: "service", Operation: "DAY-2", User: user, Entity: Checkout, Inputs: in}
}

// LogText is a Port run's log, one line each.
func LogText(r portsim.RunRecord) string {
	var b strings.Builder
	for _, l := range r.Logs {
		b.WriteString(l.Message + "\n")
	}
	return b.String()
}

// LongPipeline keeps pipelines running for an hour.
func LongPipeline(gitlabsim.Pipeline) gitlabsim.Outcome {
	return gitlabsim.Outcome{Status: gitlabsim.StatusSuccess, Created: 10 * time.Millisecond, Pending: 10 * time.Millisecond, Running: time.Hour}
}
