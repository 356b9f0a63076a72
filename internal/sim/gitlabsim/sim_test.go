package gitlabsim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const token = "glpat-test"

// slow keeps pipelines in "created" so tests can look at them undisturbed.
func slow(Pipeline) Outcome { return Outcome{Status: StatusSuccess, Created: time.Hour} }

func start(t *testing.T, cfg Config) (*Sim, *httptest.Server) {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = token
	}
	sim := New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return sim, srv
}

func do(t *testing.T, method, u, tok, ctype, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("PRIVATE-TOKEN", tok)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestCreatePipeline(t *testing.T) {
	sim, srv := start(t, Config{Decide: slow})
	base := srv.URL + "/api/v4/projects/"
	tests := []struct {
		name, path, ctype, body string
		wantCode                int
		wantVars                []Variable
		wantMsg                 string
	}{
		{"json with variables", "group%2Fproj/pipeline", "application/json",
			`{"ref":"main","variables":[{"key":"PAVED_RUN_ID","value":"r_1"},{"key":"PAVED_REQUEST","value":"{}","variable_type":"file"}]}`,
			201, []Variable{{Key: "PAVED_RUN_ID", Value: "r_1", VariableType: "env_var"}, {Key: "PAVED_REQUEST", Value: "{}", VariableType: "file"}}, ""},
		{"ref in query", "7/pipeline?ref=main", "", "", 201, nil, ""},
		{"form array of hashes", "7/pipeline", "application/x-www-form-urlencoded",
			"ref=main&variables[][key]=A&variables[][value]=1&variables[][key]=B&variables[][variable_type]=file&variables[][value]=2",
			201, []Variable{{Key: "A", Value: "1", VariableType: "env_var"}, {Key: "B", Value: "2", VariableType: "file"}}, ""},
		{"missing ref", "7/pipeline", "application/json", `{}`, 400, nil, `400 (Bad request) "ref" not given`},
		{"bad variable type", "7/pipeline", "application/json",
			`{"ref":"main","variables":[{"key":"A","value":"1","variable_type":"secret"}]}`, 400, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, http.MethodPost, base+tt.path, token, tt.ctype, tt.body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantCode, b)
			}
			if tt.wantMsg != "" {
				if m := decode[map[string]string](t, b); m["message"] != tt.wantMsg {
					t.Errorf("message %q, want %q", m["message"], tt.wantMsg)
				}
			}
			if resp.StatusCode != 201 {
				return
			}
			m := decode[map[string]any](t, b)
			for _, k := range []string{"id", "iid", "project_id", "sha", "ref", "status", "source", "before_sha", "tag",
				"yaml_errors", "user", "created_at", "updated_at", "started_at", "finished_at", "committed_at",
				"duration", "queued_duration", "coverage", "web_url", "detailed_status"} {
				if _, ok := m[k]; !ok {
					t.Errorf("response lacks %q", k)
				}
			}
			if m["source"] != "api" || m["status"] != "created" || m["ref"] != "main" {
				t.Errorf("source/status/ref = %v/%v/%v", m["source"], m["status"], m["ref"])
			}
			if _, err := time.Parse("2006-01-02T15:04:05.000Z", m["created_at"].(string)); err != nil {
				t.Errorf("created_at not ISO 8601 ms: %v", err)
			}
			ds := m["detailed_status"].(map[string]any)
			for _, k := range []string{"icon", "text", "label", "group", "tooltip", "has_details", "details_path", "illustration", "favicon"} {
				if _, ok := ds[k]; !ok {
					t.Errorf("detailed_status lacks %q", k)
				}
			}
			id := int64(m["id"].(float64))
			p, ok := sim.Pipeline(id)
			if !ok {
				t.Fatal("pipeline not recorded")
			}
			if len(p.Variables) != len(tt.wantVars) {
				t.Fatalf("variables %v, want %v", p.Variables, tt.wantVars)
			}
			for i := range tt.wantVars {
				if p.Variables[i] != tt.wantVars[i] {
					t.Errorf("variable %d = %v, want %v", i, p.Variables[i], tt.wantVars[i])
				}
			}
			if !strings.HasSuffix(m["web_url"].(string), "/-/pipelines/"+strconv.FormatInt(id, 10)) {
				t.Errorf("web_url %v", m["web_url"])
			}
		})
	}
	if got := sim.CreateCalls(); got != len(tests) {
		t.Errorf("CreateCalls = %d, want %d", got, len(tests))
	}
	if got := sim.CountByRunID("r_1"); got != 1 {
		t.Errorf("CountByRunID = %d, want 1", got)
	}
}

