package portsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	clientID     = "cid"
	clientSecret = "csecret"
)

// fakeClock is a settable clock so token expiry needs no sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	sim   *Sim
	srv   *httptest.Server
	clock *fakeClock
	token string
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)}
	cfg := Config{
		ClientID: clientID, ClientSecret: clientSecret, Now: clock.Now,
		Blueprints: []string{"service"},
		Users: map[string]User{"dev@example.com": {
			ID: "auth0|dev", FirstName: "Dana", LastName: "Dev", Teams: []string{"payments", "platform"},
		}},
	}
	if mod != nil {
		mod(&cfg)
	}
	e := &env{t: t, sim: New(cfg), clock: clock}
	e.srv = httptest.NewServer(e.sim.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// do sends a request and decodes the JSON answer (nil if the body is not JSON).
func (e *env) do(method, path, token string, body any) (*http.Response, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp, out
}

func (e *env) login() string {
	e.t.Helper()
	resp, out := e.do("POST", "/v1/auth/access_token", "", map[string]string{"clientId": clientID, "clientSecret": clientSecret})
	if resp.StatusCode != 200 {
		e.t.Fatalf("login: %d %v", resp.StatusCode, out)
	}
	e.token = out["accessToken"].(string)
	return e.token
}

func (e *env) newRun(inv Invocation) string {
	e.t.Helper()
	if inv.Action == "" {
		inv = Invocation{Action: "create_service", Blueprint: "service", User: Invoker{Email: "dev@example.com"},
			Inputs: map[string]any{"name": "svc"}}
	}
	id, err := e.sim.CreateRun(inv)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// wantErr checks Port's error shape and code.
func wantErr(t *testing.T, resp *http.Response, out map[string]any, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || out["ok"] != false || out["error"] != code || out["message"] == "" {
		t.Fatalf("got %d %v, want %d with error %q", resp.StatusCode, out, status, code)
	}
}

func TestAccessTokenAndExpiry(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TokenTTL = time.Hour })

	resp, out := e.do("POST", "/v1/auth/access_token", "", map[string]string{"clientId": clientID, "clientSecret": "nope"})
	wantErr(t, resp, out, 401, "unauthorized")
	resp, out = e.do("POST", "/v1/auth/access_token", "", map[string]string{"clientId": clientID})
	wantErr(t, resp, out, 422, "invalid_request")
	resp, out = e.do("POST", "/v1/auth/access_token", "", map[string]string{"clientId": clientID, "clientSecret": clientSecret, "x": "y"})
	wantErr(t, resp, out, 422, "invalid_request")

	resp, out = e.do("POST", "/v1/auth/access_token", "", map[string]string{"clientId": clientID, "clientSecret": clientSecret})
	if resp.StatusCode != 200 || out["ok"] != true || out["tokenType"] != "Bearer" || out["expiresIn"] != float64(3600) {
		t.Fatalf("token answer %d %v", resp.StatusCode, out)
	}
	tok := out["accessToken"].(string)

	// Port reuses the active token, reporting the seconds it has left.
	e.clock.Add(10 * time.Minute)
	_, again := e.do("POST", "/v1/auth/access_token", "", map[string]string{"clientId": clientID, "clientSecret": clientSecret})
	if again["accessToken"] != tok || again["expiresIn"] != float64(3000) {
		t.Fatalf("reuse: %v", again)
	}

	if resp, _ := e.do("GET", "/v1/users/dev@example.com", tok, nil); resp.StatusCode != 200 {
		t.Fatalf("valid token refused: %d", resp.StatusCode)
	}
	for name, tk := range map[string]string{"missing": "", "unknown": "bogus"} {
		resp, out := e.do("GET", "/v1/users/dev@example.com", tk, nil)
		if resp.StatusCode != 401 || out["ok"] != false {
			t.Errorf("%s token: %d %v", name, resp.StatusCode, out)
		}
	}

	e.clock.Add(50 * time.Minute) // exactly at expiry
	resp, out = e.do("GET", "/v1/users/dev@example.com", tok, nil)
	wantErr(t, resp, out, 401, "unauthorized")
	fresh := e.login()
	if fresh == tok {
		t.Fatal("expired token was issued again")
	}
	if resp, _ := e.do("GET", "/v1/users/dev@example.com", fresh, nil); resp.StatusCode != 200 {
		t.Fatalf("fresh token refused: %d", resp.StatusCode)
	}
}

