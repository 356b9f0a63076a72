package portsim

import (
	"strings"
	"testing"
)

// TestBlueprintRoutes follows Port's API reference for blueprints: create,
// read, list, replace (PUT) and merge (PATCH), with Port's fields added and
// kept, and Port's errors.
func TestBlueprintRoutes(t *testing.T) {
	e := newEnv(t, nil) // "service" is a configured blueprint
	tok := e.login()
	bucket := map[string]any{
		"identifier": "s3_bucket", "title": "S3 bucket", "icon": "S3",
		"schema":    map[string]any{"properties": map[string]any{"arn": map[string]any{"type": "string", "title": "ARN"}}, "required": []string{}},
		"relations": map[string]any{"service": map[string]any{"title": "Service", "target": "service", "required": true, "many": false}},
	}
	if resp, _ := e.do("POST", "/v1/blueprints", "", bucket); resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	resp, out := e.do("GET", "/v1/blueprints/s3_bucket", tok, nil)
	wantErr(t, resp, out, 404, "not_found")

	resp, out = e.do("POST", "/v1/blueprints", tok, bucket)
	bp, _ := out["blueprint"].(map[string]any)
	if resp.StatusCode != 201 || out["ok"] != true || bp["identifier"] != "s3_bucket" || bp["createdAt"] != "2026-11-03T10:00:00.000Z" || bp["createdBy"] == nil {
		t.Fatalf("create: %d %v", resp.StatusCode, out)
	}
	resp, out = e.do("POST", "/v1/blueprints", tok, bucket)
	wantErr(t, resp, out, 409, "identifier_taken")

	resp, out = e.do("GET", "/v1/blueprints/s3_bucket", tok, nil)
	if got, _ := out["blueprint"].(map[string]any); resp.StatusCode != 200 || got["title"] != "S3 bucket" || got["icon"] != "S3" {
		t.Fatalf("get: %d %v", resp.StatusCode, out)
	}
	// A blueprint created through the API takes entities.
	if resp, _ := e.do("POST", "/v1/blueprints/s3_bucket/entities?upsert=true", tok, map[string]any{"identifier": "b1"}); resp.StatusCode != 201 {
		t.Fatalf("entity into a created blueprint: %d", resp.StatusCode)
	}

	// PUT replaces: a field left out is gone, Port's own are kept.
	e.clock.Add(60e9)
	replaced := map[string]any{"identifier": "s3_bucket", "title": "Bucket", "schema": map[string]any{"properties": map[string]any{}}}
	resp, out = e.do("PUT", "/v1/blueprints/s3_bucket", tok, replaced)
	got, _ := out["blueprint"].(map[string]any)
	if resp.StatusCode != 200 || got["title"] != "Bucket" || got["icon"] != nil || got["relations"] != nil ||
		got["createdAt"] != "2026-11-03T10:00:00.000Z" || got["updatedAt"] != "2026-11-03T10:01:00.000Z" {
		t.Fatalf("put: %d %v", resp.StatusCode, out)
	}
	resp, out = e.do("PUT", "/v1/blueprints/nope", tok, replaced)
	wantErr(t, resp, out, 404, "not_found")
	resp, out = e.do("PUT", "/v1/blueprints/s3_bucket", tok, map[string]any{"identifier": "other", "title": "x", "schema": map[string]any{}})
	wantErr(t, resp, out, 422, "invalid_request")

	// PATCH merges objects key by key.
	resp, out = e.do("PATCH", "/v1/blueprints/s3_bucket", tok, map[string]any{"schema": map[string]any{"properties": map[string]any{"region": map[string]any{"type": "string"}}}, "icon": "S3"})
	got, _ = out["blueprint"].(map[string]any)
	props, _ := got["schema"].(map[string]any)["properties"].(map[string]any)
	if resp.StatusCode != 200 || got["title"] != "Bucket" || got["icon"] != "S3" || props["region"] == nil {
		t.Fatalf("patch: %d %v", resp.StatusCode, out)
	}

	resp, out = e.do("GET", "/v1/blueprints", tok, nil)
	if list, _ := out["blueprints"].([]any); resp.StatusCode != 200 || len(list) != 1 {
		t.Fatalf("list: %d %v", resp.StatusCode, out)
	}
	if bp, ok := e.sim.Blueprint("s3_bucket"); !ok || bp["title"] != "Bucket" {
		t.Fatalf("Sim.Blueprint = %v, %v", bp, ok)
	}

	for name, body := range map[string]any{
		"not an object":     `[1]`,
		"unknown field":     map[string]any{"identifier": "x", "title": "X", "schema": map[string]any{}, "colour": "red"},
		"no schema":         map[string]any{"identifier": "x", "title": "X"},
		"bad identifier":    map[string]any{"identifier": "a b", "title": "X", "schema": map[string]any{}},
		"schema not object": map[string]any{"identifier": "x", "title": "X", "schema": []any{}},
	} {
		resp, out := e.do("POST", "/v1/blueprints", tok, body)
		if resp.StatusCode != 422 || out["error"] != "invalid_request" {
			t.Errorf("%s: %d %v", name, resp.StatusCode, out)
		}
	}
	resp, out = e.do("POST", "/v1/blueprints", tok, map[string]any{"identifier": "x", "title": "X", "schema": map[string]any{},
		"relations": map[string]any{"r": map[string]any{"target": "ghost"}}})
	wantErr(t, resp, out, 404, "not_found")
}