func TestAuthAndNotFound(t *testing.T) {
	_, srv := start(t, Config{Decide: slow, Projects: []Project{{ID: 7, Path: "group/proj"}}})
	base := srv.URL + "/api/v4/projects/"
	bearer := func(u string) int {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := bearer(base + "7/pipelines"); code != 200 {
		t.Errorf("bearer auth: %d", code)
	}
	tests := []struct {
		name, method, path, tok string
		code                    int
		body                    string
	}{
		{"missing token", "GET", "7/pipelines", "", 401, `{"message":"401 Unauthorized"}`},
		{"wrong token", "GET", "7/pipelines", "nope", 401, `{"message":"401 Unauthorized"}`},
		{"unknown project", "GET", "8/pipelines", token, 404, `{"message":"404 Project Not Found"}`},
		{"unknown project path", "GET", "other%2Fproj/pipelines", token, 404, `{"message":"404 Project Not Found"}`},
		{"path alias", "GET", "group%2Fproj/pipelines", token, 200, `[]`},
		{"unknown pipeline", "GET", "7/pipelines/999", token, 404, `{"message":"404 Not found"}`},
		{"unknown variables", "GET", "7/pipelines/999/variables", token, 404, `{"message":"404 Not found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, tt.method, base+tt.path, tt.tok, "", "")
			if resp.StatusCode != tt.code || strings.TrimSpace(string(b)) != tt.body {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, b, tt.code, tt.body)
			}
		})
	}
}

func TestListFiltersAndPagination(t *testing.T) {
	sim, srv := start(t, Config{Decide: slow})
	base := srv.URL + "/api/v4/projects/5/"
	for i := 0; i < 7; i++ {
		ref := "main"
		if i%2 == 1 {
			ref = "dev"
		}
		resp, b := do(t, "POST", base+"pipeline?ref="+ref, token, "", "")
		if resp.StatusCode != 201 {
			t.Fatalf("create: %d %s", resp.StatusCode, b)
		}
	}
	all := sim.Pipelines()
	mid := all[3].UpdatedAt

	list := func(q string) (*http.Response, []map[string]any) {
		resp, b := do(t, "GET", base+"pipelines?"+q, token, "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("list %s: %d %s", q, resp.StatusCode, b)
		}
		return resp, decode[[]map[string]any](t, b)
	}
	ids := func(items []map[string]any) []int64 {
		var out []int64
		for _, m := range items {
			out = append(out, int64(m["id"].(float64)))
		}
		return out
	}
	tests := []struct {
		name, query string
		want        []int64
	}{
		{"default id desc", "", []int64{all[6].ID, all[5].ID, all[4].ID, all[3].ID, all[2].ID, all[1].ID, all[0].ID}},
		{"ref", "ref=dev&sort=asc", []int64{all[1].ID, all[3].ID, all[5].ID}},
		{"status", "status=running", nil},
		// The time bounds are inclusive (UpdatedAtFilterable's >= and <=).
		{"updated_after", "sort=asc&updated_after=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), []int64{all[3].ID, all[4].ID, all[5].ID, all[6].ID}},
		{"updated_before", "sort=asc&updated_before=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), []int64{all[0].ID, all[1].ID, all[2].ID, all[3].ID}},
		{"created_after", "sort=asc&created_after=" + url.QueryEscape(all[5].CreatedAt.Format(time.RFC3339Nano)), []int64{all[5].ID, all[6].ID}},
		{"created_before", "sort=asc&created_before=" + url.QueryEscape(all[1].CreatedAt.Format(time.RFC3339Nano)), []int64{all[0].ID, all[1].ID}},
		{"source", "source=api&ref=main&sort=asc", []int64{all[0].ID, all[2].ID, all[4].ID, all[6].ID}},
		{"other source", "source=push", nil},
		{"scope branches: newest per ref", "scope=branches", []int64{all[6].ID, all[5].ID}},
		{"scope tags: no simulated tags", "scope=tags", nil},
		{"username", "username=paved-bot&per_page=1", []int64{all[6].ID}},
		{"other username", "username=root", nil},
		{"yaml_errors", "yaml_errors=true", nil},
		{"order by ref", "order_by=ref&sort=asc&per_page=2", []int64{all[1].ID, all[3].ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, items := list(tt.query)
			if got := ids(items); !equal(got, tt.want) {
				t.Errorf("ids %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("pagination headers", func(t *testing.T) {
		resp, items := list("per_page=3&page=2")
		if got := ids(items); !equal(got, []int64{all[3].ID, all[2].ID, all[1].ID}) {
			t.Errorf("page 2 ids %v", got)
		}
		want := map[string]string{"X-Page": "2", "X-Per-Page": "3", "X-Total": "7", "X-Total-Pages": "3", "X-Next-Page": "3", "X-Prev-Page": "1"}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		link := resp.Header.Get("Link")
		for _, rel := range []string{`rel="prev"`, `rel="next"`, `rel="first"`, `rel="last"`} {
			if !strings.Contains(link, rel) {
				t.Errorf("Link lacks %s: %s", rel, link)
			}
		}
		resp, _ = list("per_page=3&page=3")
		if resp.Header.Get("X-Next-Page") != "" || strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
			t.Errorf("last page has a next page: %v", resp.Header)
		}
	})
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestVariablesJobsAndCancel(t *testing.T) {
	sim, srv := start(t, Config{Decide: slow})
	base := srv.URL + "/api/v4/projects/5/"
	_, b := do(t, "POST", base+"pipeline", token, "application/json",
		`{"ref":"main","variables":[{"key":"PAVED_RUN_ID","value":"r_9"},{"key":"F","value":"x","variable_type":"file"}]}`)
	id := strconv.FormatInt(int64(decode[map[string]any](t, b)["id"].(float64)), 10)

	_, b = do(t, "GET", base+"pipelines/"+id+"/variables", token, "", "")
	vars := decode[[]map[string]string](t, b)
	if len(vars) != 2 || vars[0]["key"] != "PAVED_RUN_ID" || vars[0]["variable_type"] != "env_var" ||
		vars[1]["variable_type"] != "file" || vars[1]["value"] != "x" {
		t.Errorf("variables %v", vars)
	}

	_, b = do(t, "GET", base+"pipelines/"+id+"/jobs", token, "", "")
	jobs := decode[[]map[string]any](t, b)
	if len(jobs) != 1 || jobs[0]["name"] != "provision" || jobs[0]["stage"] != "deploy" {
		t.Errorf("jobs %v", jobs)
	}

	resp, b := do(t, "POST", base+"pipelines/"+id+"/cancel", token, "", "")
	if resp.StatusCode != 200 || decode[map[string]any](t, b)["status"] != "canceled" {
		t.Fatalf("cancel: %d %s", resp.StatusCode, b)
	}
	// A second cancel of a finished pipeline still answers 200, as documented.
	resp, b = do(t, "POST", base+"pipelines/"+id+"/cancel", token, "", "")
	if resp.StatusCode != 200 || decode[map[string]any](t, b)["status"] != "canceled" {
		t.Fatalf("second cancel: %d %s", resp.StatusCode, b)
	}
	if p := sim.Pipelines()[0]; p.Status != StatusCanceled || p.FinishedAt.IsZero() {
		t.Errorf("recorded %+v", p)
	}
}

func TestTrigger(t *testing.T) {
	sim, srv := start(t, Config{Decide: slow, TriggerToken: "trig"})
	u := srv.URL + "/api/v4/projects/5/trigger/pipeline"
	resp, b := do(t, "POST", u, "", "application/x-www-form-urlencoded", "token=trig&ref=main&variables[PAVED_RUN_ID]=r_7")
	if resp.StatusCode != 201 || decode[map[string]any](t, b)["source"] != "trigger" {
		t.Fatalf("trigger: %d %s", resp.StatusCode, b)
	}
	if sim.CountByRunID("r_7") != 1 {
		t.Errorf("variable not recorded: %+v", sim.Pipelines())
	}
	resp, _ = do(t, "POST", u, "", "application/x-www-form-urlencoded", "token=bad&ref=main")
	if resp.StatusCode != 404 {
		t.Errorf("bad trigger token: %d", resp.StatusCode)
	}
}

type hookRecv struct {
	mu      sync.Mutex
	headers []http.Header
	bodies  []map[string]any
	fail    int           // answer 500 to this many requests first
	got     chan struct{} // one token per hook accepted (see newHookRecv)
}

func newHookRecv(fail int) *hookRecv { return &hookRecv{fail: fail, got: make(chan struct{}, 64)} }

func (h *hookRecv) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail > 0 {
		h.fail--
		w.WriteHeader(500)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	h.headers = append(h.headers, r.Header.Clone())
	h.bodies = append(h.bodies, m)
	if h.got != nil {
		h.got <- struct{}{}
	}
}

// await blocks until n more hooks have been accepted; a hook that never
// comes fails the test by its timeout.
func (h *hookRecv) await(n int) {
	for i := 0; i < n; i++ {
		<-h.got
	}
}

func (h *hookRecv) statuses() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, b := range h.bodies {
		out = append(out, b["object_attributes"].(map[string]any)["status"].(string))
	}
	return out
}

// waitPipeline blocks until pipeline id satisfies cond.
func waitPipeline(t *testing.T, sim *Sim, id int64, cond func(Pipeline) bool) Pipeline {
	t.Helper()
	p, err := sim.WaitPipeline(context.Background(), id, cond)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func createdID(t *testing.T, b []byte) int64 {
	t.Helper()
	return int64(decode[map[string]any](t, b)["id"].(float64))
}

func TestProgressionAndHooks(t *testing.T) {
	tests := []struct {
		name   string
		decide func(Pipeline) Outcome
		job    func(context.Context, Pipeline) error
		want   string
		reason string
	}{
		{"success", nil, nil, "success", ""},
		{"decided failure", func(Pipeline) Outcome { return Outcome{Status: StatusFailed, Running: 5 * time.Millisecond} }, nil, "failed", "script_failure"},
		{"job error fails", nil, func(ctx context.Context, p Pipeline) error { return errors.New("pulumi up failed") }, "failed", "script_failure"},
		{"job sees variables", nil, func(ctx context.Context, p Pipeline) error {
			if v, _ := p.Var(RunIDVariable); v != "r_1" {
				return errors.New("no run id")
			}
			return nil
		}, "success", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv := newHookRecv(1) // the first delivery fails and is retried
			hooks := httptest.NewServer(recv)
			defer hooks.Close()
			sim, srv := start(t, Config{Decide: tt.decide, Job: tt.job, HookURL: hooks.URL, HookToken: "hooksecret"})
			resp, b := do(t, "POST", srv.URL+"/api/v4/projects/grp%2Fsvc/pipeline", token, "application/json",
				`{"ref":"main","variables":[{"key":"PAVED_RUN_ID","value":"r_1"}]}`)
			if resp.StatusCode != 201 {
				t.Fatalf("create: %d %s", resp.StatusCode, b)
			}
			recv.await(4)
			if got := strings.Join(recv.statuses(), ","); got != "created,pending,running,"+tt.want {
				t.Errorf("hook statuses %s", got)
			}
			recv.mu.Lock()
			defer recv.mu.Unlock()
			h, body := recv.headers[3], recv.bodies[3]
			for k, v := range map[string]string{"X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Token": "hooksecret", "Content-Type": "application/json"} {
				if h.Get(k) != v {
					t.Errorf("header %s = %q", k, h.Get(k))
				}
			}
			if h.Get("X-Gitlab-Event-UUID") == "" {
				t.Error("no X-Gitlab-Event-UUID")
			}
			if body["object_kind"] != "pipeline" || body["merge_request"] != nil {
				t.Errorf("object_kind/merge_request %v/%v", body["object_kind"], body["merge_request"])
			}
			oa := body["object_attributes"].(map[string]any)
			for _, k := range []string{"id", "iid", "name", "ref", "tag", "sha", "before_sha", "source", "status",
				"detailed_status", "stages", "created_at", "finished_at", "duration", "queued_duration", "variables", "url"} {
				if _, ok := oa[k]; !ok {
					t.Errorf("object_attributes lacks %q", k)
				}
			}
			if _, err := time.Parse("2006-01-02 15:04:05 UTC", oa["finished_at"].(string)); err != nil {
				t.Errorf("finished_at not in hook format: %v", err)
			}
			if _, ok := oa["detailed_status"].(string); !ok {
				t.Errorf("detailed_status is %T, want string", oa["detailed_status"])
			}
			if oa["name"] != "paved r_1" || oa["source"] != "api" {
				t.Errorf("object_attributes name/source = %v/%v, want the workflow:name and api", oa["name"], oa["source"])
			}
			vars := oa["variables"].([]any)
			if len(vars) != 1 || vars[0].(map[string]any)["key"] != RunIDVariable {
				t.Errorf("variables %v", vars)
			}
			proj := body["project"].(map[string]any)
			if proj["path_with_namespace"] != "grp/svc" || proj["namespace"] != "grp" || proj["name"] != "svc" ||
				proj["id"] != float64(sim.Pipelines()[0].ProjectID) {
				t.Errorf("project %v", proj)
			}
			for _, k := range []string{"id", "description", "web_url", "avatar_url", "git_ssh_url", "git_http_url", "visibility_level", "default_branch"} {
				if _, ok := proj[k]; !ok {
					t.Errorf("project lacks %q", k)
				}
			}
			builds := body["builds"].([]any)
			build := builds[0].(map[string]any)
			for _, k := range []string{"id", "stage", "name", "status", "created_at", "started_at", "finished_at", "duration",
				"queued_duration", "failure_reason", "when", "manual", "allow_failure", "user", "runner", "artifacts_file", "environment"} {
				if _, ok := build[k]; !ok {
					t.Errorf("build lacks %q", k)
				}
			}
			if build["status"] != tt.want || build["name"] != "provision" {
				t.Errorf("build %v", build)
			}
			if tt.reason != "" && build["failure_reason"] != tt.reason {
				t.Errorf("failure_reason %v", build["failure_reason"])
			}
			if hs := sim.Hooks(); hs[0].Attempts != 2 || !hs[0].Delivered {
				t.Errorf("first hook %+v, want delivered on the 2nd attempt", hs[0])
			}
		})
	}
}

func TestCancelStopsJob(t *testing.T) {
	started := make(chan struct{})
	stopped := make(chan struct{})
	sim, srv := start(t, Config{
		Decide: func(Pipeline) Outcome { return Outcome{Status: StatusSuccess} },
		Job: func(ctx context.Context, p Pipeline) error {
			close(started)
			<-ctx.Done()
			close(stopped)
			return ctx.Err()
		},
	})
	_, b := do(t, "POST", srv.URL+"/api/v4/projects/5/pipeline?ref=main", token, "", "")
	id := strconv.FormatInt(int64(decode[map[string]any](t, b)["id"].(float64)), 10)
	<-started
	do(t, "POST", srv.URL+"/api/v4/projects/5/pipelines/"+id+"/cancel", token, "", "")
	<-stopped // a job cancel did not stop would fail the test by its timeout
	if p := sim.Pipelines()[0]; p.Status != StatusCanceled {
		t.Errorf("status %s", p.Status)
	}
}

func TestFaults(t *testing.T) {
	t.Run("rate limit", func(t *testing.T) {
		_, srv := start(t, Config{Faults: Faults{RateLimitRate: 1, RateLimitReset: 2 * time.Second}})
		before := time.Now()
		resp, b := do(t, "GET", srv.URL+"/api/v4/projects/5/pipelines", token, "", "")
		if resp.StatusCode != 429 || strings.TrimSpace(string(b)) != "Retry later" {
			t.Fatalf("got %d %s", resp.StatusCode, b)
		}
		reset, err := strconv.ParseInt(resp.Header.Get("RateLimit-Reset"), 10, 64)
		if err != nil || reset < before.Unix()+2 || resp.Header.Get("Retry-After") != "2" {
			t.Errorf("RateLimit-Reset %q Retry-After %q", resp.Header.Get("RateLimit-Reset"), resp.Header.Get("Retry-After"))
		}
	})
	t.Run("server errors are deterministic per seed", func(t *testing.T) {
		run := func() string {
			sim, srv := start(t, Config{Seed: 42, Faults: Faults{ServerErrorRate: 0.5}})
			var codes []string
			for i := 0; i < 20; i++ {
				resp, _ := do(t, "GET", srv.URL+"/api/v4/projects/5/pipelines", token, "", "")
				codes = append(codes, strconv.Itoa(resp.StatusCode))
			}
			if st := sim.Stats(); st.ServerErrors == 0 || st.ServerErrors == 20 {
				t.Errorf("server errors %d of 20", st.ServerErrors)
			}
			return strings.Join(codes, ",")
		}
		if a, b := run(), run(); a != b {
			t.Errorf("same seed, different faults:\n%s\n%s", a, b)
		}
	})
	t.Run("lost create", func(t *testing.T) {
		sim, srv := start(t, Config{Decide: slow, Faults: Faults{LostCreateRate: 1}})
		resp, _ := do(t, "POST", srv.URL+"/api/v4/projects/5/pipeline", token, "application/json",
			`{"ref":"main","variables":[{"key":"PAVED_RUN_ID","value":"r_lost"}]}`)
		if resp.StatusCode != 502 || sim.CountByRunID("r_lost") != 1 {
			t.Errorf("status %d, pipelines %d", resp.StatusCode, sim.CountByRunID("r_lost"))
		}
	})
	t.Run("latency", func(t *testing.T) {
		_, srv := start(t, Config{Faults: Faults{Latency: 30 * time.Millisecond}})
		t0 := time.Now()
		do(t, "GET", srv.URL+"/api/v4/projects/5/pipelines", token, "", "")
		if d := time.Since(t0); d < 30*time.Millisecond {
			t.Errorf("answered in %v", d)
		}
	})
	t.Run("dropped hooks", func(t *testing.T) {
		recv := newHookRecv(0)
		hooks := httptest.NewServer(recv)
		defer hooks.Close()
		sim, srv := start(t, Config{HookURL: hooks.URL, Faults: Faults{HookDropRate: 1}})
		_, b := do(t, "POST", srv.URL+"/api/v4/projects/5/pipeline?ref=main", token, "", "")
		waitPipeline(t, sim, createdID(t, b), func(p Pipeline) bool { return Terminal(p.Status) })
		if n := len(recv.statuses()); n != 0 || sim.Stats().HooksDropped != 4 {
			t.Errorf("received %d hooks, dropped %d", n, sim.Stats().HooksDropped)
		}
	})
}

func TestCloseStopsRunningPipelines(t *testing.T) {
	sim := New(Config{Decide: func(Pipeline) Outcome { return Outcome{Running: time.Hour} },
		Job: func(ctx context.Context, p Pipeline) error { <-ctx.Done(); return ctx.Err() }})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	_, b := do(t, "POST", srv.URL+"/api/v4/projects/5/pipeline?ref=main", "any", "", "")
	waitPipeline(t, sim, createdID(t, b), func(p Pipeline) bool { return p.Status == StatusRunning })
	sim.Close() // returns only once the hour-long run and its Job have stopped
	if p := sim.Pipelines()[0]; p.Status != StatusRunning {
		t.Errorf("status after Close %s, want running (stopped, not finished)", p.Status)
	}
}

func TestSlowAnswersOutlastTheClient(t *testing.T) {
	// An hour-long hold: the only way the request ends within the test is
	// the client's timeout, and the handler lets go when the client leaves.
	_, srv := start(t, Config{Decide: slow, Faults: Faults{SlowRate: 1, SlowLatency: time.Hour}})
	hc := &http.Client{Timeout: 50 * time.Millisecond}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v4/projects/1/pipelines", nil)
	req.Header.Set("PRIVATE-TOKEN", token)
	_, err := hc.Do(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want the client's timeout", err)
	}
}
