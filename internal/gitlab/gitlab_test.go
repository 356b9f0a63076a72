package gitlab

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/gitlab/naming"
	"github.com/paved-idp/paved/internal/gitlab/pipelinehook"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
)

const token = "glpat-adapter"

// hold keeps simulated pipelines in "created" so tests see stable data.
func hold(gitlabsim.Pipeline) gitlabsim.Outcome {
	return gitlabsim.Outcome{Status: gitlabsim.StatusSuccess, Created: time.Hour}
}

func setup(t *testing.T, cfg gitlabsim.Config, opt Options) (*gitlabsim.Sim, *Client) {
	t.Helper()
	return setupServed(t, cfg, opt, nil)
}

// setupServed is setup with the simulator served through wrap (nil: as it is).
func setupServed(t *testing.T, cfg gitlabsim.Config, opt Options, wrap func(http.Handler) http.Handler) (*gitlabsim.Sim, *Client) {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = token
	}
	if cfg.Decide == nil {
		cfg.Decide = hold
	}
	sim := gitlabsim.New(cfg)
	var h http.Handler = sim
	if wrap != nil {
		h = wrap(sim)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	if opt.RetryWaitMin == 0 {
		opt.RetryWaitMin, opt.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	}
	c, err := New(srv.URL, token, opt)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

func TestTriggerPassesVariables(t *testing.T) {
	sim, c := setup(t, gitlabsim.Config{}, Options{})
	ctx := context.Background()
	p, err := c.Trigger(ctx, "platform/provision", "main", []Variable{
		{Key: RunIDVariable, Value: "r_1"},
		{Key: "PAVED_REQUEST", Value: `{"runId":"r_1"}`, File: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == 0 || p.Ref != "main" || p.Status != "created" || p.WebURL == "" || p.CreatedAt.IsZero() {
		t.Errorf("pipeline %+v", p)
	}
	got, ok := sim.Pipeline(p.ID)
	// GitLab's create answer carries the project and source but not the name.
	if p.ProjectID != got.ProjectID || p.Source != "api" || p.Name != "" || p.RunID != "" {
		t.Errorf("trigger's pipeline %+v, sim %+v", p, got)
	}
	if !ok || got.ProjectPath != "platform/provision" {
		t.Fatalf("sim pipeline %+v", got)
	}
	want := []gitlabsim.Variable{{Key: RunIDVariable, Value: "r_1", VariableType: "env_var"}, {Key: "PAVED_REQUEST", Value: `{"runId":"r_1"}`, VariableType: "file"}}
	if len(got.Variables) != 2 || got.Variables[0] != want[0] || got.Variables[1] != want[1] {
		t.Errorf("variables %+v, want %+v", got.Variables, want)
	}

	g, err := c.Pipeline(ctx, "platform/provision", p.ID)
	if err != nil || g.ID != p.ID || g.Status != "created" || g.ProjectID != got.ProjectID ||
		g.Name != "paved r_1" || g.Name != naming.PipelineName("r_1") || g.Source != "api" {
		t.Errorf("Pipeline: %+v, %v", g, err)
	}
	_, err = c.Pipeline(ctx, "platform/provision", 424242)
	if err == nil || !IsPermanent(err) || !IsNotFound(err) {
		t.Errorf("missing pipeline: err %v, permanent %v, not found %v", err, IsPermanent(err), IsNotFound(err))
	}
}

func TestTriggerIsNotRetried(t *testing.T) {
	tests := []struct {
		name      string
		faults    gitlabsim.Faults
		permanent bool
		limited   bool
	}{
		{"5xx", gitlabsim.Faults{ServerErrorRate: 1}, false, false},
		{"429", gitlabsim.Faults{RateLimitRate: 1, RateLimitReset: 3 * time.Second}, false, true},
		{"lost response", gitlabsim.Faults{LostCreateRate: 1}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, c := setup(t, gitlabsim.Config{Faults: tt.faults}, Options{Retries: 5})
			_, err := c.Trigger(context.Background(), "5", "main", nil)
			if err == nil {
				t.Fatal("no error")
			}
			if n := sim.CreateCalls(); n != 1 {
				t.Errorf("%d create calls, want exactly 1", n)
			}
			if IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent = %v", IsPermanent(err))
			}
			d, ok := RetryAfter(err)
			if ok != tt.limited || (ok && (d < 2*time.Second || d > 3*time.Second)) {
				t.Errorf("RetryAfter = %v, %v", d, ok)
			}
		})
	}
}

func TestReadsAreRetried(t *testing.T) {
	sim, c := setup(t, gitlabsim.Config{}, Options{Retries: 3})
	p, err := c.Trigger(context.Background(), "5", "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	sim.SetFaults(gitlabsim.Faults{ServerErrorRate: 1})
	before := sim.Stats().Requests
	if _, err := c.Pipeline(context.Background(), "5", p.ID); err == nil || IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
	if n := sim.Stats().Requests - before; n != 4 {
		t.Errorf("%d requests, want 1 + 3 retries", n)
	}
}

// TestFindByRunID runs against a project whose pipelines are named after
// their run (found by name) and one whose configuration names none (found
// by the fallback scan): the answers must be the same.
func TestFindByRunID(t *testing.T) {
	for _, named := range []bool{true, false} {
		t.Run(map[bool]string{true: "by name", false: "by variables"}[named], func(t *testing.T) {
			testFindByRunID(t, gitlabsim.Config{NoWorkflowName: !named})
		})
	}
}

func testFindByRunID(t *testing.T, cfg gitlabsim.Config) {
	sim, c := setup(t, cfg, Options{})
	ctx := context.Background()
	since := time.Now()
	var want Pipeline
	// 230 pipelines span three pages of 100; the match sits on the first
	// page (oldest), others carry other run ids, no run id, or another ref.
	for i := 0; i < 230; i++ {
		ref, vars := "main", []Variable{{Key: RunIDVariable, Value: "r_" + strconv.Itoa(i)}}
		switch {
		case i%7 == 3:
			vars = nil
		case i%11 == 5:
			ref = "other"
		}
		p, err := c.Trigger(ctx, "grp/svc", ref, vars)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			want = p
		}
	}
	// A pipeline for r_1 on another ref must not be adopted.
	if _, err := c.Trigger(ctx, "grp/svc", "other", []Variable{{Key: RunIDVariable, Value: "r_1"}}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, ref, runID string
		since            time.Time
		wantFound        bool
	}{
		{"match across pages", "main", "r_1", since, true},
		{"no such run", "main", "r_nope", since, false},
		{"run on another ref", "main", "r_5", since, false},
		{"too old", "main", "r_1", time.Now().Add(time.Hour), false},
		{"last one", "main", "r_229", since, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, found, err := c.FindByRunID(ctx, "grp/svc", tt.ref, tt.since, tt.runID, 0)
			if err != nil {
				t.Fatal(err)
			}
			if found != tt.wantFound {
				t.Fatalf("found = %v, want %v (%+v)", found, tt.wantFound, p)
			}
			if found && (p.Ref != "main" || p.ProjectID != want.ProjectID || p.Source != "api") {
				t.Errorf("found %+v", p)
			}
			if found && tt.runID == "r_1" && (p.ID != want.ID || p.WebURL != want.WebURL) {
				t.Errorf("found %+v, want %+v", p, want)
			}
		})
	}
	if n := sim.CountByRunID("r_1"); n != 2 {
		t.Errorf("sim holds %d pipelines for r_1, want 2", n)
	}
}

func TestCancel(t *testing.T) {
	sim, c := setup(t, gitlabsim.Config{}, Options{})
	ctx := context.Background()
	p, err := c.Trigger(ctx, "5", "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Cancel(ctx, "5", p.ID)
	if err != nil || got.Status != "canceled" || !Terminal(got.Status) {
		t.Fatalf("Cancel: %+v, %v", got, err)
	}
	if sp, _ := sim.Pipeline(p.ID); sp.Status != "canceled" {
		t.Errorf("sim status %s", sp.Status)
	}
}

func TestErrorsAndOptions(t *testing.T) {
	sim, _ := setup(t, gitlabsim.Config{}, Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()

	t.Run("bad token is permanent", func(t *testing.T) {
		c, err := New(srv.URL, "wrong", Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Trigger(context.Background(), "5", "main", nil)
		if err == nil || !IsPermanent(err) {
			t.Errorf("err %v permanent %v", err, IsPermanent(err))
		}
	})
	t.Run("canceled context", func(t *testing.T) {
		c, _ := New(srv.URL, token, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.Pipeline(ctx, "5", 1); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("rate cap", func(t *testing.T) {
		var n atomic.Int32
		counting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			n.Add(1)
			return http.DefaultTransport.RoundTrip(r)
		})}
		// A cap of 12 a minute: twelve calls go, the thirteenth's slot frees
		// a minute after the first, past its deadline, so it fails unsent.
		c, _ := New(srv.URL, token, Options{HTTPClient: counting, RequestsPerMinute: 12})
		for i := 0; i < 12; i++ {
			if _, err := c.Trigger(context.Background(), "5", "main", nil); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.Trigger(ctx, "5", "main", nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("thirteenth call under a cap of 12: %v, want DeadlineExceeded", err)
		}
		if n.Load() != 12 {
			t.Errorf("custom HTTP client saw %d requests, want 12", n.Load())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		// The answer never comes while the client waits, however slow the
		// machine: only the client's timeout can end the call.
		sim.SetFaults(gitlabsim.Faults{SlowRate: 1, SlowLatency: time.Hour})
		defer sim.SetFaults(gitlabsim.Faults{})
		c, _ := New(srv.URL, token, Options{Timeout: 20 * time.Millisecond})
		if _, err := c.Pipeline(context.Background(), "5", 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v", err)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRetryAfter(t *testing.T) {
	// A reset a minute ahead and a half-minute tolerance: only a stall of
	// 30 s between here and the assertion could fail the test.
	reset := time.Now().Add(time.Minute).Unix()
	tests := []struct {
		name    string
		headers map[string]string
		code    int
		want    time.Duration
		ok      bool
	}{
		{"retry-after seconds", map[string]string{"Retry-After": "7", "RateLimit-Reset": strconv.FormatInt(reset, 10)}, 429, 7 * time.Second, true},
		{"ratelimit-reset only (whole seconds)", map[string]string{"RateLimit-Reset": strconv.FormatInt(reset, 10)}, 429, time.Minute, true},
		{"no headers", nil, 429, 0, false},
		{"not a 429", map[string]string{"Retry-After": "7"}, 503, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.code)
			}))
			defer srv.Close()
			c, _ := New(srv.URL, token, Options{Retries: -1})
			_, err := c.Pipeline(context.Background(), "5", 1)
			if err == nil {
				t.Fatal("no error")
			}
			d, ok := RetryAfter(err)
			tolerance := time.Duration(0) // Retry-After is exact
			if tt.headers["Retry-After"] == "" {
				tolerance = 30 * time.Second // RateLimit-Reset is a time, read against the clock
			}
			if ok != tt.ok || d > tt.want || d < tt.want-tolerance {
				t.Errorf("RetryAfter = %v, %v; want %v, %v", d, ok, tt.want, tt.ok)
			}
			if IsPermanent(err) {
				t.Errorf("%d is not permanent", tt.code)
			}
		})
	}
	if _, ok := RetryAfter(errors.New("plain")); ok {
		t.Error("RetryAfter of a plain error")
	}
}

// TestHooksFromSimulator closes the loop: the simulator's hooks of the
// client's own triggers decode, and name the pipeline Trigger answered with.
func TestHooksFromSimulator(t *testing.T) {
	events := make(chan pipelinehook.Event, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		ev, err := pipelinehook.Decode(r.Header, body, "hk")
		if err != nil {
			t.Errorf("decode simulator hook: %v", err)
			w.WriteHeader(400)
			return
		}
		events <- ev
	}))
	defer recv.Close()
	_, c := setup(t, gitlabsim.Config{
		HookURL: recv.URL, HookToken: "hk",
		Decide: func(gitlabsim.Pipeline) gitlabsim.Outcome { return gitlabsim.Outcome{Status: gitlabsim.StatusFailed} },
	}, Options{})
	p, err := c.Trigger(context.Background(), "grp/svc", "main", []Variable{{Key: RunIDVariable, Value: "r_h"}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		// Every status change posts a hook, so the terminal one comes; a
		// simulator that never sent it would fail the test by its timeout.
		ev := <-events
		if ev.PipelineID != p.ID || ev.ProjectID != p.ProjectID || ev.ProjectPath != "grp/svc" ||
			ev.Name != naming.PipelineName("r_h") || ev.Source != "api" ||
			ev.Variables[RunIDVariable] != "r_h" || len(ev.Builds) != 1 {
			t.Fatalf("event %+v", ev)
		}
		if Terminal(ev.Status) {
			if ev.Status != "failed" || ev.Builds[0].FailureReason != "script_failure" {
				t.Errorf("final event %+v", ev)
			}
			return
		}
	}
}

// TestPipelineOfRun: the verification read answers for a pipeline in the
// project asked about, with the run it is of; a pipeline of another project
// is "not found" there, whatever run id it carries. A pipeline named
// "paved <run id>" is proven by its name, with one request; one without a
// name, or with a name of another shape, has its PAVED_RUN_ID read, once.
func TestPipelineOfRun(t *testing.T) {
	counts := newTally()
	sim, c := setup(t, gitlabsim.Config{}, Options{HTTPClient: &http.Client{Transport: counts}})
	ctx := context.Background()
	for _, p := range []gitlabsim.Project{
		{ID: 999, Path: "someone/else"},
		{ID: 998, Path: "team/plain", NoWorkflowName: true},
		{ID: 997, Path: "team/custom", WorkflowName: "deploy $PAVED_RUN_ID"},
	} {
		if err := sim.AddProject(p); err != nil {
			t.Fatal(err)
		}
	}
	own, err := c.Trigger(ctx, "platform/provision", "main", []Variable{{Key: RunIDVariable, Value: "r_1"}})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := sim.CreatePipeline(gitlabsim.NewPipeline{Project: "999", Ref: "main",
		Variables: []gitlabsim.Variable{{Key: RunIDVariable, Value: "r_1"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		p, err := c.PipelineOfRun(ctx, "platform/provision", own.ID)
		if err != nil || p.ID != own.ID || p.RunID != "r_1" || !p.RunIDFromName || p.ProjectID != own.ProjectID ||
			p.Name != naming.PipelineName("r_1") || p.Source != "api" || p.Status != "created" {
			t.Fatalf("PipelineOfRun: %+v, %v", p, err)
		}
	}
	if ok, failed := counts.counts("variables"); ok+failed != 0 {
		t.Errorf("read the variables of a pipeline its name proves %d times, want never", ok+failed)
	}
	if ok, _ := counts.counts("get"); ok != 2 {
		t.Errorf("%d GET pipeline, want one per call", ok)
	}

	for _, project := range []string{"team/plain", "team/custom"} {
		byVars, err := c.Trigger(ctx, project, "main", []Variable{{Key: RunIDVariable, Value: "r_2"}})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := counts.counts("variables")
		for i := 0; i < 2; i++ {
			p, err := c.PipelineOfRun(ctx, project, byVars.ID)
			if err != nil || p.ID != byVars.ID || p.RunID != "r_2" || p.RunIDFromName {
				t.Fatalf("%s: PipelineOfRun: %+v, %v", project, p, err)
			}
		}
		if after, _ := counts.counts("variables"); after-before != 1 {
			t.Errorf("%s: read variables %d times, want once", project, after-before)
		}
	}
	unnamed, err := c.Trigger(ctx, "platform/provision", "main", nil) // named just "paved"
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.PipelineOfRun(ctx, "platform/provision", unnamed.ID); err != nil || p.RunID != "" || p.RunIDFromName {
		t.Errorf("pipeline without a run id: %+v, %v", p, err)
	}

	_, err = c.PipelineOfRun(ctx, "platform/provision", foreign.ID)
	if !IsNotFound(err) || !IsPermanent(err) {
		t.Fatalf("foreign pipeline read in the run's project: err %v, want 404", err)
	}
	if p, err := c.PipelineOfRun(ctx, "999", foreign.ID); err != nil || p.ProjectID != 999 || p.RunID != "r_1" {
		t.Errorf("foreign pipeline in its own project: %+v, %v", p, err)
	}
}

func TestIsNotFound(t *testing.T) {
	sim, c := setup(t, gitlabsim.Config{Projects: []gitlabsim.Project{{ID: 5, Path: "grp/svc"}}}, Options{})
	ctx := context.Background()
	_, errProject := c.Pipeline(ctx, "404/nowhere", 1)
	_, errPipeline := c.Pipeline(ctx, "grp/svc", 1)
	sim.SetFaults(gitlabsim.Faults{ServerErrorRate: 1})
	_, err5xx := c.Pipeline(ctx, "grp/svc", 1)
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"missing project", errProject, true},
		{"missing pipeline", errPipeline, true},
		{"server error", err5xx, false},
		{"plain", errors.New("x"), false},
		{"nil", nil, false},
	} {
		if got := IsNotFound(tt.err); got != tt.want {
			t.Errorf("%s: IsNotFound(%v) = %v", tt.name, tt.err, got)
		}
	}
}
