package webhook

import (
	"encoding/json"
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

// TestDecodeExactKeys: encoding/json matches struct fields regardless of
// case, so before the fix a later "ACTION" overrode "action" and a body of
// wrongly cased keys decoded as a run.
func TestDecodeExactKeys(t *testing.T) {
	// Every key paved reads, each followed by a wrongly cased twin carrying
	// other values; the twin comes later so it would win a case-insensitive
	// match.
	shadowed := `{
		"action": "add_queue", "ACTION": "drop_database", "Action": {"identifier": "evil"},
		"resourceType": "run", "RESOURCETYPE": "entity",
		"trigger": {"by": {"user": {"email": "dana@example.com", "EMAIL": "mallory@example.com",
			"firstName": "Dana", "FirstName": "Mallory", "lastName": "Levi", "LASTNAME": "M"},
			"USER": {"email": "mallory@example.com"}}, "BY": {}},
		"context": {"entity": "payments-api", "ENTITY": "other", "blueprint": "service", "Blueprint": "secrets",
			"runId": "r_real", "RUNID": "r_evil", "RunId": "r_evil2"},
		"Context": {"runId": "r_evil3", "blueprint": "secrets"},
		"payload": {
			"entity": {"identifier": "payments-api", "IDENTIFIER": "other", "blueprint": "service", "BLUEPRINT": "x",
				"title": "Payments", "TITLE": "X", "team": ["payments"], "TEAM": ["admins"],
				"properties": {"tier": "gold"}, "PROPERTIES": {"tier": "evil"}},
			"ENTITY": null,
			"action": {"trigger": "DAY-2", "TRIGGER": "DELETE", "identifier": "ignored", "IDENTIFIER": "evil"},
			"ACTION": {"trigger": "DELETE"},
			"properties": {"queueName": "orders"}, "PROPERTIES": {"queueName": "evil"}
		},
		"PAYLOAD": {"properties": {"queueName": "evil"}}
	}`
	got, err := Decode([]byte(shadowed))
	if err != nil {
		t.Fatal(err)
	}
	want := Invocation{
		Operation: run.Day2,
		Blueprint: "service",
		Request: run.Request{
			Portal: "port", PortalRunID: "r_real", Action: "add_queue",
			User: run.User{Email: "dana@example.com", Name: "Dana Levi"},
			Entity: run.Entity{Identifier: "payments-api", Blueprint: "service", Title: "Payments",
				Team: []string{"payments"}, Properties: map[string]any{"tier": "gold"}},
			Inputs: map[string]any{"queueName": "orders"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode =\n%+v\nwant\n%+v", got, want)
	}

	// Wrongly cased keys alone are not Port's fields: the body is refused.
	only := []struct{ name, body, mention string }{
		{"every key", `{"ACTION":"add_queue","RESOURCETYPE":"run","CONTEXT":{"RUNID":"r_1","BLUEPRINT":"service"},` +
			`"PAYLOAD":{"ACTION":{"TRIGGER":"CREATE"}}}`, "resourceType"},
		{"resourceType", `{"action":"a","ResourceType":"run","context":{"runId":"r_1"},"payload":{"action":{"trigger":"CREATE"}}}`, "resourceType"},
		{"context", `{"action":"a","resourceType":"run","Context":{"runId":"r_1"},"payload":{"action":{"trigger":"CREATE"}}}`, "context.runId"},
		{"context.runId", `{"action":"a","resourceType":"run","context":{"RUNID":"r_1"},"payload":{"action":{"trigger":"CREATE"}}}`, "context.runId"},
		{"action", `{"ACTION":"a","resourceType":"run","context":{"runId":"r_1"},"payload":{"action":{"trigger":"CREATE"}}}`, "action identifier"},
		{"payload.action.trigger", `{"action":"a","resourceType":"run","context":{"runId":"r_1"},"payload":{"action":{"Trigger":"CREATE"}}}`, "payload.action.trigger"},
		{"payload", `{"action":"a","resourceType":"run","context":{"runId":"r_1"},"Payload":{"action":{"trigger":"CREATE"}}}`, "payload.action.trigger"},
		{"payload.entity", `{"action":"a","resourceType":"run","context":{"runId":"r_1"},"payload":{"Entity":{"identifier":"e"},"action":{"trigger":"DAY-2"}}}`, "payload.entity"},
	}
	for _, tt := range only {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.body))
			if !errors.Is(err, ErrNotARun) || !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("Decode error = %v, want ErrNotARun naming %s", err, tt.mention)
			}
		})
	}
}

