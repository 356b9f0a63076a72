package webhook

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/run"
)

func TestDecodeSamples(t *testing.T) {
	tests := []struct {
		file string
		want Invocation
	}{
		{"day2_default.json", Invocation{
			Operation: run.Day2,
			Blueprint: "service",
			Request: run.Request{
				Portal:      "port",
				PortalRunID: "r_HardNzG6kzc9vWOQ",
				Action:      "add_queue",
				User:        run.User{Email: "dana.levi@example.com", Name: "Dana Levi"},
				Entity: run.Entity{
					Identifier: "payments-api",
					Blueprint:  "service",
					Title:      "Payments API",
					Team:       []string{"payments"},
					Properties: map[string]any{"tenant": "acme", "environment": "staging", "language": "go"},
				},
				Inputs: map[string]any{"queueName": "orders", "fifo": true, "retentionDays": float64(4)},
			},
		}},
		{"create_no_entity.json", Invocation{
			Operation: run.Create,
			Blueprint: "service",
			Request: run.Request{
				Portal:      "port",
				PortalRunID: "r_QOz6WoOB1Q2lmhZZ",
				Action:      "create_service",
				User:        run.User{Email: "dana.levi@example.com", Name: "Dana Levi"},
				Inputs:      map[string]any{"tenant": "acme", "environment": "dev", "service": "checkout", "team": "payments"},
			},
		}},
		{"v1_api_triggered.json", Invocation{
			Operation: run.Create,
			Blueprint: "vm",
			Request: run.Request{
				Portal:      "port",
				PortalRunID: "run_q2mGf9ZYkFRnZJjB",
				Action:      "create_vm",
				Inputs:      map[string]any{"cpu": float64(2), "region": "eu-west-1"},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Decode(readSample(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestDecodeVariants(t *testing.T) {
	base := func(action, ctx, payload string) string {
		return `{"action":` + action + `,"resourceType":"run","status":"TRIGGERED",` +
			`"trigger":{"by":{"orgId":"o","userId":"u"},"origin":"UI","at":"2026-11-03T09:00:00Z"},` +
			`"context":` + ctx + `,"payload":` + payload + `}`
	}
	tests := []struct {
		name   string
		body   string
		check  func(t *testing.T, inv Invocation)
		wantOK bool
	}{
		{"action identifier only in payload.action", base(`null`,
			`{"entity":null,"blueprint":"vm","runId":"r_1"}`,
			`{"entity":null,"action":{"identifier":"create_vm","trigger":"CREATE"},"properties":{}}`),
			func(t *testing.T, inv Invocation) {
				if inv.Request.Action != "create_vm" {
					t.Errorf("action %q", inv.Request.Action)
				}
			}, true},
		{"top-level action object", base(`{"identifier":"create_vm"}`,
			`{"blueprint":"vm","runId":"r_1"}`,
			`{"action":{"trigger":"CREATE"}}`),
			func(t *testing.T, inv Invocation) {
				if inv.Request.Action != "create_vm" || inv.Request.Inputs == nil {
					t.Errorf("got %+v", inv.Request)
				}
			}, true},
		{"trigger as action-definition object", base(`"scale"`,
			`{"entity":"svc","blueprint":"service","runId":"r_1"}`,
			`{"entity":{},"action":{"trigger":{"type":"self-service","operation":"DAY-2"}}}`),
			func(t *testing.T, inv Invocation) {
				if inv.Operation != run.Day2 || inv.Request.Entity.Identifier != "svc" || inv.Request.Entity.Blueprint != "service" {
					t.Errorf("got %+v", inv)
				}
			}, true},
		{"entity team as one string", base(`"scale"`,
			`{"entity":"svc","blueprint":"service","runId":"r_1"}`,
			`{"entity":{"identifier":"svc","blueprint":"service","team":"payments"},"action":{"trigger":"DELETE"}}`),
			func(t *testing.T, inv Invocation) {
				if inv.Operation != run.Delete || !reflect.DeepEqual(inv.Request.Entity.Team, []string{"payments"}) {
					t.Errorf("got %+v", inv)
				}
			}, true},
		{"blueprint from entity when context has none", base(`"scale"`,
			`{"runId":"r_1"}`,
			`{"entity":{"identifier":"svc","blueprint":"service"},"action":{"trigger":"DAY-2"}}`),
			func(t *testing.T, inv Invocation) {
				if inv.Blueprint != "service" {
					t.Errorf("blueprint %q", inv.Blueprint)
				}
			}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := Decode([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, inv)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good := string(readSample(t, "day2_default.json"))
	edit := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("sample lacks %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	tests := []struct {
		name    string
		body    string
		want    error
		mention string // the error must name the field
	}{
		{"empty", ``, ErrNotJSON, ""},
		{"not JSON", `resourceType=run`, ErrNotJSON, ""},
		{"truncated", good[:len(good)/2], ErrNotJSON, ""},
		{"JSON array", `[1,2]`, ErrNotARun, "not a JSON object"},
		{"JSON string", `"run"`, ErrNotARun, "not a JSON object"},
		{"empty object", `{}`, ErrNotARun, "resourceType"},
		{"entity webhook", edit(`"resourceType": "run"`, `"resourceType": "entity"`), ErrNotARun, "resourceType"},
		{"resourceType not a string", edit(`"resourceType": "run"`, `"resourceType": 7`), ErrNotARun, "resourceType"},
		{"no run id", edit(`"runId": "r_HardNzG6kzc9vWOQ"`, `"runId": ""`), ErrNotARun, "context.runId"},
		{"no action", edit(`"action": "add_queue",`, ``), ErrNotARun, "action identifier"},
		{"no trigger", edit(`"trigger": "DAY-2"`, `"x": 1`), ErrNotARun, "payload.action.trigger"},
		{"unknown trigger", edit(`"trigger": "DAY-2"`, `"trigger": "DEPLOY"`), ErrNotARun, "DEPLOY"},
		{"DAY-2 without entity", base2(`"DAY-2"`), ErrNotARun, "payload.entity"},
		{"properties not an object", edit(`"properties": {
      "queueName"`, `"properties": [], "x": {
      "queueName"`), ErrNotARun, "payload.properties"},
		{"team not strings", edit(`"team": ["payments"]`, `"team": [1]`), ErrNotARun, "team"},
		{"user email not a string", edit(`"email": "dana.levi@example.com"`, `"email": 1`), ErrNotARun, "trigger.by.user.email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func base2(trigger string) string {
	return `{"action":"scale","resourceType":"run","context":{"entity":null,"blueprint":"service","runId":"r_1"},` +
		`"payload":{"entity":null,"action":{"trigger":` + trigger + `}}}`
}
