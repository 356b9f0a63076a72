package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/run"
)

const shipped = "../../deploy/pulumi/platform.yaml"

func TestShippedPlatformParses(t *testing.T) {
	c, err := platform.Load(shipped)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		if _, ok := c.Environment(env); !ok {
			t.Errorf("environment %s missing", env)
		}
	}
	if e, _ := c.Environment("prod"); !e.Production {
		t.Error("prod is not production")
	}
}

func write(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPlansFromTheRequestFile(t *testing.T) {
	dir := t.TempDir()
	st := run.Stack{Tenant: "acme", Environment: "dev", Service: "orders"}
	env := map[string]string{
		"PAVED_PLATFORM_CONFIG": shipped,
		"PAVED_REQUEST": write(t, dir, "req.json", run.PipelineRequest{RunID: "r_1", Action: "create-service",
			Operation: run.Create, Stack: st, Team: "payments", Inputs: map[string]any{"name": "orders", "replicas": 1}}),
		"PAVED_MODEL": filepath.Join(dir, "absent.json"),
	}
	_, plan, err := load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if plan.Target.StackName() != "acme-dev-orders" || plan.Model.Tenancy != platform.Single {
		t.Fatalf("plan = %+v", plan)
	}
	var out bytes.Buffer
	if err := printModel(&out, plan); err != nil || !strings.Contains(out.String(), `"stack": "acme-dev-orders"`) {
		t.Fatalf("check output %q, %v", out.String(), err)
	}

	// The next run adds a bucket to the model the first run exported.
	env["PAVED_MODEL"] = write(t, dir, "model.json", plan.Model)
	env["PAVED_REQUEST"] = write(t, dir, "req2.json", run.PipelineRequest{RunID: "r_2", Action: "add-s3-bucket",
		Operation: run.Day2, Stack: st, Inputs: map[string]any{"bucketName": "files"}})
	if _, plan, err = load(func(k string) string { return env[k] }); err != nil || len(plan.Model.Buckets) != 1 {
		t.Fatalf("second plan: %+v, %v", plan, err)
	}

	// A public bucket is refused, naming the rule.
	env["PAVED_REQUEST"] = write(t, dir, "req3.json", run.PipelineRequest{RunID: "r_3", Action: "add-s3-bucket",
		Operation: run.Day2, Stack: st, Inputs: map[string]any{"bucketName": "www", "public": true}})
	if _, _, err = load(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "rule no-public-s3") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadNeedsTheRequest(t *testing.T) {
	env := map[string]string{"PAVED_PLATFORM_CONFIG": shipped}
	if _, _, err := load(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "PAVED_REQUEST") {
		t.Fatalf("err = %v", err)
	}
}

// examples are the inputs a portal user fills in for each shipped action,
// on top of the schema's defaults; every action in actions/ needs one.
var examples = map[string]map[string]any{
	"create-service": {"name": "orders", "team": "payments"},
	"add-s3-bucket":  {"bucketName": "invoices"},
	"add-sqs-queue":  {"queueName": "jobs", "fifo": true},
	"delete-service": {"confirm": true},
}

// TestBinaryRunsEveryShippedActionUnderMocks builds the provision binary
// (with the provisionmocks tag: the real main, the program run against
// Pulumi's mock engine instead of the one `pulumi up` starts) and runs it on
// a PAVED_REQUEST of every shipped action, in the order a service lives
// them, each run reading the model the previous one left. Every run's
// resources keep every resource rule and carry the platform's stamp; the
// DELETE action is refused by the program (the pipeline runs pulumi
// destroy, which needs no program) with nothing registered.
func TestBinaryRunsEveryShippedActionUnderMocks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and links the provision binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "provision")
	build := exec.Command("go", "build", "-tags", "provisionmocks", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cat, err := catalog.Load("../../actions")
	if err != nil {
		t.Fatal(err)
	}
	actions := cat.List()
	// Create first, delete last: the order of a service's life.
	rank := map[run.Operation]int{run.Create: 0, run.Day2: 1, run.Delete: 2}
	slices.SortStableFunc(actions, func(a, b *catalog.Action) int { return rank[a.Operation] - rank[b.Operation] })
	for _, env := range []string{"dev", "prod"} {
		st := run.Stack{Tenant: "acme", Environment: env, Service: "orders"}
		model := filepath.Join(dir, env+"-model.json")
		for _, a := range actions {
			t.Run(env+"/"+a.Identifier, func(t *testing.T) {
				in, ok := examples[a.Identifier]
				if !ok {
					t.Fatalf("shipped action %s has no example request here", a.Identifier)
				}
				inputs := map[string]any{"tenant": st.Tenant, "environment": st.Environment}
				for k, p := range a.Inputs["properties"].(map[string]any) {
					if d, ok := p.(map[string]any)["default"]; ok {
						inputs[k] = d
					}
				}
				maps.Copy(inputs, in)
				if errs := a.Validate(inputs); len(errs) > 0 {
					t.Fatalf("the portal would refuse the example: %v", errs)
				}
				req := write(t, dir, a.Identifier+".json", run.PipelineRequest{RunID: "r_" + a.Identifier, Action: a.Identifier,
					Operation: a.Operation, Stack: st, Team: "payments", Inputs: inputs})
				cmd := exec.Command(bin)
				cmd.Env = append(os.Environ(), "PAVED_PLATFORM_CONFIG="+shipped, "PAVED_REQUEST="+req,
					"PAVED_MODEL="+model, "PAVED_STACK="+st.Key())
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				if a.Operation == run.Delete {
					if err == nil || !strings.Contains(stderr.String(), "pulumi destroy") || stdout.Len() != 0 {
						t.Fatalf("DELETE ran the program: %v\n%s%s", err, stdout.String(), stderr.String())
					}
					return
				}
				if err != nil {
					t.Fatalf("%v\n%s", err, stderr.String())
				}
				var rep struct {
					Stack      string
					Resources  []struct{ Type, Name, Version string }
					Violations []string
					Unstamped  []string
					Model      json.RawMessage
				}
				if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
					t.Fatalf("report: %v\n%s", err, stdout.String())
				}
				if rep.Stack != st.Key() || len(rep.Violations)+len(rep.Unstamped) > 0 {
					t.Fatalf("stack %s, violations %v, unstamped %v", rep.Stack, rep.Violations, rep.Unstamped)
				}
				types := map[string]int{}
				for _, r := range rep.Resources {
					types[r.Type]++
				}
				want := map[string]string{"create-service": "kubernetes:apps/v1:Deployment",
					"add-s3-bucket": "aws:s3/bucketV2:BucketV2", "add-sqs-queue": "aws:sqs/queue:Queue"}[a.Identifier]
				if types[want] == 0 || types["aws:iam/role:Role"] != 1 {
					t.Errorf("%s registered %v, want a %s", a.Identifier, types, want)
				}
				if err := os.WriteFile(model, rep.Model, 0o600); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