func TestRunPatchLogsAndTerminalOnce(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login()
	id := e.newRun(Invocation{})
	if !strings.HasPrefix(id, "r_") || len(id) != 18 {
		t.Fatalf("run id %q is not like Port's r_xxxxxxxxxxxxxxxx", id)
	}

	resp, out := e.do("GET", "/v1/actions/runs/"+id, tok, nil)
	run, _ := out["run"].(map[string]any)
	if resp.StatusCode != 200 || run["status"] != "IN_PROGRESS" || run["id"] != id ||
		run["properties"].(map[string]any)["name"] != "svc" {
		t.Fatalf("GET run: %d %v", resp.StatusCode, out)
	}

	resp, out = e.do("PATCH", "/v1/actions/runs/"+id, tok, map[string]any{
		"statusLabel": "dispatching", "link": "https://gitlab/p/1", "externalRunId": "pipeline-1", "summary": "s1"})
	if resp.StatusCode != 200 || out["run"].(map[string]any)["status"] != "IN_PROGRESS" {
		t.Fatalf("label patch: %d %v", resp.StatusCode, out)
	}
	resp, _ = e.do("PATCH", "/v1/actions/runs/"+id, tok, map[string]any{"link": []string{"https://a", "https://b"}})
	if resp.StatusCode != 200 {
		t.Fatalf("array link: %d", resp.StatusCode)
	}
	resp, out = e.do("POST", "/v1/actions/runs/"+id+"/logs", tok, map[string]any{"message": "step 1"})
	if resp.StatusCode != 201 || out["runLog"].(map[string]any)["runId"] != id {
		t.Fatalf("log: %d %v", resp.StatusCode, out)
	}
	resp, _ = e.do("POST", "/v1/actions/runs/"+id+"/logs", tok, map[string]any{
		"message": "done", "terminationStatus": "SUCCESS", "statusLabel": "Completed"})
	if resp.StatusCode != 201 {
		t.Fatalf("terminal log: %d", resp.StatusCode)
	}

	// The run is finished: every further modification is refused, terminal or not.
	for _, c := range []struct{ method, path string }{
		{"PATCH", ""}, {"POST", "/logs"}, {"POST", "/logs"},
	} {
		body := map[string]any{"status": "FAILURE"}
		if c.path != "" {
			body = map[string]any{"message": "late", "terminationStatus": "FAILURE"}
		}
		resp, out := e.do(c.method, "/v1/actions/runs/"+id+c.path, tok, body)
		wantErr(t, resp, out, 400, "run_exhausted")
	}
	resp, out = e.do("POST", "/v1/actions/runs/"+id+"/logs", tok, map[string]any{"message": "no termination"})
	wantErr(t, resp, out, 400, "run_exhausted")

	rec, ok := e.sim.Run(id)
	if !ok {
		t.Fatal("run not recorded")
	}
	if rec.Status != StatusSuccess || rec.StatusLabel != "Completed" || rec.ExternalRunID != "pipeline-1" ||
		rec.Summary != "s1" || strings.Join(rec.Links, ",") != "https://a,https://b" || rec.EndedAt.IsZero() {
		t.Errorf("record fields: %+v", rec)
	}
	if rec.TerminalAttempts != 4 {
		t.Errorf("terminal attempts = %d, want 4 (1 accepted + 3 refused)", rec.TerminalAttempts)
	}
	if len(rec.Logs) != 2 || rec.Logs[1].TerminationStatus != "SUCCESS" || rec.Logs[0].Message != "step 1" {
		t.Errorf("logs: %+v", rec.Logs)
	}
	var kinds []string
	for i, ev := range rec.Events {
		kinds = append(kinds, ev.Kind+":"+strconv.Itoa(ev.Status))
		if i > 0 && ev.Seq <= rec.Events[i-1].Seq {
			t.Errorf("events out of order: %+v", rec.Events)
		}
	}
	want := "get:200 patch:200 patch:200 log:201 log:201 patch:400 log:400 log:400 log:400"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}

	// Records are deep copies.
	rec.Inputs["name"] = "mutated"
	rec.Logs[0].Message = "mutated"
	if again, _ := e.sim.Run(id); again.Inputs["name"] != "svc" || again.Logs[0].Message != "step 1" {
		t.Error("Run returned shared state")
	}
}

