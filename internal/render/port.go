// Package render turns paved's catalog (actions/*.yaml and blueprints/*.json)
// into what the portals read: Port's blueprint and action JSON, and one
// Backstage scaffolder Template per action. Renderers are pure functions and
// their output is deterministic (sorted keys, a stable order), so rendered
// files can be committed and diffed, and a sync that changes nothing says so.
package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/paved-idp/paved/internal/blueprint"
	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/expiry"
	"github.com/paved-idp/paved/internal/run"
)

// ApproveRunAction is the identifier of paved's built-in Port action that
// approves or denies a run waiting for approval (run.ApproveRunAction).
const ApproveRunAction = run.ApproveRunAction

// PortOptions are the choices the catalog does not make.
type PortOptions struct {
	// WebhookURL is where Port sends runs: paved's public URL followed by
	// /webhooks/port.
	WebhookURL string
}

// Port is the catalog as Port's API takes it.
type Port struct {
	// Blueprints come in the order Port must receive them: a relation's
	// target before the blueprint that relates to it.
	Blueprints []map[string]any
	// Actions are sorted by identifier; paved's built-in actions are among
	// them.
	Actions []map[string]any
}

// RenderPort renders the blueprints and the actions, paved's built-in ones
// added.
func RenderPort(actions []*catalog.Action, bps []*blueprint.Blueprint, opt PortOptions) (Port, error) {
	if err := checkWebhookURL(opt.WebhookURL); err != nil {
		return Port{}, err
	}
	entityBlueprints := map[string]bool{}
	for _, b := range bps {
		entityBlueprints[b.Identifier] = true
	}
	managed := map[string]bool{}
	for _, a := range actions {
		managed[a.Output.Blueprint] = true
	}
	var out Port
	for _, b := range blueprintOrder(bps) {
		doc := maps.Clone(b.Doc)
		if managed[b.Identifier] {
			doc = withLifecycle(doc)
		}
		out.Blueprints = append(out.Blueprints, doc)
	}
	for _, a := range actions {
		out.Actions = append(out.Actions, PortAction(a, entityBlueprints, opt))
	}
	out.Actions = append(out.Actions, approveRunAction(opt, approvalBlueprint(actions, entityBlueprints)))
	if bp := ephemeralBlueprint(actions, entityBlueprints); bp != "" {
		out.Actions = append(out.Actions, extendTTLAction(opt, bp, entityBlueprints))
	}
	slices.SortFunc(out.Actions, func(a, b map[string]any) int {
		return strings.Compare(a["identifier"].(string), b["identifier"].(string))
	})
	return out, nil
}

// withLifecycle adds the properties paved keeps current on the entities it
// manages (catalog.LifecycleProperties) to a blueprint's schema; one the
// blueprint declares itself is left as it is.
func withLifecycle(doc map[string]any) map[string]any {
	schema, _ := doc["schema"].(map[string]any)
	schema = maps.Clone(schema)
	if schema == nil {
		schema = map[string]any{}
	}
	props, _ := schema["properties"].(map[string]any)
	props = maps.Clone(props)
	if props == nil {
		props = map[string]any{}
	}
	for k, v := range catalog.LifecycleProperties() {
		if _, ok := props[k]; !ok {
			props[k] = v
		}
	}
	schema["properties"] = props
	doc["schema"] = schema
	return doc
}

func checkWebhookURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("render: the webhook URL must be an absolute http(s) URL (paved's public URL + /webhooks/port), got %q", s)
	}
	return nil
}

// PortAction renders one action. Inputs named like a blueprint in
// entityBlueprints become entity inputs of that blueprint, and the input
// "team" a team input: the developer picks from what exists in Port instead
// of typing a name.
func PortAction(a *catalog.Action, entityBlueprints map[string]bool, opt PortOptions) map[string]any {
	props := map[string]any{}
	var entityInputs []string
	for name, p := range a.InputProperties() {
		in := portInput(p)
		if in["type"] == "string" {
			switch {
			case name == "team":
				textOnly(in)
				in["format"] = "team"
			case entityBlueprints[name]:
				textOnly(in)
				in["format"], in["blueprint"] = "entity", name
				entityInputs = append(entityInputs, name)
			}
		}
		props[name] = in
	}
	trigger := map[string]any{
		"type":      "self-service",
		"operation": string(a.Operation),
		"userInputs": map[string]any{
			"properties": props,
			"required":   nonNil(a.RequiredInputs()),
			"order":      nonNil(slices.Clone(a.Order)),
		},
	}
	if a.Blueprint != "" {
		trigger["blueprintIdentifier"] = a.Blueprint
	}
	out := map[string]any{
		"identifier":       a.Identifier,
		"title":            a.Title,
		"description":      a.Description,
		"trigger":          trigger,
		"invocationMethod": invocation(opt.WebhookURL, entityInputs, false),
		"requiredApproval": a.RequiredApproval,
	}
	if a.Icon != "" {
		out["icon"] = a.Icon
	}
	return out
}

