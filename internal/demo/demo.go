// Package demo runs paved end to end on loopback with no account anywhere:
// a real paved (HTTP server, SQLite file, workers) between a simulated Port
// and a simulated GitLab whose "provisioning job" posts logs and outputs
// back the way the real pipeline does. It sends four signed Port actions —
// one that succeeds, one the policy refuses, one whose inputs fail the
// schema, one whose pipeline fails — shows their progress live, and prints
// what Port ends up holding.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/app"
	"github.com/paved-idp/paved/internal/config"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/cloudsim"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/sim/portsim"
	"github.com/paved-idp/paved/internal/store"
)

// Options tune the demo.
type Options struct {
	ActionsDir, PolicyDir string
	Verbose               bool          // paved's own log lines on stderr
	Timeout               time.Duration // default 50s
	// TracingEndpoint, when set, is an OTLP/HTTP collector paved sends
	// its traces to.
	TracingEndpoint string
}

// Fixed demo credentials; they exist only inside this process.
const (
	portClientID     = "demo-client-id"
	portClientSecret = "demo-client-secret"
	gitlabToken      = "glpat-demo"
	hookToken        = "demo-hook-token"
)

// scenario is one button press and what should come of it.
type scenario struct {
	name string
	inv  portsim.Invocation
	want string // Port's final status
	// portRunID is set once sent.
	portRunID string
}

func scenarios() []*scenario {
	checkout := &portsim.Entity{Identifier: "checkout", Title: "Checkout", Blueprint: "service", Team: []string{"payments"},
		Properties: map[string]any{"language": "go", "tenancy": "single"}}
	dana := portsim.Invoker{Email: "dana@acme.example", FirstName: "Dana", LastName: "Ruiz"}
	sam := portsim.Invoker{Email: "sam@acme.example", FirstName: "Sam", LastName: "Okafor"}
	return []*scenario{
		{name: "S3 bucket for checkout in dev (succeeds)", want: run.Success, inv: portsim.Invocation{
			Action: "add-s3-bucket", Blueprint: "service", Operation: "DAY-2", User: dana, Entity: checkout,
			Inputs: map[string]any{"tenant": "acme", "environment": "dev", "bucketName": "receipts", "versioning": true, "retentionDays": 30}}},
		{name: "S3 bucket in prod by someone outside the owning team (policy refuses)", want: run.Failure, inv: portsim.Invocation{
			Action: "add-s3-bucket", Blueprint: "service", Operation: "DAY-2", User: sam, Entity: checkout,
			Inputs: map[string]any{"tenant": "acme", "environment": "prod", "bucketName": "exports"}}},
		{name: "SQS queue with bad inputs (schema refuses)", want: run.Failure, inv: portsim.Invocation{
			Action: "add-sqs-queue", Blueprint: "service", Operation: "DAY-2", User: dana, Entity: checkout,
			Inputs: map[string]any{"tenant": "acme", "environment": "dev", "queueName": "Orders Queue!", "visibilityTimeoutSeconds": 999999}}},
		{name: "SQS queue whose pipeline fails", want: run.Failure, inv: portsim.Invocation{
			Action: "add-sqs-queue", Blueprint: "service", Operation: "DAY-2", User: dana, Entity: checkout,
			Inputs: map[string]any{"tenant": "acme", "environment": "staging", "queueName": "payment-events"}}},
		{name: "SQS queue in dev as a dry run (previewed, nothing applied)", want: run.Success, inv: portsim.Invocation{
			Action: "add-sqs-queue", Blueprint: "service", Operation: "DAY-2", User: dana, Entity: checkout,
			Inputs: map[string]any{"tenant": "acme", "environment": "dev", "queueName": "orders", "dryRun": true}}},
	}
}