func TestDecodeRunIDShape(t *testing.T) {
	body := func(runID string) []byte {
		b, err := json.Marshal(map[string]any{
			"action": "create_vm", "resourceType": "run",
			"context": map[string]any{"blueprint": "vm", "runId": runID},
			"payload": map[string]any{"action": map[string]any{"trigger": "CREATE"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, ok := range []string{"r_VX7oDn4OUQ2K6VKH", "run_q2mGf9ZYkFRnZJjB", "a", "A-b_9", strings.Repeat("x", 128)} {
		if inv, err := Decode(body(ok)); err != nil || inv.Request.PortalRunID != ok {
			t.Errorf("run id %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"..", "r/1", "../../v1/users", "r 1", "r\t1", "r\n1", "r\x001", "r\x7f1", "r.1", "r%2F1", "r?x", "rün", strings.Repeat("x", 129)} {
		_, err := Decode(body(bad))
		if !errors.Is(err, ErrNotARun) || !strings.Contains(err.Error(), "context.runId") {
			t.Errorf("run id %q: err = %v, want ErrNotARun naming context.runId", bad, err)
		}
	}
}

// TestDecodeErrorsAreShort: an error quotes at most a clipped piece of the
// body, however large the field it is about.
func TestDecodeErrorsAreShort(t *testing.T) {
	huge := strings.Repeat("A", 500<<10)
	hugeNumber := strings.Repeat("9", 500<<10)
	good := string(readSample(t, "day2_default.json"))
	edit := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("sample lacks %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	tests := map[string]string{
		"huge run id":                 edit(`"runId": "r_HardNzG6kzc9vWOQ"`, `"runId": "`+huge+`"`),
		"huge run id with a slash":    edit(`"runId": "r_HardNzG6kzc9vWOQ"`, `"runId": "/`+huge+`"`),
		"huge action, bad trigger":    edit(`"action": "add_queue"`, `"action": "`+huge+`"`),
		"huge trigger":                edit(`"trigger": "DAY-2"`, `"trigger": "`+huge+`"`),
		"huge resourceType":           edit(`"resourceType": "run"`, `"resourceType": "`+huge+`"`),
		"huge number as resourceType": edit(`"resourceType": "run"`, `"resourceType": `+hugeNumber),
		"huge number as action":       edit(`"action": "add_queue"`, `"action": `+hugeNumber),
		"huge number as email":        edit(`"email": "dana.levi@example.com"`, `"email": `+hugeNumber),
		"huge number as blueprint":    edit(`"blueprint": "service",`, `"blueprint": `+hugeNumber+`,`),
		"huge number as identifier":   edit(`"identifier": "payments-api"`, `"identifier": `+hugeNumber),
		"huge array as properties": edit(`"properties": {
      "queueName"`, `"properties": [`+hugeNumber+`], "x": {
      "queueName"`),
	}
	// The action case must fail for another reason than the action itself.
	tests["huge action, bad trigger"] = strings.Replace(tests["huge action, bad trigger"], `"trigger": "DAY-2"`, `"trigger": "DEPLOY"`, 1)
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(body))
			if !errors.Is(err, ErrNotARun) {
				t.Fatalf("Decode error = %v, want ErrNotARun", err)
			}
			if n := len(err.Error()); n > 300 {
				t.Fatalf("error is %d bytes long: %.400s", n, err)
			}
		})
	}
}