// approvalBlueprint is where the approve action goes: the blueprint the
// first DAY-2 or DELETE action (by identifier) runs on, so that an approver
// finds it on the page of the service whose run waits; "" when no such
// action's blueprint is rendered.
func approvalBlueprint(actions []*catalog.Action, rendered map[string]bool) string {
	for _, a := range slices.SortedFunc(slices.Values(actions), func(a, b *catalog.Action) int { return strings.Compare(a.Identifier, b.Identifier) }) {
		if a.Operation != run.Create && rendered[a.Blueprint] {
			return a.Blueprint
		}
	}
	return ""
}

// approveRunAction is paved's built-in "approve a run" action: DAY-2 on
// blueprint (the run is named by its id), or, with no blueprint, CREATE,
// which needs no entity. It is synchronous: paved decides at once, and Port
// marks the action's own run by the answer.
func approveRunAction(opt PortOptions, blueprint string) map[string]any {
	trigger := map[string]any{"type": "self-service", "operation": "CREATE",
		"userInputs": map[string]any{
			"properties": map[string]any{
				"runId":    map[string]any{"type": "string", "title": "Run id", "description": "The paved run id (r_…), as shown on the run and on paved's operator page.", "minLength": 1},
				"decision": map[string]any{"type": "string", "title": "Decision", "enum": []any{"approve", "deny"}},
				"reason":   map[string]any{"type": "string", "title": "Reason", "description": "Why; shown to the developer who asked."},
			},
			"required": []any{"runId", "decision"},
			"order":    []any{"runId", "decision", "reason"},
		},
	}
	if blueprint != "" {
		trigger["operation"], trigger["blueprintIdentifier"] = "DAY-2", blueprint
	}
	return map[string]any{
		"identifier":       ApproveRunAction,
		"title":            "Approve a paved run",
		"description":      "Approve or deny a paved run that waits for approval, such as a production delete. The decision and reason are recorded in the run's audit trail.",
		"trigger":          trigger,
		"invocationMethod": invocation(opt.WebhookURL, nil, true),
		"requiredApproval": false,
	}
}

// invocation is the WEBHOOK invocation method, with an explicit body: Port's
// docs do not promise what a WEBHOOK action sends without one. The body
// reproduces the run shape Port sent by default before its current actions
// format (and which webhook.Decode reads), written as Port's own migration
// does: trigger data (documented under "Trigger data": inputs, trigger,
// entity, action, run) through jq in {{ }}. A template that is a whole
// string yields the JSON value itself, not its text. synchronized: Port
// waits for paved's answer and marks the action's run by it.
func invocation(webhookURL string, entityInputs []string, synchronized bool) map[string]any {
	method := map[string]any{"type": "WEBHOOK", "url": webhookURL, "agent": false, "synchronized": synchronized, "method": "POST"}
	body := map[string]any{
		"action":       "{{ .action.identifier }}",
		"resourceType": "run",
		"status":       "TRIGGERED",
		"trigger":      "{{ .trigger | {by, origin, at} }}",
		"context": map[string]any{
			"entity":    "{{ .entity.identifier }}",
			"blueprint": "{{ .action.blueprint }}",
			"runId":     "{{ .run.id }}",
		},
		"payload": map[string]any{
			// A CREATE run has entity {}; the old body had null.
			"entity":             "{{ if .entity == {} then null else .entity end }}",
			"action":             map[string]any{"invocationMethod": maps.Clone(method), "trigger": "{{ .trigger.operation }}"},
			"properties":         inputsTemplate(entityInputs),
			"censoredProperties": "{{ .action.encryptedProperties }}",
		},
	}
	method["body"] = body
	return method
}

// inputsTemplate is the jq for payload.properties. An entity input's value
// is the whole entity in trigger data, but was its identifier in the old
// body (Port's migration maps it with .identifier too), and the identifier
// is what the action's schema checks.
func inputsTemplate(entityInputs []string) string {
	slices.Sort(entityInputs)
	var b strings.Builder
	b.WriteString("{{ .inputs")
	for _, in := range entityInputs {
		q, _ := json.Marshal(in) // a JSON string is a jq string
		fmt.Fprintf(&b, " | if has(%s) then .[%s] |= .identifier else . end", q, q)
	}
	b.WriteString(" }}")
	return b.String()
}