func TestRunRequestValidation(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login()
	id := e.newRun(Invocation{})
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"unknown run patch", "PATCH", "/v1/actions/runs/r_missing", map[string]any{"statusLabel": "x"}, 404, "not_found"},
		{"unknown run get", "GET", "/v1/actions/runs/r_missing", nil, 404, "not_found"},
		{"unknown run log", "POST", "/v1/actions/runs/r_missing/logs", map[string]any{"message": "x"}, 404, "not_found"},
		{"unknown field", "PATCH", "/v1/actions/runs/" + id, map[string]any{"state": "SUCCESS"}, 422, "invalid_request"},
		{"bad status", "PATCH", "/v1/actions/runs/" + id, map[string]any{"status": "DONE"}, 422, "invalid_request"},
		{"numeric link", "PATCH", "/v1/actions/runs/" + id, map[string]any{"link": 3}, 422, "invalid_request"},
		{"not json", "PATCH", "/v1/actions/runs/" + id, "{", 422, "invalid_request"},
		{"log without message", "POST", "/v1/actions/runs/" + id + "/logs", map[string]any{"statusLabel": "x"}, 422, "invalid_request"},
		{"bad termination", "POST", "/v1/actions/runs/" + id + "/logs", map[string]any{"message": "m", "terminationStatus": "OK"}, 422, "invalid_request"},
		{"too large", "POST", "/v1/actions/runs/" + id + "/logs", map[string]any{"message": strings.Repeat("x", 1<<20)}, 413, "request_too_large"},
		{"unknown route", "GET", "/v1/nope", nil, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, out := e.do(c.method, c.path, tok, c.body)
			wantErr(t, resp, out, c.status, c.code)
		})
	}
	if rec, _ := e.sim.Run(id); rec.Status != StatusInProgress || len(rec.Logs) != 0 || rec.TerminalAttempts != 0 {
		t.Errorf("invalid requests changed the run: %+v", rec)
	}
}

func TestEntityUpsert(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login()
	post := func(bp, query string, body any) (*http.Response, map[string]any) {
		return e.do("POST", "/v1/blueprints/"+bp+"/entities"+query, tok, body)
	}

	resp, out := post("nosuch", "", map[string]any{"identifier": "a"})
	wantErr(t, resp, out, 404, "not_found")
	for _, bad := range []string{"has space", "ümlaut", "a#b", "", "semi;colon"} {
		resp, out := post("service", "", map[string]any{"identifier": bad})
		wantErr(t, resp, out, 400, "bad_request")
	}
	resp, out = post("service", "", map[string]any{"identifier": "x", "team": 7})
	wantErr(t, resp, out, 400, "bad_request")

	good := "svc@A_b.c:d/e=f-9"
	resp, out = post("service", "", map[string]any{"identifier": good, "title": "T", "team": "payments",
		"properties": map[string]any{"a": 1, "b": "two"}, "relations": map[string]any{"env": "prod"}})
	if resp.StatusCode != 201 || out["entity"].(map[string]any)["identifier"] != good {
		t.Fatalf("create: %d %v", resp.StatusCode, out)
	}
	resp, out = post("service", "", map[string]any{"identifier": good})
	wantErr(t, resp, out, 409, "identifier_taken")

	// merge=true: only the given properties change; title, team and the rest stay.
	resp, _ = post("service", "?upsert=true&merge=true", map[string]any{"identifier": good, "properties": map[string]any{"b": "three", "c": true}})
	if resp.StatusCode != 200 {
		t.Fatalf("merge upsert: %d", resp.StatusCode)
	}
	got := e.sim.Entities("service")
	if len(got) != 1 {
		t.Fatalf("entities: %+v", got)
	}
	m := got[0]
	if m.Title != "T" || strings.Join(m.Team, ",") != "payments" || m.Properties["a"] != float64(1) ||
		m.Properties["b"] != "three" || m.Properties["c"] != true || m.Relations["env"] != "prod" {
		t.Errorf("merged entity: %+v", m)
	}

	// upsert without merge replaces the entity.
	resp, _ = post("service", "?upsert=true", map[string]any{"identifier": good, "properties": map[string]any{"z": 1}})
	if resp.StatusCode != 200 {
		t.Fatalf("replace upsert: %d", resp.StatusCode)
	}
	r := e.sim.Entities("service")[0]
	if r.Title != "" || len(r.Team) != 0 || len(r.Properties) != 1 || r.Properties["z"] != float64(1) || len(r.Relations) != 0 {
		t.Errorf("replaced entity: %+v", r)
	}
	if !r.CreatedAt.Equal(m.CreatedAt) {
		t.Error("replace lost createdAt")
	}

	// run_id ties an entity to a run while it is in progress, and not after.
	id := e.newRun(Invocation{})
	resp, _ = post("service", "?upsert=true&merge=true&run_id="+id, map[string]any{"identifier": "tied"})
	if resp.StatusCode != 201 {
		t.Fatalf("tied create: %d", resp.StatusCode)
	}
	resp, out = post("service", "?upsert=true&run_id=r_nosuch", map[string]any{"identifier": "tied"})
	wantErr(t, resp, out, 404, "not_found")
	e.do("PATCH", "/v1/actions/runs/"+id, tok, map[string]any{"status": "FAILURE"})
	resp, out = post("service", "?upsert=true&merge=true&run_id="+id, map[string]any{"identifier": "tied"})
	wantErr(t, resp, out, 400, "run_exhausted")
	if rec, _ := e.sim.Run(id); len(rec.Entities) != 1 || rec.Entities[0] != "service/tied" {
		t.Errorf("run entities: %v", rec.Entities)
	}

	// AnyBlueprint auto-allows blueprints.
	auto := newEnv(t, func(c *Config) { c.AnyBlueprint = true })
	resp, _ = auto.do("POST", "/v1/blueprints/whatever/entities", auto.login(), map[string]any{"identifier": "w"})
	if resp.StatusCode != 201 || len(auto.sim.Entities("whatever")) != 1 {
		t.Fatalf("auto blueprint: %d", resp.StatusCode)
	}
}

