// Package app wires paved together from its config: the store, catalog,
// policy, portal and GitLab adapters, the workers and the HTTP server. Both
// `paved serve` and `paved demo` start paved through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/config"
	"github.com/paved-idp/paved/internal/cost"
	"github.com/paved-idp/paved/internal/dispatch"
	"github.com/paved-idp/paved/internal/drift"
	"github.com/paved-idp/paved/internal/expiry"
	"github.com/paved-idp/paved/internal/gate"
	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/intake"
	"github.com/paved-idp/paved/internal/policy"
	"github.com/paved-idp/paved/internal/portal/port"
	"github.com/paved-idp/paved/internal/portal/port/webhook"
	"github.com/paved-idp/paved/internal/report"
	"github.com/paved-idp/paved/internal/secret"
	"github.com/paved-idp/paved/internal/server"
	"github.com/paved-idp/paved/internal/stackentity"
	"github.com/paved-idp/paved/internal/telemetry"
	"github.com/paved-idp/paved/internal/track"
	"github.com/paved-idp/paved/internal/validate"
	"github.com/paved-idp/paved/internal/worker"
)

// App is a wired paved, ready to Run.
type App struct {
	cfg      config.Config
	log      *zap.Logger
	store    Store
	handler  http.Handler
	dispatch *dispatch.Worker
	report   *report.Worker
	tracker  *track.Tracker
	drift    *drift.Scheduler
	expiry   *expiry.Scheduler
	secrets  *secret.Cache
	// stopTracing flushes the spans still buffered.
	stopTracing func(context.Context) error
	// endStreams ends the log streams (API and operator page) at shutdown.
	endStreams func()
	// Store is exposed for the demo's live table.
	Store Store
}

// Options are wiring choices that do not belong in the config file.
type Options struct {
	// HTTPClient is used for Port and GitLab; nil means a default with timeouts.
	HTTPClient *http.Client
	// Resolver reads secret references; without an AWS fetcher, awssm:
	// ones use aws-sdk-go-v2's default chain (secret.NewAWS).
	Resolver secret.Resolver
	// Version is reported as the traces' service.version.
	Version string
}

