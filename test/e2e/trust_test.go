package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/sim/portsim"
	"github.com/paved-idp/paved/internal/waitfor"
	h "github.com/paved-idp/paved/test/harness"
)

// runView is the part of GET /api/v1/runs/{id} these tests read.
type runView struct {
	State          string `json:"state"`
	PipelineID     int64  `json:"pipelineId"`
	PipelineStatus string `json:"pipelineStatus"`
}

func getRun(t *testing.T, e *h.Env, id string) runView {
	t.Helper()
	var v runView
	if code := e.API("GET", "/api/v1/runs/"+id, &v); code != 200 {
		t.Fatalf("GET run %s: %d", id, code)
	}
	return v
}

// forge rewrites fields of a real Pipeline Hook body, as a Developer of
// another project (or a group webhook) could make GitLab send.
func forge(t *testing.T, body []byte, edit func(attrs, project map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	edit(m["object_attributes"].(map[string]any), m["project"].(map[string]any))
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func foreignProject(t *testing.T, e *h.Env) {
	t.Helper()
	if err := e.GitLab.AddProject(gitlabsim.Project{ID: 999, Path: "someone/else", DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
}

// A hook moves only the run that owns its pipeline, in the run's project:
// hooks from another project naming the run — its own pipeline, or one
// carrying PAVED_RUN_ID — are answered "ignored" and change nothing.
func TestHooksFromAnotherProjectMoveNothing(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{Outcome: h.LongPipeline})
	portRun, ans := e.Press(h.Bucket(h.Dana, "dev", nil))
	e.WaitState(ans.RunID, "running")
	real := getRun(t, e, ans.RunID)
	foreignProject(t, e)
	foreign, err := e.GitLab.CreatePipeline(gitlabsim.NewPipeline{Project: "999", NoHooks: true,
		Variables: []gitlabsim.Variable{{Key: "PAVED_RUN_ID", Value: ans.RunID}}})
	if err != nil {
		t.Fatal(err)
	}
	foreignBody, ok := e.GitLab.HookBody(foreign.ID)
	realBody, ok2 := e.GitLab.HookBody(real.PipelineID)
	if !ok || !ok2 {
		t.Fatal("no hook bodies")
	}
	success := func(attrs, _ map[string]any) { attrs["status"] = "success" }
	hooks := map[string][]byte{
		"a foreign pipeline carrying the run's id": forge(t, foreignBody, success),
		"the run's pipeline id, from another project": forge(t, realBody, func(attrs, project map[string]any) {
			attrs["status"] = "success"
			project["id"], project["path_with_namespace"] = 999, "someone/else"
		}),
	}
	for name, body := range hooks {
		a := e.GitLabHook(body)
		if a.Code != 200 || a.Ignored == "" || a.Applied != "" {
			t.Errorf("%s: answered %+v, want 200 ignored with a reason", name, a)
		}
	}
	got := getRun(t, e, ans.RunID)
	if got.State != "running" || got.PipelineID != real.PipelineID {
		t.Fatalf("run after foreign hooks: %+v, want still running on #%d", got, real.PipelineID)
	}
	// The entity shows the run under way (written when its pipeline
	// started), and nothing a foreign hook said.
	if ents := e.Port.Entities("s3_bucket"); e.Finished(portRun) || len(ents) > 1 || (len(ents) == 1 && ents[0].Properties["status"] != "provisioning") {
		t.Fatalf("a foreign hook finished the Port run or wrote its entity: %v", ents)
	}
	for _, p := range e.GitLab.Pipelines() {
		if p.Status == gitlabsim.StatusCanceled {
			t.Fatalf("paved canceled pipeline #%d", p.ID)
		}
	}
}

// A hook for a run that is still dispatching (its trigger answer lost) is
// not taken on its word: a foreign pipeline carrying the run's id is never
// adopted, and the run's real pipeline, found by reconcile, is neither
// replaced nor canceled.
func TestDispatchingRunAdoptsOnlyWhatGitLabVouchesFor(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{ReconcileAfter: 4 * time.Second,
		GitLabFaults: gitlabsim.Faults{LostCreateRate: 1, HookDropRate: 1}})
	portRun, ans := e.Press(h.Bucket(h.Dana, "dev", nil))
	e.WaitState(ans.RunID, "dispatching")
	waitfor.Until(t, "GitLab to create the run's pipeline", func() bool { return e.GitLab.CountByRunID(ans.RunID) == 1 })
	foreignProject(t, e)
	foreign, err := e.GitLab.CreatePipeline(gitlabsim.NewPipeline{Project: "999", NoHooks: true,
		Outcome:   &gitlabsim.Outcome{Status: gitlabsim.StatusSuccess},
		Variables: []gitlabsim.Variable{{Key: "PAVED_RUN_ID", Value: ans.RunID}}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := e.GitLab.HookBody(foreign.ID)
	if a := e.GitLabHook(body); a.Code != 200 || a.Ignored == "" {
		t.Fatalf("foreign hook for a dispatching run: %+v, want ignored", a)
	}
	// The same hook claiming to come from the run's own project: GitLab has
	// no such pipeline there.
	spoofed := forge(t, body, func(_, project map[string]any) { project["path_with_namespace"] = "platform/paved-provision" })
	if a := e.GitLabHook(spoofed); a.Code != 200 || a.Ignored == "" {
		t.Fatalf("spoofed hook for a dispatching run: %+v, want ignored", a)
	}
	// Reconcile may already have adopted the run's own pipeline (a slow
	// machine); the foreign one never.
	if got := getRun(t, e, ans.RunID); got.PipelineID == foreign.ID {
		t.Fatalf("run adopted a foreign pipeline on a hook's word: %+v", got)
	}
	e.GitLab.SetFaults(gitlabsim.Faults{})
	r := e.WaitPort(portRun)
	if r.Status != "SUCCESS" {
		t.Fatalf("Port run %s, want SUCCESS", r.Status)
	}
	var mine []gitlabsim.Pipeline
	for _, p := range e.GitLab.Pipelines() {
		if v, _ := p.Var("PAVED_RUN_ID"); v == ans.RunID && p.ProjectID != 999 {
			mine = append(mine, p)
		}
	}
	if len(mine) != 1 || mine[0].Status != gitlabsim.StatusSuccess {
		t.Fatalf("the run's pipelines %+v, want exactly one, succeeded (not canceled)", mine)
	}
	if got := getRun(t, e, ans.RunID); got.PipelineID != mine[0].ID {
		t.Fatalf("run recorded pipeline #%d, want its own #%d", got.PipelineID, mine[0].ID)
	}
}

// POST /api/v1/runs with an Idempotency-Key already used for a different
// request answers 409; only an identical repeat returns the first run.
func TestIdempotencyKeyReuseIsAConflict(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	submit := func(key, bucket string) (int, map[string]any) {
		body := fmt.Sprintf(`{"action":"add-s3-bucket","user":{"email":"dana@acme.example","teams":["payments"]},
			"entity":{"identifier":"checkout","blueprint":"service","team":["payments"]},
			"inputs":{"tenant":"acme","environment":"dev","bucketName":%q}}`, bucket)
		req, _ := http.NewRequest("POST", e.URL+"/api/v1/runs", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+h.APIToken)
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, first := submit("idem-1", "receipts")
	if code != 201 {
		t.Fatalf("first submission: %d %v", code, first)
	}
	if code, again := submit("idem-1", "receipts"); code != 200 || again["runId"] != first["runId"] {
		t.Fatalf("identical repeat: %d %v, want 200 with run %v", code, again, first["runId"])
	}
	code, conflict := submit("idem-1", "invoices")
	if msg, _ := conflict["error"].(string); code != 409 || !strings.Contains(msg, "already used for a different request") {
		t.Fatalf("different request under the same key: %d %v, want 409 saying so", code, conflict)
	}
	if n := e.StoredRuns(); n != 1 {
		t.Fatalf("%d runs stored, want 1", n)
	}
}

// What a run's pipeline may post is capped in all: past the caps the
// callback gets 413 with a clear message. The simulated provisioning job
// posts a few lines and outputs of its own while the test runs, so the
// caps leave room for those.
func TestCallbackCapsOverHTTP(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{Outcome: h.LongPipeline, Limits: "{runLogLines: 1000, runOutputBytes: 4096}"})
	_, ans := e.Press(h.Bucket(h.Dana, "dev", nil))
	e.WaitState(ans.RunID, "running")
	token := run.Token([]byte(h.RunKey), ans.RunID)
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequest("POST", e.URL+"/api/v1/runs/"+ans.RunID+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		a := e.Do(req)
		return a.Code, a.Error
	}
	lines, _ := json.Marshal(map[string][]string{"lines": make([]string, 500)})
	if code, msg := post("/logs", string(lines)); code != 202 {
		t.Fatalf("logs within the cap: %d %s", code, msg)
	}
	// Whether the second 500 still fit depends on how many lines the job
	// posted so far; by the third the cap is passed whatever it posted.
	code, msg := post("/logs", string(lines))
	if code == 202 {
		code, msg = post("/logs", string(lines))
	}
	if code != 413 || !strings.Contains(msg, "cap of 1000") {
		t.Fatalf("logs past the cap: %d %q, want 413 naming the cap", code, msg)
	}
	big := fmt.Sprintf(`{"outputs":{"blob":%q}}`, strings.Repeat("x", 5000))
	if code, msg := post("/outputs", big); code != 413 || !strings.Contains(msg, "cap of 4096") {
		t.Fatalf("outputs past the cap: %d %q, want 413 naming the cap", code, msg)
	}
	if code, msg := post("/outputs", `{"outputs":{"region":"eu-west-1"}}`); code != 200 {
		t.Fatalf("outputs within the cap: %d %s", code, msg)
	}
}

// Readiness proves the store can write: a database that still reads but
// cannot write makes /readyz answer 503.
func TestReadinessNeedsAWritableStore(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	if e.OnPostgres() {
		t.Skip("makes the SQLite file read-only")
	}
	ready := func() int {
		resp, err := http.Get(e.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := ready(); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	files := []string{e.DBPath, e.DBPath + "-wal"} // -shm is shared memory (mmap), not the data
	if out, err := exec.Command("chattr", append([]string{"+i"}, files...)...).CombinedOutput(); err != nil {
		t.Skipf("cannot make the database read-only here (chattr: %v: %s)", err, out)
	}
	defer func() { _ = exec.Command("chattr", append([]string{"-i"}, files...)...).Run() }()
	if code := ready(); code != 503 {
		t.Fatalf("readyz with a read-only database: %d, want 503", code)
	}
	if err := exec.Command("chattr", append([]string{"-i"}, files...)...).Run(); err != nil {
		t.Fatal(err)
	}
	if code := ready(); code != 200 {
		t.Fatalf("readyz after the database is writable again: %d", code)
	}
}

// Port's entity "team" holds team identifiers; the user's teams are read
// from Port's teamsIdentifiers, so a team whose name differs from its
// identifier still owns its service in production.
func TestOwningTeamComparedByIdentifier(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{Outcome: h.LongPipeline})
	eu := &portsim.Entity{Identifier: "checkout-eu", Title: "Checkout EU", Blueprint: "service", Team: []string{"payments_eu"}}
	inv := h.Bucket(h.Eve, "prod", nil)
	inv.Entity = eu
	if _, ans := e.Press(inv); ans.Code != http.StatusAccepted || ans.State != "queued" {
		t.Fatalf("owning team by identifier: %+v, want queued", ans)
	}
	other := h.Bucket(h.Eve, "prod", nil) // checkout belongs to "payments"
	if _, ans := e.Press(other); ans.State != "rejected" || !strings.Contains(strings.Join(ans.Reasons, " "), `owning team "payments"`) {
		t.Fatalf("another team's service: %+v, want rejected", ans)
	}
}

// A Port run id that is not Port's shape, and a body whose wrongly cased
// keys try to override the real ones, are refused or ignored before
// anything is stored.
func TestHostilePortBodies(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	id, err := e.Port.CreateRun(h.Bucket(h.Dana, "dev", nil))
	if err != nil {
		t.Fatal(err)
	}
	body := e.WebhookBody(id)
	for _, bad := range []string{"../../v1/blueprints", "r_1/../x", "r 1", "r_\u0001", strings.Repeat("r", 129)} {
		quoted, _ := json.Marshal(bad)
		b := bytes.Replace(body, []byte(`"runId":"`+id+`"`), append([]byte(`"runId":`), quoted...), 1)
		if a := e.Deliver(b, time.Now(), nil); a.Code != 400 || !strings.Contains(a.Error, "runId") || len(a.Error) > 600 {
			t.Errorf("run id %.20q: %+v, want 400 naming runId (short)", bad, a)
		}
	}
	if n := e.StoredRuns(); n != 0 {
		t.Fatalf("%d runs stored from bad run ids", n)
	}
	// "ACTION" after "action" must not override it.
	cased := bytes.Replace(body, []byte(`"action":"add-s3-bucket"`), []byte(`"action":"add-s3-bucket","ACTION":"delete-service"`), 1)
	if bytes.Equal(cased, body) {
		t.Fatal("test body lacks the action key")
	}
	a := e.Deliver(cased, time.Now(), nil)
	if a.Code != 202 {
		t.Fatalf("cased duplicate key: %+v", a)
	}
	var got struct {
		Request struct {
			Action string `json:"action"`
		} `json:"request"`
	}
	if e.API("GET", "/api/v1/runs/"+a.RunID, &got); got.Request.Action != "add-s3-bucket" {
		t.Fatalf("stored action %q, want add-s3-bucket", got.Request.Action)
	}
}