// TestUsers checks GET /v1/users/{user_email} against the shape in Port's API
// reference: teams is a list of team names, teamsIdentifiers the teams'
// identifiers (what an entity's team holds), roles a list of {name}.
func TestUsers(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.OrgID = "org_test"
		c.Users["ops@example.com"] = User{FirstName: "Olu", Teams: []string{"Payments EU", "Platform"},
			TeamIdentifiers: []string{"payments_eu", "platform"}, Roles: []string{"Admin"}}
		c.Users["new@example.com"] = User{}
	})
	tok := e.login()
	get := func(email string) map[string]any {
		t.Helper()
		resp, out := e.do("GET", "/v1/users/"+url.PathEscape(email), tok, nil)
		u, _ := out["user"].(map[string]any)
		if resp.StatusCode != 200 || out["ok"] != true || u == nil {
			t.Fatalf("user %s: %d %v", email, resp.StatusCode, out)
		}
		return u
	}
	list := func(v any) string {
		raw, _ := json.Marshal(v)
		return string(raw)
	}

	u := get("Dev@Example.com")
	if u["firstName"] != "Dana" || u["lastName"] != "Dev" || u["id"] != "auth0|dev" || u["email"] != "Dev@Example.com" || u["status"] != "ACTIVE" {
		t.Errorf("user: %v", u)
	}
	// Without configured identifiers, each team's identifier is its name.
	if list(u["teams"]) != `["payments","platform"]` || list(u["teamsIdentifiers"]) != `["payments","platform"]` {
		t.Errorf("teams %s, teamsIdentifiers %s", list(u["teams"]), list(u["teamsIdentifiers"]))
	}
	if list(u["roles"]) != `[{"name":"Member"}]` || list(u["orgs"]) != `[{"id":"org_test"}]` || list(u["providers"]) != `["port"]` {
		t.Errorf("roles %s, orgs %s, providers %s", list(u["roles"]), list(u["orgs"]), list(u["providers"]))
	}
	for _, k := range []string{"createdAt", "updatedAt"} {
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", u[k].(string)); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}

	ops := get("ops@example.com")
	if list(ops["teams"]) != `["Payments EU","Platform"]` || list(ops["teamsIdentifiers"]) != `["payments_eu","platform"]` ||
		list(ops["roles"]) != `[{"name":"Admin"}]` {
		t.Errorf("ops: %v", ops)
	}
	// A user in no team has empty lists, not nulls.
	if n := get("new@example.com"); list(n["teams"]) != `[]` || list(n["teamsIdentifiers"]) != `[]` {
		t.Errorf("teamless user: %v", n)
	}

	resp, out := e.do("GET", "/v1/users/nobody@example.com", tok, nil)
	wantErr(t, resp, out, 404, "not_found")
}