// portKeys are the JSON Schema keywords Port's user inputs understand; the
// rest (exclusive bounds, const, $comment, ...) stay with paved, which
// validates every request anyway.
var portKeys = []string{
	"type", "title", "description", "default", "enum", "pattern", "format",
	"minimum", "maximum", "minLength", "maxLength", "icon", "items", "minItems", "maxItems",
}

func portInput(p map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range portKeys {
		if v, ok := p[k]; ok {
			out[k] = v
		}
	}
	// Port has no integer type; paved's own validation keeps integers whole.
	if out["type"] == "integer" {
		out["type"] = "number"
	}
	return out
}

// textOnly drops the text constraints of an input that becomes a picker:
// Port offers what exists, and paved still checks the value it gets.
func textOnly(in map[string]any) {
	for _, k := range []string{"pattern", "minLength", "maxLength", "format", "enum"} {
		delete(in, k)
	}
}

// nonNil makes an empty list render as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// blueprintOrder sorts blueprints so that every relation's target comes
// before the blueprint relating to it, by identifier among equals. A cycle
// (Port accepts one only when built in steps) keeps identifier order.
func blueprintOrder(bps []*blueprint.Blueprint) []*blueprint.Blueprint {
	byID := map[string]*blueprint.Blueprint{}
	for _, b := range bps {
		byID[b.Identifier] = b
	}
	ids := slices.Sorted(maps.Keys(byID))
	done := map[string]bool{}
	var out []*blueprint.Blueprint
	for len(out) < len(ids) {
		progress := false
		for _, id := range ids {
			if done[id] || !targetsDone(byID[id], byID, done) {
				continue
			}
			done[id], progress = true, true
			out = append(out, byID[id])
		}
		if !progress {
			for _, id := range ids {
				if !done[id] {
					done[id] = true
					out = append(out, byID[id])
				}
			}
		}
	}
	return out
}

func targetsDone(b *blueprint.Blueprint, byID map[string]*blueprint.Blueprint, done map[string]bool) bool {
	for _, r := range b.Relations {
		if r.Target != b.Identifier && byID[r.Target] != nil && !done[r.Target] {
			return false
		}
	}
	return true
}

// JSON encodes v as rendered files are written: indented, keys sorted, no
// HTML escaping (a webhook URL's & stays &), a final newline.
func JSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("render: encode JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// ephemeralBlueprint is the blueprint of the first CREATE action (by
// identifier) with the input ttl whose blueprint is rendered: the one its
// stacks' services live on, where the extend action goes. "" when no
// action makes ephemeral stacks.
func ephemeralBlueprint(actions []*catalog.Action, rendered map[string]bool) string {
	for _, a := range slices.SortedFunc(slices.Values(actions), func(a, b *catalog.Action) int { return strings.Compare(a.Identifier, b.Identifier) }) {
		if _, ok := a.Inputs["properties"].(map[string]any)[run.TTLInput]; ok && rendered[a.Blueprint] {
			return a.Blueprint
		}
	}
	return ""
}

// extendTTLAction is paved's built-in "extend an ephemeral stack" action:
// DAY-2 on the service's blueprint, the stack named by tenant and
// environment (picked as entities where those blueprints are rendered, as
// in the actions' own forms), synchronous like approveRunAction.
func extendTTLAction(opt PortOptions, blueprint string, rendered map[string]bool) map[string]any {
	var picked []string
	text := func(name, title string) map[string]any {
		if rendered[name] {
			picked = append(picked, name)
			return map[string]any{"type": "string", "title": title, "format": "entity", "blueprint": name}
		}
		return map[string]any{"type": "string", "title": title, "pattern": "^[a-z0-9][a-z0-9-]{0,30}$"}
	}
	tenant, env := text("tenant", "Tenant"), text("environment", "Environment")
	return map[string]any{
		"identifier":  expiry.ExtendAction,
		"title":       "Extend an ephemeral stack",
		"description": "Give an ephemeral stack of this service a new time to live, counted from now. The policy bounds it per environment.",
		"trigger": map[string]any{"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": blueprint,
			"userInputs": map[string]any{
				"properties": map[string]any{
					"tenant":      tenant,
					"environment": env,
					run.TTLInput: map[string]any{"type": "string", "title": "Time to live", "pattern": "^[1-9][0-9]{0,3}[mhd]$",
						"description": "From now: whole minutes, hours or days (30m, 8h, 3d)."},
				},
				"required": []any{"tenant", "environment", run.TTLInput},
				"order":    []any{"tenant", "environment", run.TTLInput},
			},
		},
		"invocationMethod": invocation(opt.WebhookURL, picked, true),
		"requiredApproval": false,
	}
}