// Build wires paved. Every secret is resolved and every definition loaded
// and compiled here, so a bad config fails at start, not at the first run.
func Build(ctx context.Context, cfg config.Config, log *zap.Logger, opt Options) (*App, error) {
	// Fewer collections while starting (gc.go).
	defer relaxGC()()
	// The Rego unit tests are the slowest check at start (OPA's runner
	// parses and compiles the policy with its tests, then evaluates each)
	// and need nothing wired here, so they run beside the wiring below.
	// Their result is awaited before anything is resolved, opened or
	// migrated: a failing test still stops paved before it touches a
	// secret or the store, and is reported with the other definition
	// problems as before. A restart with the same policy files skips the
	// tests that passed with them before (validate.PassedTests).
	testsCtx, stopTests := context.WithCancel(ctx)
	defer stopTests()
	regoTests := make(chan []validate.Problem, 1)
	go func() {
		if path := cfg.RegoTestCache(); path != "" {
			probs, cached := validate.PassedTests{Path: path}.Run(testsCtx, cfg.PolicyDir)
			if cached {
				log.Info("rego tests passed before with these policy files; not run again", zap.String("cache", path))
			}
			regoTests <- probs
			return
		}
		regoTests <- validate.RegoTests(testsCtx, cfg.PolicyDir)
	}()
	// The policy is compiled beside the definitions' loading, too (it has
	// no effect outside this process either); New returns once it can
	// decide, and specialises it for the configuration afterwards.
	envs := make([]policy.Environment, len(cfg.Environments))
	for i, e := range cfg.Environments {
		envs[i] = policy.Environment{Name: e.Name, Production: e.Production}
	}
	type compiled struct {
		pol *policy.Engine
		err error
	}
	polc := make(chan compiled, 1)
	go func() {
		pol, err := policy.New(ctx, cfg.PolicyDir, policy.Data{Environments: envs, Tenants: cfg.Tenants})
		polc <- compiled{pol, err}
	}()
	// Secrets are resolved once here and refreshed while paved runs; see
	// secrets.go for which consumers follow a rotation.
	secrets := secret.NewCache(secret.Options{Resolver: opt.Resolver, RefreshInterval: cfg.Secrets.RefreshInterval, Log: log.Named("secret")})
	resolve := func(ref string) (string, error) { return secrets.Static(ctx, ref) }
	current := func(ref string) (*secret.Value, error) { return secrets.Value(ctx, ref) }
	reg := prometheus.NewRegistry()
	metrics := telemetry.NewMetrics(reg)
	tp, stopTracing, err := telemetry.NewTracerProvider(ctx, telemetry.TracingOptions{Endpoint: cfg.Tracing.Endpoint,
		ServiceName: cfg.Tracing.ServiceName, Version: opt.Version, SampleRatio: cfg.Tracing.SampleRatio})
	if err != nil {
		return nil, err
	}
	tracer := telemetry.Tracer(tp)
	hc := opt.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	// The same checks as `paved validate`, Rego unit tests included, so a
	// bad definition stops paved here, named by file and line; the actions
	// they parse are the catalog paved serves, and the policy is the one
	// compiled above (its errors name file and line too). Blueprints are
	// checked when their directory exists; paved does not need them to
	// serve, and the image ships none.
	bpDir := cfg.BlueprintsDir
	if _, err := os.Stat(bpDir); err != nil {
		bpDir = ""
	}
	defs, probs := validate.Load(cfg.ActionsDir, bpDir)
	// The catalog is built while the tests run; its errors and the
	// policy's are reported after the definitions' problems, in the order
	// they always were.
	var cat *catalog.Catalog
	var catErr error
	if len(probs) == 0 {
		cat, catErr = catalog.New(defs.Actions)
	}
	c := <-polc
	pol, polErr := c.pol, c.err
	if probs = append(probs, <-regoTests...); len(probs) > 0 {
		return nil, fmt.Errorf("refusing to start: %d problem(s) in the definitions:\n%s", len(probs), validate.Report(probs))
	}
	if catErr != nil {
		return nil, fmt.Errorf("load actions: %w", catErr)
	}
	if polErr != nil {
		return nil, fmt.Errorf("load policy: %w", polErr)
	}
	glToken, err := current(cfg.GitLab.Token)
	if err != nil {
		return nil, err
	}
	hookToken, err := resolve(cfg.GitLab.WebhookToken)
	if err != nil {
		return nil, err
	}
	runKey, err := resolve(cfg.API.RunTokenKey)
	if err != nil {
		return nil, err
	}
	apiClients, err := apiClients(cfg.API, resolve)
	if err != nil {
		return nil, err
	}
	glHC := telemetry.Transport{System: "gitlab", Metrics: metrics, Tracer: tracer}.Client(withGitLabToken(hc, glToken))
	gl, err := gitlab.New(cfg.GitLab.BaseURL, glToken.Get(), gitlab.Options{HTTPClient: glHC, RequestsPerMinute: cfg.GitLab.RequestsPerMinute, Timeout: cfg.GitLab.Timeout,
		OnRateLimitWait: func(d time.Duration) { metrics.RateLimitWait("gitlab", d) }})
	if err != nil {
		return nil, fmt.Errorf("gitlab client: %w", err)
	}
	opened, err := openStore(ctx, cfg.Store, resolve)
	if err != nil {
		return nil, err
	}
	st := finishCounter{Store: opened, m: metrics}
	a := &App{cfg: cfg, log: log, store: st, Store: st, secrets: secrets, stopTracing: stopTracing}
	dispatchWake, reportWake := worker.NewWaker(), worker.NewWaker()
	runURL := func(id string) string { return strings.TrimRight(cfg.Server.PublicURL, "/") + "/ui/runs/" + id }
	in := &intake.Service{Store: st, Catalog: cat, Policy: pol, Log: log.Named("intake"), DefaultTimeout: cfg.Workers.RunTimeout, Metrics: metrics, Tracer: tracer,
		RunURL: runURL}
	// The gate logs under intake's name: a run's way in, its preview and the
	// decisions on it are one story to whoever reads or queries the logs.
	gt := &gate.Service{Store: st, Catalog: cat, Policy: pol, Log: in.Log, Metrics: metrics,
		ApprovalTTL: cfg.Approvals.TTL, RunURL: runURL, MaxLogLines: cfg.Limits.RunLogLines}
	portals := map[string]report.Portal{}
	srvCfg := server.Config{MaxBodyBytes: cfg.Server.MaxBodyBytes, GitLabWebhookToken: hookToken, APIClients: apiClients, RunTokenKey: []byte(runKey),
		Metrics: metrics, Tracer: tracer}
	if cfg.Port.Enabled {
		id, err := current(cfg.Port.ClientID)
		if err != nil {
			st.Close()
			return nil, err
		}
		sec, err := current(cfg.Port.ClientSecret)
		if err != nil {
			st.Close()
			return nil, err
		}
		portHC := opt.HTTPClient
		if portHC == nil {
			portHC = &http.Client{Timeout: cfg.Port.Timeout}
		}
		portHC = telemetry.Transport{System: "port", Metrics: metrics, Tracer: tracer}.Client(portHC)
		pc := &portClients{id: id, secret: sec, build: func(id, sec string) *port.Client {
			return port.NewClient(cfg.Port.BaseURL, id, sec, port.Options{HTTPClient: portHC, UserCacheTTL: cfg.Port.UserCacheTTL})
		}}
		in.Teams, gt.Teams = pc, pc
		portals[port.PortalName] = portReporter{pc}
		// The webhook key is the client secret too: read at each delivery,
		// so a rotation applies to both at once.
		srvCfg.PortVerifier = &webhook.Verifier{SecretFunc: func() []byte { return []byte(sec.Get()) }, Tolerance: cfg.Port.SignatureTolerance}
	}
	// Work in flight at shutdown gets half the shutdown time to finish.
	drain := cfg.Server.ShutdownTimeout / 2
	a.tracker = &track.Tracker{Store: st, Pipelines: gl, Catalog: cat, Log: log.Named("track"), PollInterval: cfg.GitLab.PollInterval,
		// A finished run may free its stack for the next: wake the dispatcher too.
		Reported:    func() { reportWake.Wake(); dispatchWake.Wake() },
		MaxLogLines: cfg.Limits.RunLogLines, MaxOutputBytes: cfg.Limits.RunOutputBytes,
		RunURL: runURL}
	a.dispatch = &dispatch.Worker{Store: st, Queue: st, Pipelines: gl, Adopter: a.tracker, Log: log.Named("dispatch"), PublicURL: cfg.Server.PublicURL,
		RunTokenKey: []byte(runKey), Interval: cfg.Workers.Interval, Concurrency: cfg.Workers.DispatchConcurrency, Lease: cfg.Workers.Lease, Settle: cfg.GitLab.ReconcileAfter, Drain: drain, Waker: dispatchWake, Reported: reportWake.Wake,
		Metrics: metrics, Tracer: tracer}
	a.report = &report.Worker{Store: st, Portals: portals, Log: log.Named("report"), Interval: cfg.Workers.Interval,
		Lease: cfg.Workers.Lease, Concurrency: cfg.Workers.ReportConcurrency, Drain: drain, Waker: reportWake, Metrics: metrics, Tracer: tracer}
	if cfg.Port.Enabled {
		a.report.CatalogPortal = port.PortalName // where drift checks write their entities
	}
	a.drift = &drift.Scheduler{Store: st, Catalog: cat, Log: log.Named("drift"), Interval: cfg.Drift.Interval, Environments: cfg.Drift.Environments,
		Portal: a.report.CatalogPortal, Notify: dispatchWake.Wake}
	gt.Spending = &cost.Ledger{Runs: st}
	in.StackEntities = stackentity.Finder{Store: st, Catalog: cat, Portal: a.report.CatalogPortal}
	a.expiry = &expiry.Scheduler{Store: st, Catalog: cat, Log: log.Named("expiry"), WarnBefore: cfg.Expiry.WarnBefore, Every: cfg.Expiry.Interval,
		Notify: func() { dispatchWake.Wake(); reportWake.Wake() }, Policy: pol, Teams: in.Teams, Portal: a.report.CatalogPortal}
	srvCfg.Extender = a.expiry
	a.dispatch.Guard = a.expiry // an expiry's destroy is judged again when it holds its stack
	// Every state change queues reports; wake the reporter for them too.
	in.Notify = func() { dispatchWake.Wake(); reportWake.Wake() }
	gt.Notify = in.Notify
	runs := runControl{in, gt}
	streamsDone := make(chan struct{})
	a.endStreams = sync.OnceFunc(func() { close(streamsDone) })
	srvCfg.StreamsDone = streamsDone
	if srvCfg.UI, err = operatorPage(cfg, resolve, runKey, st, runs, streamsDone, metrics, log.Named("operator")); err != nil {
		st.Close()
		return nil, err
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newStoreCollector(st))
	a.handler = server.New(srvCfg, runs, st, a.tracker, log.Named("http"), reg)
	return a, nil
}