// TestActionRoutes follows Port's API reference for actions.
func TestActionRoutes(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login()
	action := map[string]any{
		"identifier": "scale", "title": "Scale",
		"trigger":          map[string]any{"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": "service", "userInputs": map[string]any{"properties": map[string]any{}, "required": []string{}}},
		"invocationMethod": map[string]any{"type": "WEBHOOK", "url": "https://paved.example.com/webhooks/port", "body": map[string]any{"runId": "{{ .run.id }}"}},
		"requiredApproval": false,
	}
	resp, out := e.do("GET", "/v1/actions/scale", tok, nil)
	wantErr(t, resp, out, 404, "not_found")
	resp, out = e.do("POST", "/v1/actions", tok, action)
	a, _ := out["action"].(map[string]any)
	if resp.StatusCode != 201 || a["identifier"] != "scale" || !strings.HasPrefix(a["id"].(string), "action_") {
		t.Fatalf("create: %d %v", resp.StatusCode, out)
	}
	resp, out = e.do("POST", "/v1/actions", tok, action)
	wantErr(t, resp, out, 409, "identifier_taken")

	action["title"] = "Scale it"
	resp, out = e.do("PUT", "/v1/actions/scale", tok, action)
	if got, _ := out["action"].(map[string]any); resp.StatusCode != 200 || got["title"] != "Scale it" || got["id"] != a["id"] {
		t.Fatalf("put: %d %v", resp.StatusCode, out)
	}
	resp, out = e.do("PUT", "/v1/actions/other", tok, action)
	wantErr(t, resp, out, 404, "not_found")

	free := map[string]any{"identifier": "free", "trigger": map[string]any{"type": "self-service", "operation": "CREATE"}, "invocationMethod": map[string]any{"type": "WEBHOOK"}}
	if resp, out := e.do("POST", "/v1/actions", tok, free); resp.StatusCode != 201 {
		t.Fatalf("an action without a blueprint: %d %v", resp.StatusCode, out)
	}
	resp, out = e.do("GET", "/v1/actions?blueprint_identifier=service", tok, nil)
	if list, _ := out["actions"].([]any); resp.StatusCode != 200 || len(list) != 1 {
		t.Fatalf("list by blueprint: %v", out)
	}
	resp, out = e.do("GET", "/v1/actions?action_identifier=free&action_identifier=scale", tok, nil)
	if list, _ := out["actions"].([]any); resp.StatusCode != 200 || len(list) != 2 {
		t.Fatalf("list by identifier: %v", out)
	}

	ghost := map[string]any{"identifier": "g", "trigger": map[string]any{"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": "ghost"}, "invocationMethod": map[string]any{"type": "WEBHOOK"}}
	resp, out = e.do("POST", "/v1/actions", tok, ghost)
	wantErr(t, resp, out, 404, "not_found")
	for name, body := range map[string]any{
		"no trigger":    map[string]any{"identifier": "x", "invocationMethod": map[string]any{}},
		"bad operation": map[string]any{"identifier": "x", "trigger": map[string]any{"type": "self-service", "operation": "UPDATE"}, "invocationMethod": map[string]any{}},
		"unknown field": map[string]any{"identifier": "x", "trigger": map[string]any{}, "invocationMethod": map[string]any{}, "webhook": 1},
	} {
		resp, out := e.do("POST", "/v1/actions", tok, body)
		if resp.StatusCode != 422 || out["error"] != "invalid_request" {
			t.Errorf("%s: %d %v", name, resp.StatusCode, out)
		}
	}
	if got, ok := e.sim.Action("scale"); !ok || got["title"] != "Scale it" {
		t.Fatalf("Sim.Action = %v, %v", got, ok)
	}
}
