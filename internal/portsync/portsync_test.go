package portsync

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/blueprint"
	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/portal/port"
	"github.com/paved-idp/paved/internal/render"
	"github.com/paved-idp/paved/internal/sim/portsim"
)

type env struct {
	t   *testing.T
	sim *portsim.Sim
	api Client
}

func newEnv(t *testing.T) *env {
	sim := portsim.New(portsim.Config{ClientID: "cid", ClientSecret: "csecret"})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, sim: sim, api: Client{Port: port.NewClient(srv.URL, "cid", "csecret", port.Options{HTTPClient: srv.Client()})}}
}

// sync runs a sync and returns the plan and what it printed.
func (e *env) sync(want render.Port, dryRun bool) ([]Change, string) {
	e.t.Helper()
	var out strings.Builder
	plan, err := Sync(context.Background(), e.api, want, Options{DryRun: dryRun, Out: &out})
	if err != nil {
		e.t.Fatalf("sync: %v\n%s", err, out.String())
	}
	return plan, out.String()
}

// writes are the calls since the first n that were not reads.
func (e *env) writes(n int) []string {
	var out []string
	for _, c := range e.sim.Calls()[n:] {
		if c.Method != http.MethodGet && c.Path != "/v1/auth/access_token" {
			out = append(out, c.Method+" "+c.Path)
		}
	}
	return out
}

func shipped(t *testing.T) render.Port {
	t.Helper()
	cat, err := catalog.Load("../../actions")
	if err != nil {
		t.Fatal(err)
	}
	bps, ps := blueprint.Load("../../blueprints")
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	p, err := render.RenderPort(cat.List(), bps, render.PortOptions{WebhookURL: "https://paved.example.com/webhooks/port"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ops(plan []Change) map[Op]int {
	n := map[Op]int{}
	for _, c := range plan {
		n[c.Op]++
	}
	return n
}

func TestSyncAgainstPortsim(t *testing.T) {
	e := newEnv(t)
	want := shipped(t)
	total := len(want.Blueprints) + len(want.Actions)

	// A dry run reads and writes nothing.
	plan, out := e.sync(want, true)
	if n := ops(plan); n[Create] != total {
		t.Fatalf("dry run plan %v", n)
	}
	if w := e.writes(0); len(w) != 0 {
		t.Fatalf("a dry run wrote: %v", w)
	}
	if _, ok := e.sim.Blueprint("service"); ok || !strings.Contains(out, "blueprint service: create\n") || !strings.Contains(out, "nothing written") {
		t.Fatalf("dry run output:\n%s", out)
	}

	// The first sync creates everything, blueprints first in render's order
	// (the simulator refuses a relation to a blueprint it lacks).
	mark := len(e.sim.Calls())
	plan, _ = e.sync(want, false)
	if n := ops(plan); n[Create] != total {
		t.Fatalf("first sync plan %v", n)
	}
	w := e.writes(mark)
	if len(w) != total || w[0] != "POST /v1/blueprints" || w[len(w)-1] != "POST /v1/actions" {
		t.Fatalf("first sync wrote %v", w)
	}
	for _, id := range []string{"add-s3-bucket", "create-service", render.ApproveRunAction} {
		if a, ok := e.sim.Action(id); !ok || a["invocationMethod"].(map[string]any)["body"] == nil {
			t.Fatalf("action %s in Port: %v", id, a)
		}
	}

	// The second changes nothing and says so.
	mark = len(e.sim.Calls())
	plan, out = e.sync(want, false)
	if n := ops(plan); n[Unchanged] != total {
		t.Fatalf("second sync plan %v:\n%s", n, out)
	}
	if w := e.writes(mark); len(w) != 0 {
		t.Fatalf("second sync wrote %v", w)
	}
	if !strings.HasSuffix(out, "nothing to do: all "+strconv.Itoa(total)+" are as rendered\n") {
		t.Fatalf("second sync output:\n%s", out)
	}

	// A change is an update of that document only, with what changed.
	changed := shipped(t)
	changed.Blueprints[0]["title"] = "Deployment environment"
	var bucket map[string]any
	for _, a := range changed.Actions {
		if a["identifier"] == "add-s3-bucket" {
			bucket = a
		}
	}
	inputs := bucket["trigger"].(map[string]any)["userInputs"].(map[string]any)["properties"].(map[string]any)
	inputs["bucketName"].(map[string]any)["title"] = "Name of the bucket"
	delete(inputs["versioning"].(map[string]any), "default")

	mark = len(e.sim.Calls())
	plan, out = e.sync(changed, true)
	if n := ops(plan); n[Update] != 2 || len(e.writes(mark)) != 0 {
		t.Fatalf("dry run of a change: plan %v, wrote %v", n, e.writes(mark))
	}
	for _, line := range []string{
		"blueprint environment: update\n    ~ title: \"Environment\" → \"Deployment environment\"\n",
		"action add-s3-bucket: update\n    ~ trigger.userInputs.properties.bucketName.title: \"Bucket name\" → \"Name of the bucket\"\n    - trigger.userInputs.properties.versioning.default: true\n",
		"dry run: would create 0, update 2, leave " + strconv.Itoa(total-2) + " unchanged; nothing written",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("dry run output lacks %q:\n%s", line, out)
		}
	}
	mark = len(e.sim.Calls())
	plan, _ = e.sync(changed, false)
	if n := ops(plan); n[Update] != 2 {
		t.Fatalf("update plan %v", n)
	}
	if w := e.writes(mark); !slices.Equal(w, []string{"PUT /v1/blueprints/environment", "PUT /v1/actions/add-s3-bucket"}) {
		t.Fatalf("update wrote %v", w)
	}
	if bp, _ := e.sim.Blueprint("environment"); bp["title"] != "Deployment environment" || bp["createdAt"] == nil {
		t.Fatalf("environment in Port: %v", bp)
	}
	if plan, _ := e.sync(changed, false); ops(plan)[Unchanged] != total {
		t.Fatal("a sync after the update still finds changes")
	}
}

func TestPlanReadError(t *testing.T) {
	sim := portsim.New(portsim.Config{ClientID: "cid", ClientSecret: "csecret"})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	api := Client{Port: port.NewClient(srv.URL, "cid", "wrong", port.Options{HTTPClient: srv.Client()})}
	_, err := Plan(context.Background(), api, shipped(t))
	if err == nil || !strings.Contains(err.Error(), "read blueprint environment") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v", err)
	}
}

func TestDiff(t *testing.T) {
	have := map[string]any{"a": 1.0, "o": map[string]any{"x": "1", "gone": true, "deep": map[string]any{"k": []any{"a"}}}}
	want := map[string]any{"a": 1.0, "o": map[string]any{"x": "2", "new": nil, "deep": map[string]any{"k": []any{"a", "b"}}}}
	var paths []string
	for _, d := range diff("", have, true, want, true) {
		paths = append(paths, d.Path)
	}
	if got := strings.Join(paths, " "); got != ".o.deep.k .o.gone .o.new .o.x" {
		t.Fatalf("paths = %s", got)
	}
}
