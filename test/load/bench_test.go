package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/paved-idp/paved/internal/app"
	"github.com/paved-idp/paved/internal/config"
	"github.com/paved-idp/paved/internal/portal/port/webhook"
	"github.com/paved-idp/paved/internal/secret"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/sim/portsim"
	"github.com/paved-idp/paved/internal/telemetry"
	"github.com/paved-idp/paved/internal/waitfor"
	h "github.com/paved-idp/paved/test/harness"
)

// BenchmarkIntakeHandler is paved's Port webhook intake in process, wired
// by internal/app exactly as `paved serve` wires it (workers not running),
// without HTTP: signature, decode, schema, policy, SQLite commit, 202. It
// exists to be profiled:
//
//	go test -run '^$' -bench IntakeHandler -benchtime 20000x -cpuprofile cpu.out ./test/load
//	go tool pprof -top load.test cpu.out
//
// workers=on also runs paved's workers against an in-process GitLab
// simulator, after the load harness's warm-up (one run per stack
// dispatched, its pipeline running for an hour, so every later run waits
// queued): the dispatcher's claims are then part of the profile.
func BenchmarkIntakeHandler(b *testing.B) {
	for _, workers := range []bool{false, true} {
		b.Run(map[bool]string{false: "workers=off", true: "workers=on"}[workers], func(b *testing.B) { benchIntake(b, workers) })
	}
}

func benchIntake(b *testing.B, workers bool) {
	handler, bodies, done := intakeInProcess(b, workers)
	defer done()
	var seq atomic.Int64
	b.SetParallelism(16) // 32 goroutines on 2 cores: the store's group commit gets company
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, benchRequest(bodies, seq.Add(1)))
			if rec.Code != http.StatusAccepted {
				b.Errorf("answer %d: %s", rec.Code, rec.Body.String())
				return
			}
		}
	})
}

// BenchmarkBareHandler is the baseline's handler (test/load/bare) in
// process, for the same requests.
func BenchmarkBareHandler(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/webhooks/port", func(c *gin.Context) {
		if _, err := io.ReadAll(c.Request.Body); err != nil {
			c.AbortWithStatus(http.StatusBadRequest)
			return
		}
		c.JSON(http.StatusAccepted, gin.H{"runId": "bare", "state": "queued"})
	})
	_, bodies, done := intakeInProcess(b, false)
	defer done()
	var seq atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.ServeHTTP(httptest.NewRecorder(), benchRequest(bodies, seq.Add(1)))
		}
	})
}

// benchRequest is the i-th signed webhook: a template's body with a Port run
// id of its own, signed at send time, as both benchmarks send it.
func benchRequest(bodies []template, i int64) *http.Request {
	tmpl := bodies[i%int64(len(bodies))]
	body := bytes.ReplaceAll(tmpl.body, []byte(tmpl.id), []byte(fmt.Sprintf("r_bench%09d", i)))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req := httptest.NewRequest(http.MethodPost, "/webhooks/port", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(h.PortSecret), ts, body))
	return req
}

type template struct {
	id   string
	body []byte
}