// apiClients resolves and hashes the API's tokens: the unnamed ones of
// api.tokens are recorded as "api", the others under their client's name.
func apiClients(cfg config.API, resolve func(string) (string, error)) ([]server.APIClient, error) {
	var out []server.APIClient
	for i, ref := range cfg.Tokens {
		t, err := resolve(ref)
		if err != nil {
			return nil, fmt.Errorf("api.tokens[%d]: %w", i, err)
		}
		out = append(out, server.NewAPIClient("api", t, nil))
	}
	names := make([]string, 0, len(cfg.Clients))
	for name := range cfg.Clients {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		cl := cfg.Clients[name]
		t, err := resolve(cl.Token)
		if err != nil {
			return nil, fmt.Errorf("api.clients.%s.token: %w", name, err)
		}
		out = append(out, server.NewAPIClient(name, t, cl.Actions))
	}
	return out, nil
}

// Handler is paved's HTTP handler (tests mount it on their own listener).
func (a *App) Handler() http.Handler { return a.handler }

// Run serves on ln (or the configured address when ln is nil) and runs the
// workers until ctx ends, then shuts down in order: stop taking requests,
// let requests in flight finish, stop the workers, close the store. Work
// a worker had claimed but not finished is picked up after a restart.
func (a *App) Run(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", a.cfg.Server.Listen); err != nil {
			return fmt.Errorf("listen on %s: %w", a.cfg.Server.Listen, err)
		}
	}
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}
	srv.RegisterOnShutdown(a.endStreams) // Shutdown waits for no long-lived stream
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, run := range []func(context.Context){a.dispatch.Run, a.report.Run, a.tracker.Run, a.secrets.Run, a.drift.Run, a.expiry.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); run(workCtx) }()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	// Start-up's garbage is handed back to the OS a second after paved
	// serves (see relaxGC): the full collection that takes would otherwise
	// compete with the first requests, the readiness probe's among them.
	defer time.AfterFunc(time.Second, freeStartupHeap).Stop()
	a.log.Info("paved serving", zap.String("addr", ln.Addr().String()))
	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), a.cfg.Server.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil {
		a.log.Warn("http shutdown", zap.Error(serr))
	}
	stopWork()
	wg.Wait()
	if cerr := a.store.Close(); cerr != nil {
		a.log.Warn("close store", zap.Error(cerr))
	}
	// The flush gets time of its own: a shutdown that waited out its whole
	// timeout (a connection that never sent its request holds Shutdown for
	// seconds) must not cost the last spans.
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), traceFlushTimeout)
	defer cancelFlush()
	if terr := a.stopTracing(flushCtx); terr != nil {
		a.log.Warn("flush traces", zap.Error(terr))
	}
	a.log.Info("paved stopped")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// traceFlushTimeout bounds the export of the last spans at shutdown.
const traceFlushTimeout = 3 * time.Second

// portReporter adapts the Port client to the reporter's Portal.
type portReporter struct{ *portClients }

func (portReporter) Permanent(err error) bool { return port.IsPermanent(err) }

func (portReporter) RetryAt(err error) (time.Time, bool) {
	var rl *port.RateLimitError
	if errors.As(err, &rl) {
		return rl.Reset, true
	}
	return time.Time{}, false
}