func TestFaultInjection(t *testing.T) {
	t.Run("5xx", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Faults.ErrorRate = 1 })
		resp, out := e.do("POST", "/v1/auth/access_token", "", map[string]string{"clientId": clientID, "clientSecret": clientSecret})
		wantErr(t, resp, out, 500, "internal_error")
	})
	t.Run("429 with headers", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Faults.RateLimitRate = 1; c.RateLimit = 50; c.RateLimitPeriod = time.Minute })
		resp, out := e.do("GET", "/v1/users/dev@example.com", "", nil)
		wantErr(t, resp, out, 429, "rate_limit_exceeded")
		h := resp.Header
		if h.Get("x-ratelimit-limit") != "50" || h.Get("x-ratelimit-remaining") != "0" ||
			h.Get("x-ratelimit-reset") != "60" || h.Get("x-ratelimit-period") != "60" {
			t.Errorf("headers: %v", h)
		}
	})
	t.Run("real limit and headers on every answer", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.RateLimit = 2; c.RateLimitPeriod = time.Minute })
		resp, _ := e.do("GET", "/v1/users/dev@example.com", "", nil) // 401, still counted
		if resp.Header.Get("x-ratelimit-remaining") != "1" {
			t.Errorf("remaining after 1: %q", resp.Header.Get("x-ratelimit-remaining"))
		}
		e.do("GET", "/v1/users/dev@example.com", "", nil)
		e.clock.Add(20 * time.Second)
		resp, out := e.do("GET", "/v1/users/dev@example.com", "", nil)
		wantErr(t, resp, out, 429, "rate_limit_exceeded")
		if resp.Header.Get("x-ratelimit-reset") != "40" {
			t.Errorf("reset: %q", resp.Header.Get("x-ratelimit-reset"))
		}
		e.clock.Add(40 * time.Second) // new window
		if resp, _ := e.do("GET", "/v1/users/dev@example.com", "", nil); resp.StatusCode != 401 {
			t.Errorf("after reset: %d", resp.StatusCode)
		}
	})
	t.Run("lost response is applied", func(t *testing.T) {
		e := newEnv(t, nil)
		tok := e.login()
		id := e.newRun(Invocation{})
		e.sim.cfg.Faults.LostResponseRate = 1 // only this test's sim, before concurrent use
		resp, out := e.do("POST", "/v1/actions/runs/"+id+"/logs", tok, map[string]any{"message": "m", "terminationStatus": "SUCCESS"})
		wantErr(t, resp, out, 502, "bad_gateway")
		if rec, _ := e.sim.Run(id); rec.Status != StatusSuccess || len(rec.Logs) != 1 {
			t.Errorf("lost request not applied: %+v", rec)
		}
	})
	t.Run("deterministic with seed", func(t *testing.T) {
		seq := func(seed uint64) string {
			e := newEnv(t, func(c *Config) {
				c.Faults = Faults{Seed: seed, ErrorRate: 0.3, RateLimitRate: 0.3}
			})
			var b strings.Builder
			for range 40 {
				resp, _ := e.do("GET", "/v1/users/dev@example.com", "", nil)
				b.WriteString(strconv.Itoa(resp.StatusCode) + " ")
			}
			return b.String()
		}
		a, b := seq(7), seq(7)
		if a != b {
			t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
		}
		for _, code := range []string{"401", "429", "500"} {
			if !strings.Contains(a, code) {
				t.Errorf("no %s in %s", code, a)
			}
		}
		if a == seq(8) {
			t.Error("different seeds gave identical fault sequences")
		}
	})
	t.Run("latency", func(t *testing.T) {
		// An hour of latency holds every answer past the client's patience,
		// so the outcome does not depend on how fast the machine is.
		e := newEnv(t, func(c *Config) { c.Faults.Latency = time.Hour })
		wantGivenUp(t, e)
	})
}