// Run runs the demo and returns an error if any run did not end as expected.
func Run(ctx context.Context, out io.Writer, opt Options) error {
	if opt.Timeout == 0 {
		opt.Timeout = 50 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "paved-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)

	pavedLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: listen: %w", err)
	}
	pavedURL := "http://" + pavedLn.Addr().String()
	port := portsim.New(portsim.Config{ClientID: portClientID, ClientSecret: portClientSecret, AnyBlueprint: true,
		Users: map[string]portsim.User{"dana@acme.example": {Teams: []string{"payments"}}, "sam@acme.example": {Teams: []string{"web"}}}})
	portURL, stopPort, err := serve(port.Handler())
	if err != nil {
		return err
	}
	defer stopPort()
	cloud := cloudsim.NewCloud()
	gl := gitlabsim.New(gitlabsim.Config{Token: gitlabToken, HookURL: pavedURL + "/webhooks/gitlab", HookToken: hookToken,
		Decide: func(gitlabsim.Pipeline) gitlabsim.Outcome {
			return gitlabsim.Outcome{Status: gitlabsim.StatusSuccess, Created: 150 * time.Millisecond, Pending: 300 * time.Millisecond, Running: 800 * time.Millisecond}
		},
		Job: ProvisionJob(&http.Client{Timeout: 10 * time.Second}, cloud),
	})
	defer gl.Close()
	glURL, stopGL, err := serve(gl)
	if err != nil {
		return err
	}
	defer stopGL()

	cfg, err := demoConfig(dir, pavedURL, portURL, glURL, opt)
	if err != nil {
		return err
	}
	log := zap.NewNop()
	if opt.Verbose {
		log, _ = zap.NewDevelopment()
	}
	a, err := app.Build(ctx, cfg, log, app.Options{})
	if err != nil {
		return fmt.Errorf("demo: start paved: %w", err)
	}
	pavedCtx, stopPaved := context.WithCancel(context.WithoutCancel(ctx))
	pavedDone := make(chan error, 1)
	go func() { pavedDone <- a.Run(pavedCtx, pavedLn) }()
	defer func() { stopPaved(); <-pavedDone }()

	fmt.Fprintf(out, "paved %s · Port simulator %s · GitLab simulator %s · store %s\n\n", pavedURL, portURL, glURL, cfg.Store.Path)
	scs := scenarios()
	for i, sc := range scs {
		id, status, err := port.Trigger(ctx, pavedURL+"/webhooks/port", sc.inv)
		if err != nil {
			return fmt.Errorf("demo: send action %d: %w", i+1, err)
		}
		sc.portRunID = id
		fmt.Fprintf(out, "→ %d. %s: Port run %s, paved answered %d\n", i+1, sc.name, id, status)
	}
	// Port delivering the first action a second time must not make a second run.
	answer, err := redeliver(ctx, port, pavedURL+"/webhooks/port", scs[0].portRunID)
	if err != nil {
		return fmt.Errorf("demo: redeliver: %w", err)
	}
	fmt.Fprintf(out, "→ the first delivery sent again: paved answered %s\n", answer)
	fmt.Fprintln(out)

	table := newTable(out)
	err = waitAll(ctx, a.Store, port, scs, table)
	table.final()
	if err == nil {
		err = showDrift(ctx, out, port, cloud)
	}
	printPort(out, port, gl, scs)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return check(port, scs)
}

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo: listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func demoConfig(dir, pavedURL, portURL, glURL string, opt Options) (config.Config, error) {
	secrets := map[string]string{"port-id": portClientID, "port-secret": portClientSecret, "gitlab-token": gitlabToken,
		"hook-token": hookToken, "run-key": "demo-run-token-key", "api-token": "demo-api-token"}
	for name, v := range secrets {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			return config.Config{}, fmt.Errorf("demo: write secret: %w", err)
		}
	}
	ref := func(name string) string { return "file:" + filepath.Join(dir, name) }
	cfg := config.Default()
	cfg.Server.Listen, cfg.Server.PublicURL = pavedURL[len("http://"):], pavedURL
	cfg.Server.ShutdownTimeout = 3 * time.Second
	cfg.Store.Path = filepath.Join(dir, "paved.db")
	cfg.ActionsDir, cfg.PolicyDir = opt.ActionsDir, opt.PolicyDir
	cfg.Port = config.Port{Enabled: true, BaseURL: portURL, ClientID: ref("port-id"), ClientSecret: ref("port-secret"), SignatureTolerance: 5 * time.Minute, UserCacheTTL: time.Minute, Timeout: 5 * time.Second}
	cfg.GitLab = config.GitLab{BaseURL: glURL, Token: ref("gitlab-token"), WebhookToken: ref("hook-token"), RequestsPerMinute: 6000, Timeout: 5 * time.Second, PollInterval: 2 * time.Second, ReconcileAfter: time.Second}
	cfg.API = config.API{Tokens: []string{ref("api-token")}, RunTokenKey: ref("run-key")}
	cfg.Environments = []config.Environment{{Name: "dev"}, {Name: "staging"}, {Name: "prod", Production: true}}
	cfg.Tenants = []string{"acme", "globex"}
	cfg.Workers = config.Workers{Interval: 100 * time.Millisecond, ReportConcurrency: 4, DispatchConcurrency: 8, Lease: 10 * time.Second, RunTimeout: time.Minute}
	cfg.Log = config.Log{Format: "console", Level: "info"}
	cfg.Tracing.Endpoint = opt.TracingEndpoint
	// Drift checks of the dev stacks every second, to show one in the demo.
	cfg.Drift = config.Drift{Interval: time.Second, Environments: []string{"dev"}}
	return cfg, cfg.Validate()
}

