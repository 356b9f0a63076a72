package track

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/gitlab/naming"
	"github.com/paved-idp/paved/internal/gitlab/pipelinehook"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
)

// requestLog records the path of every request paved makes to GitLab.
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.paths = append(l.paths, r.Method+" "+r.URL.EscapedPath())
	l.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// count is how many requests so far were for a pipeline (GET
// /projects/:id/pipelines/:pipeline_id) and for its variables.
func (l *requestLog) count() (pipeline, variables int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.paths {
		switch {
		case strings.HasSuffix(p, "/variables"):
			variables++
		case strings.HasPrefix(p, "GET ") && strings.Contains(p, "/pipelines/"):
			pipeline++
		}
	}
	return pipeline, variables
}

// hookOf decodes the simulator's Pipeline Hook of pipeline id as paved's
// webhook handler would.
func hookOf(t *testing.T, sim *gitlabsim.Sim, id int64) pipelinehook.Event {
	t.Helper()
	body, ok := sim.HookBody(id)
	if !ok {
		t.Fatalf("no pipeline %d", id)
	}
	h := http.Header{"X-Gitlab-Token": {"hook-secret"}, "X-Gitlab-Event": {"Pipeline Hook"}}
	ev, err := pipelinehook.Decode(h, body, "hook-secret")
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestHookCheckProvenByName: the hook of a run still dispatching is
// checked with GitLab in the run's project. A pipeline named after the run
// by paved's component is proven by that name, with one request (GET
// pipeline, no variables); one of a project whose configuration gives no
// name, or a name of another shape, is proven by its PAVED_RUN_ID; one named
// after another run is not the run's, whatever its variables say.
func TestHookCheckProvenByName(t *testing.T) {
	tests := []struct {
		name      string
		proj      gitlabsim.Project
		extra     []gitlabsim.Variable // besides PAVED_RUN_ID = the run's id
		adopted   bool
		variables int // variables requests
	}{
		{"named by paved's component", gitlabsim.Project{}, nil, true, 0},
		{"no workflow:name", gitlabsim.Project{NoWorkflowName: true}, nil, true, 1},
		{"a name of another shape", gitlabsim.Project{WorkflowName: "deploy $PAVED_RUN_ID"}, nil, true, 1},
		{"named after another run", gitlabsim.Project{WorkflowName: "$PIPELINE_NAME"},
			[]gitlabsim.Variable{{Key: "PIPELINE_NAME", Value: naming.PipelineName("r_other")}}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, st, _ := setup(t)
			ctx := context.Background()
			r := running(t, st, run.Dispatching)
			tt.proj.ID, tt.proj.Path = projectID, project
			sim := gitlabsim.New(gitlabsim.Config{Token: "glpat-track", Projects: []gitlabsim.Project{tt.proj},
				Decide: func(gitlabsim.Pipeline) gitlabsim.Outcome {
					return gitlabsim.Outcome{Status: gitlabsim.StatusSuccess, Created: time.Hour}
				}})
			srv := httptest.NewServer(sim)
			t.Cleanup(func() { srv.Close(); sim.Close() })
			log := &requestLog{}
			c, err := gitlab.New(srv.URL, "glpat-track", gitlab.Options{HTTPClient: &http.Client{Transport: log}})
			if err != nil {
				t.Fatal(err)
			}
			tr.Pipelines = c

			p, err := sim.CreatePipeline(gitlabsim.NewPipeline{Project: project, Ref: "main", NoHooks: true,
				Variables: append([]gitlabsim.Variable{{Key: gitlab.RunIDVariable, Value: r.ID}}, tt.extra...)})
			if err != nil {
				t.Fatal(err)
			}
			out := handle(t, tr, hookOf(t, sim, p.ID))
			got, err := st.Run(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if adopted := got.PipelineID == p.ID && got.State == run.Running; out.Applied != tt.adopted || adopted != tt.adopted {
				t.Fatalf("pipeline named %q: %+v, run %s with pipeline #%d; want adopted %v", p.Name, out, got.State, got.PipelineID, tt.adopted)
			}
			if pipeline, variables := log.count(); pipeline != 1 || variables != tt.variables {
				t.Errorf("pipeline named %q: %d GET pipeline and %d variables requests, want 1 and %d (all: %q)",
					p.Name, pipeline, variables, tt.variables, log.paths)
			}
		})
	}
}