// verify recomputes Port's signature independently of the simulator's code.
func verify(secret, ts string, body []byte, header string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	return header == "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

type captured struct {
	header http.Header
	body   []byte
}

func receiver(t *testing.T, status int) (*httptest.Server, chan captured) {
	got := make(chan captured, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- captured{r.Header.Clone(), b}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestTriggerCreateBodyAndSignature(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.OrgID = "org_test" })
	hook, got := receiver(t, http.StatusAccepted)
	inv := Invocation{Action: "create_service", Blueprint: "service", User: Invoker{Email: "dev@example.com"},
		Inputs: map[string]any{"name": "checkout", "tier": 2, "html": "<b>&"}}
	runID, status, err := e.sim.Trigger(context.Background(), hook.URL+"/webhooks/port", inv)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("trigger: %v %d", err, status)
	}
	c := <-got
	// Signed at the simulator's (fake) clock, in Unix seconds.
	ts := c.header.Get("X-Port-Timestamp")
	if want := strconv.FormatInt(e.clock.Now().Unix(), 10); ts != want {
		t.Fatalf("timestamp %q, want %s", ts, want)
	}
	if !verify(clientSecret, ts, c.body, c.header.Get("X-Port-Signature")) {
		t.Fatalf("signature %q does not verify", c.header.Get("X-Port-Signature"))
	}
	if verify("other", ts, c.body, c.header.Get("X-Port-Signature")) {
		t.Fatal("signature verifies with the wrong key")
	}
	if c.header.Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", c.header.Get("Content-Type"))
	}
	if bytes.Contains(c.body, []byte(`\u003c`)) || bytes.Contains(c.body, []byte("\n")) {
		t.Errorf("body is not compact unescaped JSON: %s", c.body)
	}

	var b map[string]any
	if err := json.Unmarshal(c.body, &b); err != nil {
		t.Fatal(err)
	}
	check := func(path string, want any) {
		t.Helper()
		var v any = b
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				t.Errorf("%s: %v is not an object", path, v)
				return
			}
			if v, ok = m[k]; !ok {
				t.Errorf("%s: missing", path)
				return
			}
		}
		if want != "*" && v != want {
			t.Errorf("%s = %#v, want %#v", path, v, want)
		}
	}
	check("action", "create_service")
	check("resourceType", "run")
	check("status", "TRIGGERED")
	check("trigger.by.orgId", "org_test")
	check("trigger.by.userId", "auth0|dev")
	check("trigger.by.user.email", "dev@example.com")
	check("trigger.by.user.firstName", "Dana")
	check("trigger.by.user.lastName", "Dev")
	check("trigger.origin", "UI")
	check("trigger.at", "*")
	check("context.entity", nil)
	check("context.blueprint", "service")
	check("context.runId", runID)
	check("payload.entity", nil)
	check("payload.action.invocationMethod.type", "WEBHOOK")
	check("payload.action.invocationMethod.url", hook.URL+"/webhooks/port")
	check("payload.action.invocationMethod.method", "POST")
	check("payload.action.invocationMethod.synchronized", false)
	check("payload.action.trigger", "CREATE")
	check("payload.properties.name", "checkout")
	check("payload.properties.tier", float64(2))
	check("payload.properties.html", "<b>&")
	check("payload.censoredProperties", "*")
	if at := b["trigger"].(map[string]any)["at"]; at != "2026-11-03T10:00:00.000Z" {
		t.Errorf("trigger.at = %v, want the fake clock's time with milliseconds", at)
	}

	rec, _ := e.sim.Run(runID)
	if len(rec.Events) != 1 || rec.Events[0].Kind != "webhook" || rec.Events[0].Status != 202 || rec.Status != StatusInProgress {
		t.Errorf("run after trigger: %+v", rec)
	}
	again, err := e.sim.WebhookBody(runID, hook.URL+"/webhooks/port")
	if err != nil || !bytes.Equal(again, c.body) {
		t.Errorf("WebhookBody differs from the sent body: %v", err)
	}
}