// waitAll redraws the table until every scenario's Port run has its final
// status and paved has nothing left to report.
func waitAll(ctx context.Context, st runLister, port *portsim.Sim, scs []*scenario, t *table) error {
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for {
		runs, err := st.ListRuns(ctx, store.Query{Limit: 50})
		if err != nil && ctx.Err() == nil {
			return err
		}
		t.draw(runs)
		pending, _ := st.Pending(ctx, store.KindReport)
		done := pending == 0
		for _, sc := range scs {
			if r, ok := port.Run(sc.portRunID); !ok || r.Status == "IN_PROGRESS" || r.Status == "" {
				done = false
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("timed out waiting for every run to finish")
		case <-tick.C:
		}
	}
}

// showDrift turns the demo bucket's versioning off behind Pulumi's back,
// as a console edit would, and waits for paved's next drift check to find
// it and write it onto the bucket's entity.
func showDrift(ctx context.Context, out io.Writer, port *portsim.Sim, cloud *cloudsim.Cloud) error {
	const stack, bucket = "acme-dev-checkout", "acme-dev-checkout-receipts"
	for _, r := range cloud.Resources(stack) {
		if r.Type == "aws:s3/bucketV2:BucketV2" && r.Name == bucket {
			r.Inputs["versioning"] = false
			cloud.Drift(stack, r)
		}
	}
	fmt.Fprintf(out, "\n→ versioning of bucket %s turned off in the console, behind Pulumi's back\n", bucket)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, e := range port.Entities("s3_bucket") {
			if d, _ := e.Properties["drift"].(string); e.Identifier == bucket && strings.HasPrefix(d, "drifted") {
				fmt.Fprintf(out, "→ paved's drift check of %s wrote onto the entity: status=%v drift=%q\n", stack, e.Properties["status"], d)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("timed out waiting for the drift check")
		case <-tick.C:
		}
	}
}

type runLister interface {
	ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error)
	Pending(ctx context.Context, kind string) (int, error)
}

// redeliver sends Port's exact webhook for a run again, as Port's retries would.
func redeliver(ctx context.Context, port *portsim.Sim, url, portRunID string) (string, error) {
	body, err := port.WebhookBody(portRunID, url)
	if err != nil {
		return "", err
	}
	req, err := port.SignedRequest(ctx, url, body, time.Now())
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b)), nil
}

func check(port *portsim.Sim, scs []*scenario) error {
	var errs []error
	for i, sc := range scs {
		r, _ := port.Run(sc.portRunID)
		if r.Status != sc.want {
			errs = append(errs, fmt.Errorf("action %d (%s) ended %s in Port, want %s", i+1, sc.name, r.Status, sc.want))
		}
		if r.TerminalAttempts != 1 {
			errs = append(errs, fmt.Errorf("action %d got %d terminal statuses, want 1", i+1, r.TerminalAttempts))
		}
	}
	return errors.Join(errs...)
}
