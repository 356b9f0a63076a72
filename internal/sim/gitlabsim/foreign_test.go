package gitlabsim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestForeignProject: a second project holds someone else's pipeline that
// carries a paved run's id. It is listed, read and announced only as that
// project's, never as paved's.
func TestForeignProject(t *testing.T) {
	recv := newHookRecv(0)
	hooks := httptest.NewServer(recv)
	defer hooks.Close()
	sim, srv := start(t, Config{Decide: slow, HookURL: hooks.URL, HookToken: "hk",
		Projects: []Project{{ID: 1, Path: "platform/paved-provision"}}})
	if err := sim.AddProject(Project{ID: 999, Path: "someone/else"}); err != nil {
		t.Fatal(err)
	}
	for _, dup := range []Project{{ID: 999, Path: "x/y"}, {ID: 5, Path: "someone/else"}, {Path: "no/id"}} {
		if err := sim.AddProject(dup); err == nil {
			t.Errorf("AddProject(%+v) accepted", dup)
		}
	}
	ownResp, b := do(t, http.MethodPost, srv.URL+"/api/v4/projects/1/pipeline", token, "application/json",
		`{"ref":"main","variables":[{"key":"PAVED_RUN_ID","value":"r_1"}]}`)
	if ownResp.StatusCode != 201 {
		t.Fatalf("create: %d %s", ownResp.StatusCode, b)
	}
	own := createdID(t, b)
	recv.await(1) // the own pipeline's "created" hook

	foreign, err := sim.CreatePipeline(NewPipeline{Project: "someone/else",
		Variables: []Variable{{Key: RunIDVariable, Value: "r_1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if foreign.ProjectID != 999 || foreign.ProjectPath != "someone/else" || foreign.Ref != "main" ||
		foreign.Source != "api" || foreign.Name != "paved r_1" || foreign.Variables[0].VariableType != "env_var" {
		t.Errorf("foreign pipeline %+v", foreign)
	}
	if sim.CreateCalls() != 1 || sim.CountByRunID("r_1") != 2 {
		t.Errorf("create calls %d, pipelines for r_1 %d; want 1 and 2", sim.CreateCalls(), sim.CountByRunID("r_1"))
	}
	recv.await(1) // its "created" hook went to the same URL, as a group hook's would

	base := srv.URL + "/api/v4/projects/"
	if resp, _ := do(t, http.MethodGet, base+"1/pipelines/"+strconv.FormatInt(foreign.ID, 10), token, "", ""); resp.StatusCode != 404 {
		t.Errorf("foreign pipeline read in paved's project: %d, want 404", resp.StatusCode)
	}
	if resp, _ := do(t, http.MethodGet, base+"1/pipelines/"+strconv.FormatInt(foreign.ID, 10)+"/variables", token, "", ""); resp.StatusCode != 404 {
		t.Errorf("foreign variables read in paved's project: %d, want 404", resp.StatusCode)
	}
	_, b = do(t, http.MethodGet, base+"1/pipelines?name=paved+r_1", token, "", "")
	if list := decode[[]map[string]any](t, b); len(list) != 1 || int64(list[0]["id"].(float64)) != own {
		t.Errorf("paved's project lists %v, want only #%d", list, own)
	}
	_, b = do(t, http.MethodGet, base+"999/pipelines/"+strconv.FormatInt(foreign.ID, 10), token, "", "")
	if m := decode[map[string]any](t, b); m["project_id"] != float64(999) || m["name"] != "paved r_1" {
		t.Errorf("foreign pipeline in its project: %v", m)
	}

	// DeliverHook returns once the receiver has the hook.
	if err := sim.DeliverHook(context.Background(), foreign.ID); err != nil {
		t.Fatal(err)
	}
	recv.await(1)
	recv.mu.Lock()
	last, header := recv.bodies[len(recv.bodies)-1], recv.headers[len(recv.headers)-1]
	recv.mu.Unlock()
	proj := last["project"].(map[string]any)
	oa := last["object_attributes"].(map[string]any)
	if proj["id"] != float64(999) || proj["path_with_namespace"] != "someone/else" ||
		oa["id"] != float64(foreign.ID) || oa["name"] != "paved r_1" || header.Get("X-Gitlab-Token") != "hk" {
		t.Errorf("delivered hook project %v attributes %v", proj, oa)
	}
	hs := sim.Hooks()
	if d := hs[len(hs)-1]; d.PipelineID != foreign.ID || !d.Delivered || d.Attempts != 1 {
		t.Errorf("recorded delivery %+v", d)
	}

	// HookBody is the same body, to forge or replay.
	body, ok := sim.HookBody(foreign.ID)
	var forged map[string]any
	if !ok || json.Unmarshal(body, &forged) != nil || forged["project"].(map[string]any)["id"] != float64(999) {
		t.Errorf("HookBody %s, %v", body, ok)
	}
	if _, ok := sim.HookBody(424242); ok {
		t.Error("HookBody of a pipeline that does not exist")
	}
}

func TestCreatePipelineOptions(t *testing.T) {
	jobRan := make(chan int64, 4)
	sim, _ := start(t, Config{Decide: slow, Projects: []Project{{ID: 7, Path: "a/b", DefaultBranch: "trunk"}},
		Job: func(_ context.Context, p Pipeline) error { jobRan <- p.ID; return nil }})
	if _, err := sim.CreatePipeline(NewPipeline{Project: "8"}); err == nil {
		t.Error("created a pipeline in a project that does not exist")
	}
	if _, err := sim.CreatePipeline(NewPipeline{Project: "7", Source: "carrier-pigeon"}); err == nil {
		t.Error("created a pipeline with an unknown source")
	}
	quick := &Outcome{Status: StatusFailed}
	p, err := sim.CreatePipeline(NewPipeline{Project: "7", Source: "web", Outcome: quick, RunJob: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Ref != "trunk" || p.Source != "web" {
		t.Errorf("pipeline %+v", p)
	}
	// Outcome overrides the hour-long Decide, and the Job ran (RunJob).
	got := waitPipeline(t, sim, p.ID, func(p Pipeline) bool { return Terminal(p.Status) })
	if got.Status != StatusFailed || <-jobRan != p.ID {
		t.Errorf("pipeline ended %s", got.Status)
	}
	noJob, err := sim.CreatePipeline(NewPipeline{Project: "a/b", Outcome: &Outcome{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitPipeline(t, sim, noJob.ID, func(p Pipeline) bool { return Terminal(p.Status) }); got.Status != StatusSuccess {
		t.Errorf("pipeline ended %s", got.Status)
	}
	if len(jobRan) != 0 {
		t.Error("the Job ran for a pipeline without RunJob")
	}
}

func TestDeliverHookErrors(t *testing.T) {
	sim, _ := start(t, Config{Decide: slow})
	p, err := sim.CreatePipeline(NewPipeline{Project: "5"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.DeliverHook(context.Background(), p.ID); err == nil {
		t.Error("delivered without a hook URL")
	}
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(401) }))
	defer refuse.Close()
	sim.SetHook(refuse.URL, "tok")
	if err := sim.DeliverHook(context.Background(), p.ID); err == nil {
		t.Error("a 401 answer is not an error")
	}
	if err := sim.DeliverHook(context.Background(), 424242); err == nil {
		t.Error("delivered the hook of a pipeline that does not exist")
	}
	if hs := sim.Hooks(); len(hs) != 1 || hs[0].Delivered || hs[0].LastError == "" {
		t.Errorf("hooks %+v", hs)
	}
}

func TestWaitPipeline(t *testing.T) {
	sim, _ := start(t, Config{Decide: slow})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sim.WaitPipeline(ctx, 101, func(Pipeline) bool { return true }); err == nil {
		t.Error("waited for a pipeline that does not exist with a canceled context")
	}
	done := make(chan Pipeline)
	go func() {
		p, _ := sim.WaitPipeline(context.Background(), 101, func(p Pipeline) bool { return p.Status == StatusCanceled })
		done <- p
	}()
	p, err := sim.CreatePipeline(NewPipeline{Project: "5"}) // id 101, held in created
	if err != nil || p.ID != 101 {
		t.Fatalf("pipeline %+v, %v", p, err)
	}
	sim.engine.Cancel(p.ID)
	if got := <-done; got.ID != 101 || got.Status != StatusCanceled {
		t.Errorf("woke with %+v", got)
	}
}

// TestNoHooks: a quiet pipeline's status changes post nothing; the hook a
// test delivers is the only one.
func TestNoHooks(t *testing.T) {
	recv := newHookRecv(0)
	hooks := httptest.NewServer(recv)
	defer hooks.Close()
	sim, _ := start(t, Config{HookURL: hooks.URL})
	p, err := sim.CreatePipeline(NewPipeline{Project: "999", Outcome: &Outcome{}, NoHooks: true})
	if err != nil {
		t.Fatal(err)
	}
	waitPipeline(t, sim, p.ID, func(p Pipeline) bool { return Terminal(p.Status) })
	if hs := sim.Hooks(); len(hs) != 0 || sim.Stats().PipelinesMade != 1 {
		t.Fatalf("hooks %+v, pipelines made %d", hs, sim.Stats().PipelinesMade)
	}
	if err := sim.DeliverHook(context.Background(), p.ID); err != nil {
		t.Fatal(err)
	}
	if got := recv.statuses(); len(got) != 1 || got[0] != StatusSuccess {
		t.Errorf("received %v, want the one delivered hook", got)
	}
}
