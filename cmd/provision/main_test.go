package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