// intakeInProcess wires paved with internal/app against an in-process Port
// simulator (asked only for the user's teams, cached) and returns its
// handler and webhook bodies for 256 stacks.
func intakeInProcess(b *testing.B, workers bool) (http.Handler, []template, func()) {
	b.Helper()
	ctx, stop := context.WithCancel(context.Background())
	limit := 1 << 30
	if workers {
		limit = 0 // Port's documented 1,000 a 5 min, as in the load harness
	}
	sim := portsim.New(portsim.Config{ClientID: h.PortID, ClientSecret: h.PortSecret, AnyBlueprint: true, RateLimit: limit,
		Users: map[string]portsim.User{"dana@acme.example": {Teams: []string{"payments"}}}})
	srv := httptest.NewServer(sim.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	pavedURL := "http://" + ln.Addr().String()
	gl := gitlabsim.New(gitlabsim.Config{Token: h.GitLabToken, HookURL: pavedURL + "/webhooks/gitlab", HookToken: h.HookToken, Decide: h.LongPipeline})
	glSrv := httptest.NewServer(gl)
	dir := b.TempDir()
	actions := filepath.Join(h.RepoRoot(), "actions")
	yaml := fmt.Sprintf(`server: {listen: "127.0.0.1:0", publicURL: "http://127.0.0.1:9"}
store: {driver: sqlite, path: %q}
actionsDir: %q
policyDir: %q
port: {enabled: true, baseURL: %q, clientID: env:E2E_PORT_ID, clientSecret: env:E2E_PORT_SECRET, userCacheTTL: 1h}
gitlab: {baseURL: %q, token: env:E2E_GITLAB_TOKEN, webhookToken: env:E2E_HOOK_TOKEN, requestsPerMinute: 6000, timeout: 5s, reconcileAfter: 3s}
workers: {interval: 50ms, reportConcurrency: 8, lease: 10s}
api: {tokens: [env:E2E_API_TOKEN], runTokenKey: env:E2E_RUN_KEY}
environments: [{name: dev}, {name: staging}, {name: prod, production: true}]
tenants: [acme, globex]
log: {format: json, level: info}
`, filepath.Join(dir, "paved.db"), actions, filepath.Join(actions, "policy"), srv.URL, glSrv.URL)
	cfg, err := config.Parse([]byte(yaml), nil)
	if err != nil {
		b.Fatal(err)
	}
	secrets := map[string]string{"E2E_PORT_ID": h.PortID, "E2E_PORT_SECRET": h.PortSecret, "E2E_GITLAB_TOKEN": h.GitLabToken,
		"E2E_HOOK_TOKEN": h.HookToken, "E2E_API_TOKEN": h.APIToken, "E2E_RUN_KEY": h.RunKey}
	resolver := secret.Resolver{LookupEnv: func(k string) (string, bool) { v, ok := secrets[k]; return v, ok }}
	// paved's production logger (cmd/paved: zap's production encoder, only
	// the access line sampled), writing nowhere.
	zc := zap.NewProductionConfig()
	core := telemetry.SampleAccessLine(zapcore.NewCore(zapcore.NewJSONEncoder(zc.EncoderConfig), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	a, err := app.Build(ctx, cfg, zap.New(core), app.Options{Resolver: resolver})
	if err != nil {
		b.Fatal(err)
	}
	var bodies []template
	for i := range intakeStacks {
		inv := h.Bucket(h.Dana, "dev", map[string]any{"bucketName": fmt.Sprintf("b%07d", i)})
		entity := *h.Checkout
		entity.Identifier = fmt.Sprintf("svc-%04d", i)
		inv.Entity = &entity
		id, err := sim.CreateRun(inv)
		if err != nil {
			b.Fatal(err)
		}
		body, err := sim.WebhookBody(id, "http://paved/webhooks/port")
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, template{id: id, body: body})
	}
	handler := a.Handler()
	if !workers {
		ln.Close()
		return handler, bodies, func() { stop(); a.Store.Close(); srv.Close(); gl.Close(); glSrv.Close() }
	}
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx, ln) }()
	// The warm-up: 3 runs a stack, the first of each dispatched.
	for i := range 3 * intakeStacks {
		tmpl := bodies[i%len(bodies)]
		body := bytes.ReplaceAll(tmpl.body, []byte(tmpl.id), []byte(fmt.Sprintf("r_warm%09d", i)))
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req := httptest.NewRequest(http.MethodPost, "/webhooks/port", bytes.NewReader(body))
		req.Header.Set(webhook.HeaderTimestamp, ts)
		req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(h.PortSecret), ts, body))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("warm-up: %d %s", rec.Code, rec.Body.String())
		}
	}
	waitfor.Within(b, time.Minute, "the warm-up's pipelines", func() bool { return len(gl.RunIDCounts()) >= intakeStacks })
	return handler, bodies, func() {
		stop()
		if err := <-ran; err != nil {
			b.Error(err)
		}
		srv.Close()
		gl.Close()
		glSrv.Close()
	}
}