func TestTriggerDay2EntityAndErrors(t *testing.T) {
	e := newEnv(t, nil)
	hook, got := receiver(t, http.StatusOK)
	ent := &Entity{Identifier: "checkout", Title: "Checkout", Team: []string{"payments"},
		Properties: map[string]any{"tier": "gold"}, Relations: map[string]any{"env": "prod"}}
	runID, _, err := e.sim.Trigger(context.Background(), hook.URL, Invocation{
		Action: "scale_service", Blueprint: "service", User: Invoker{Email: "x@example.com", FirstName: "X"}, Entity: ent})
	if err != nil {
		t.Fatal(err)
	}
	c := <-got
	var b struct {
		Context struct{ Entity string }
		Payload struct {
			Entity map[string]any
			Action struct{ Trigger string }
		}
	}
	if err := json.Unmarshal(c.body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Context.Entity != "checkout" || b.Payload.Action.Trigger != "DAY-2" {
		t.Errorf("context/trigger: %+v", b)
	}
	for _, k := range []string{"identifier", "title", "icon", "blueprint", "team", "properties", "relations", "createdAt", "createdBy", "updatedAt", "updatedBy"} {
		if _, ok := b.Payload.Entity[k]; !ok {
			t.Errorf("payload.entity.%s missing", k)
		}
	}
	if b.Payload.Entity["blueprint"] != "service" || b.Payload.Entity["properties"].(map[string]any)["tier"] != "gold" {
		t.Errorf("payload.entity: %v", b.Payload.Entity)
	}
	ent.Properties["tier"] = "mutated" // the run keeps its own copy
	if body, _ := e.sim.WebhookBody(runID, hook.URL); !bytes.Contains(body, []byte(`"gold"`)) {
		t.Error("run shares the caller's entity")
	}

	// A stale, re-signed request carries the given timestamp.
	stale := e.clock.Now().Add(-time.Hour)
	req, err := e.sim.SignedRequest(context.Background(), hook.URL, c.body, stale)
	if err != nil || req.Header.Get("X-Port-Timestamp") != strconv.FormatInt(stale.Unix(), 10) ||
		!verify(clientSecret, req.Header.Get("X-Port-Timestamp"), c.body, req.Header.Get("X-Port-Signature")) {
		t.Errorf("stale signed request: %v %v", err, req.Header)
	}

	if _, _, err := e.sim.Trigger(context.Background(), hook.URL, Invocation{Action: "a", Blueprint: "b", Operation: "UPDATE"}); err == nil {
		t.Error("bad operation accepted")
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	id, _, err := e.sim.Trigger(context.Background(), dead.URL, Invocation{Action: "a", Blueprint: "service"})
	if err == nil || id == "" {
		t.Fatalf("delivery failure: id %q err %v", id, err)
	}
	if rec, _ := e.sim.Run(id); len(rec.Events) != 1 || rec.Events[0].Status != 0 {
		t.Errorf("failed delivery not recorded: %+v", rec.Events)
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login()
	var ids []string
	for range 8 {
		ids = append(ids, e.newRun(Invocation{}))
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := map[string]any{"message": "m" + strconv.Itoa(i)}
				if i == 4 {
					body["terminationStatus"] = "SUCCESS"
				}
				e.do("POST", "/v1/actions/runs/"+id+"/logs", tok, body)
				_ = e.sim.Runs()
				_ = e.sim.Calls()
			}()
		}
	}
	wg.Wait()
	for _, r := range e.sim.Runs() {
		if r.Status != StatusSuccess || r.TerminalAttempts != 1 || len(r.Events) != 5 {
			t.Errorf("run %s: %+v", r.ID, r)
		}
	}
	if n := len(e.sim.Calls()); n != 41 {
		t.Errorf("calls = %d, want 41", n)
	}
}

func TestSlowAnswersOutlastTheClient(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Faults = Faults{SlowRate: 1, SlowLatency: time.Hour} })
	wantGivenUp(t, e)
}

// wantGivenUp sends one request to a simulator that holds answers for an
// hour: the client gives up once the simulator holds the request, no answer
// comes, and the simulator stops waiting when the client goes, recording the
// call unanswered (status 0). Nothing depends on timing: the hour is never
// reached, and closing the server waits for the handler to return. Without
// the hold, the handler would answer 401 and the test would see it.
//
// The request is a GET: net/http cancels a request's context on a client
// hanging up only once its body has been read (see Faults.Latency).
func wantGivenUp(t *testing.T, e *env) {
	t.Helper()
	entered := make(chan struct{})
	var once sync.Once
	api := e.sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(entered) })
		api.ServeHTTP(w, r)
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-entered; cancel() }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/users/dev@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a held request was answered %d", resp.StatusCode)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the client's cancellation", err)
	}
	srv.Close() // returns once the handler noticed the client had gone
	calls := e.sim.Calls()
	if len(calls) != 1 || calls[0].Status != 0 || calls[0].Path != "/v1/users/dev@example.com" {
		t.Fatalf("calls %+v, want one unanswered call", calls)
	}
}
