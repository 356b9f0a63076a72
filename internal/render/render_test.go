package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/paved-idp/paved/internal/blueprint"
	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/expiry"
	"github.com/paved-idp/paved/internal/portal/port/webhook"
	"github.com/paved-idp/paved/internal/run"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the shipped catalog")

const webhookURL = "https://paved.example.com/webhooks/port"

func shipped(t *testing.T) ([]*catalog.Action, []*blueprint.Blueprint) {
	t.Helper()
	cat, err := catalog.Load("../../actions")
	if err != nil {
		t.Fatal(err)
	}
	bps, ps := blueprint.Load("../../blueprints")
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	return cat.List(), bps
}

func renderShipped(t *testing.T) Port {
	t.Helper()
	actions, bps := shipped(t)
	p, err := RenderPort(actions, bps, PortOptions{WebhookURL: webhookURL})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/render -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what renders now; if the change is meant, run go test ./internal/render -update and review the diff.\ngot:\n%s", path, got)
	}
}

func TestGoldenPort(t *testing.T) {
	p := renderShipped(t)
	b, err := JSON(map[string]any{"blueprints": p.Blueprints, "actions": p.Actions})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "port.golden.json", b)
	// Rendering is deterministic.
	again, _ := JSON(map[string]any{"blueprints": renderShipped(t).Blueprints, "actions": renderShipped(t).Actions})
	if !bytes.Equal(b, again) {
		t.Fatal("two renders differ")
	}
}

func TestGoldenBackstage(t *testing.T) {
	actions, _ := shipped(t)
	b := backstageYAML(t, actions)
	golden(t, "backstage.golden.yaml", b)
}

// portAction is the shape of Port's action JSON (POST /v1/actions) that
// paved relies on.
type portAction struct {
	Identifier  string `json:"identifier"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Icon        string `json:"icon"`
	Trigger     struct {
		Type                string `json:"type"`
		Operation           string `json:"operation"`
		BlueprintIdentifier string `json:"blueprintIdentifier"`
		UserInputs          struct {
			Properties map[string]map[string]any `json:"properties"`
			Required   []string                  `json:"required"`
			Order      []string                  `json:"order"`
		} `json:"userInputs"`
	} `json:"trigger"`
	InvocationMethod struct {
		Type         string         `json:"type"`
		URL          string         `json:"url"`
		Agent        *bool          `json:"agent"`
		Synchronized *bool          `json:"synchronized"`
		Method       string         `json:"method"`
		Body         map[string]any `json:"body"`
	} `json:"invocationMethod"`
	RequiredApproval *bool `json:"requiredApproval"`
}

// TestPortActionsStructure checks every rendered action against what Port's
// action JSON needs and what paved's webhook decodes.
func TestPortActionsStructure(t *testing.T) {
	p := renderShipped(t)
	bps := map[string]bool{}
	for _, b := range p.Blueprints {
		bps[b["identifier"].(string)] = true
	}
	var ids []string
	for _, doc := range p.Actions {
		raw, _ := json.Marshal(doc)
		var a portAction
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		ids = append(ids, a.Identifier)
		tr, im := a.Trigger, a.InvocationMethod
		switch {
		case a.Identifier == "" || a.Title == "":
			t.Errorf("%s: identifier and title are required", raw)
		case tr.Type != "self-service" || !slices.Contains([]string{"CREATE", "DAY-2", "DELETE"}, tr.Operation):
			t.Errorf("%s: trigger %+v", a.Identifier, tr)
		case tr.BlueprintIdentifier != "" && !bps[tr.BlueprintIdentifier]:
			t.Errorf("%s: blueprint %q is not rendered", a.Identifier, tr.BlueprintIdentifier)
		// Runs are asynchronous (paved reports through Port's API); only the
		// approve action is answered at once.
		case im.Type != "WEBHOOK" || im.URL != webhookURL || im.Method != "POST" || im.Agent == nil || *im.Agent || im.Synchronized == nil || *im.Synchronized != (a.Identifier == ApproveRunAction || a.Identifier == expiry.ExtendAction):
			t.Errorf("%s: invocationMethod %+v", a.Identifier, im)
		case a.RequiredApproval == nil:
			t.Errorf("%s: requiredApproval missing", a.Identifier)
		}
		props := slices.Sorted(func(yield func(string) bool) {
			for k := range tr.UserInputs.Properties {
				if !yield(k) {
					return
				}
			}
		})
		if order := slices.Sorted(slices.Values(tr.UserInputs.Order)); !slices.Equal(order, props) {
			t.Errorf("%s: order %v does not list the inputs %v", a.Identifier, tr.UserInputs.Order, props)
		}
		for _, r := range tr.UserInputs.Required {
			if !slices.Contains(props, r) {
				t.Errorf("%s: required %q is not an input", a.Identifier, r)
			}
		}
		for name, in := range tr.UserInputs.Properties {
			if !slices.Contains([]any{"string", "number", "boolean", "array", "object"}, in["type"]) {
				t.Errorf("%s: input %s has type %v, which Port has not", a.Identifier, name, in["type"])
			}
		}
		// The body template: the fields Decode reads, from trigger data.
		b := im.Body
		for path, want := range map[string]string{
			"action":                     "{{ .action.identifier }}",
			"resourceType":               "run",
			"status":                     "TRIGGERED",
			"trigger":                    "{{ .trigger | {by, origin, at} }}",
			"context.runId":              "{{ .run.id }}",
			"context.blueprint":          "{{ .action.blueprint }}",
			"context.entity":             "{{ .entity.identifier }}",
			"payload.entity":             "{{ if .entity == {} then null else .entity end }}",
			"payload.action.trigger":     "{{ .trigger.operation }}",
			"payload.censoredProperties": "{{ .action.encryptedProperties }}",
		} {
			if got := at(b, path); got != want {
				t.Errorf("%s: body.%s = %v, want %q", a.Identifier, path, got, want)
			}
		}
		if props, _ := at(b, "payload.properties").(string); !strings.HasPrefix(props, "{{ .inputs") {
			t.Errorf("%s: body.payload.properties = %q", a.Identifier, props)
		}
	}
	if want := []string{"add-s3-bucket", "add-sqs-queue", "create-service", "delete-service", ApproveRunAction, expiry.ExtendAction}; !slices.Equal(ids, want) {
		t.Fatalf("actions %v, want %v", ids, want)
	}
}

// TestPickerInputs: inputs named like a blueprint become entity inputs, the
// input "team" a team input, without the text checks Port would apply to a
// picked value.
func TestPickerInputs(t *testing.T) {
	p := renderShipped(t)
	props := func(id string) map[string]any {
		for _, a := range p.Actions {
			if a["identifier"] == id {
				return at(a, "trigger.userInputs.properties").(map[string]any)
			}
		}
		t.Fatalf("no action %s", id)
		return nil
	}
	cs := props("create-service")
	for name, want := range map[string]map[string]any{
		"tenant":      {"type": "string", "title": "Tenant", "format": "entity", "blueprint": "tenant"},
		"environment": {"type": "string", "title": "Environment", "format": "entity", "blueprint": "environment"},
		"team":        {"type": "string", "title": "Owning team", "description": "The Port team that owns the service and approves its production changes.", "format": "team"},
		"replicas":    {"type": "number", "title": "Replicas", "minimum": float64(1), "maximum": float64(20), "default": float64(2)},
	} {
		if got := cs[name]; !reflect.DeepEqual(got, want) {
			t.Errorf("create-service input %s = %v, want %v", name, got, want)
		}
	}
	if got := at(p.Actions[2], "invocationMethod.body.payload.properties"); got != `{{ .inputs | if has("environment") then .["environment"] |= .identifier else . end | if has("tenant") then .["tenant"] |= .identifier else . end }}` {
		t.Errorf("create-service properties template = %v", got)
	}
	if got := props("add-s3-bucket")["bucketName"].(map[string]any)["pattern"]; got == nil {
		t.Error("a text input lost its pattern")
	}
}

// TestExtendTTLAction: the extend action is rendered because create-service
// has the input ttl, on the service blueprint, synchronous, the tenant and
// environment picked like create-service's and sent as identifiers.
func TestExtendTTLAction(t *testing.T) {
	p := renderShipped(t)
	a := p.Actions[len(p.Actions)-1]
	if a["identifier"] != expiry.ExtendAction || at(a, "trigger.operation") != "DAY-2" || at(a, "trigger.blueprintIdentifier") != "service" ||
		at(a, "invocationMethod.synchronized") != true {
		t.Fatalf("extend action = %v", a)
	}
	if got := at(a, "trigger.userInputs.required"); !reflect.DeepEqual(got, []any{"tenant", "environment", "ttl"}) {
		t.Fatalf("required = %v", got)
	}
	if got := at(a, "trigger.userInputs.properties.tenant.blueprint"); got != "tenant" {
		t.Fatalf("tenant input = %v", at(a, "trigger.userInputs.properties.tenant"))
	}
	if got := at(a, "invocationMethod.body.payload.properties"); got != `{{ .inputs | if has("environment") then .["environment"] |= .identifier else . end | if has("tenant") then .["tenant"] |= .identifier else . end }}` {
		t.Errorf("properties template = %v", got)
	}
	if got := at(a, "trigger.userInputs.properties.ttl.pattern"); got != "^[1-9][0-9]{0,3}[mhd]$" {
		t.Errorf("ttl pattern = %v", got)
	}
}

func TestApproveRunAction(t *testing.T) {
	p := renderShipped(t)
	a := p.Actions[len(p.Actions)-2]
	if a["identifier"] != ApproveRunAction || at(a, "trigger.operation") != "DAY-2" || at(a, "trigger.blueprintIdentifier") != "service" ||
		at(a, "invocationMethod.synchronized") != true {
		t.Fatalf("approve action = %v", a)
	}
	if got := at(a, "trigger.userInputs.order"); !reflect.DeepEqual(got, []any{"runId", "decision", "reason"}) {
		t.Fatalf("order = %v", got)
	}
	if got := at(a, "trigger.userInputs.properties.decision.enum"); !reflect.DeepEqual(got, []any{"approve", "deny"}) {
		t.Fatalf("decision = %v", got)
	}
	if got := at(a, "trigger.userInputs.required"); !reflect.DeepEqual(got, []any{"runId", "decision"}) {
		t.Fatalf("required = %v", got)
	}
}

// TestRenderedBodyIsTheRunShape fills the rendered body template with trigger
// data (in the shape Port documents under "Trigger data") as Port would, and
// checks that the result is exactly the body paved's webhook fixtures hold,
// which decode into the same request as Port's legacy default body.
func TestRenderedBodyIsTheRunShape(t *testing.T) {
	for _, tt := range []struct{ trigger, body, legacy string }{
		{"trigger_day2.json", "day2_rendered.json", "day2_default.json"},
		{"trigger_create.json", "create_rendered.json", "create_no_entity.json"},
	} {
		t.Run(tt.body, func(t *testing.T) {
			got := evalBody(t, invocation(webhookURL, nil, false)["body"], readJSON(t, filepath.Join("testdata", tt.trigger)))
			fixture := filepath.Join("..", "portal", "port", "webhook", "testdata", tt.body)
			if want := readJSON(t, fixture); !reflect.DeepEqual(got, want) {
				g, _ := JSON(got)
				t.Fatalf("the template yields\n%s\nwhich is not %s", g, fixture)
			}
			raw, _ := json.Marshal(got)
			inv, err := webhook.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			legacy, err := os.ReadFile(filepath.Join("..", "portal", "port", "webhook", "testdata", tt.legacy))
			if err != nil {
				t.Fatal(err)
			}
			want, err := webhook.Decode(legacy)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(inv, want) {
				t.Fatalf("decoded\n%+v\nlegacy\n%+v", inv, want)
			}
		})
	}
}

// TestRenderedBodyOfEntityInputs: a shipped action whose tenant and
// environment are entity inputs sends their identifiers, which its own
// schema then accepts.
func TestRenderedBodyOfEntityInputs(t *testing.T) {
	actions, bps := shipped(t)
	entityBPs := map[string]bool{}
	for _, b := range bps {
		entityBPs[b.Identifier] = true
	}
	var bucket *catalog.Action
	for _, a := range actions {
		if a.Identifier == "add-s3-bucket" {
			bucket = a
		}
	}
	doc := PortAction(bucket, entityBPs, PortOptions{WebhookURL: webhookURL})
	body := evalBody(t, at(doc, "invocationMethod.body"), readJSON(t, "testdata/trigger_bucket.json"))
	raw, _ := json.Marshal(body)
	inv, err := webhook.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"tenant": "acme", "environment": "dev", "bucketName": "invoices", "retentionDays": float64(30)}
	r := inv.Request
	if !reflect.DeepEqual(r.Inputs, want) || r.Action != "add-s3-bucket" || inv.Operation != run.Day2 ||
		r.Entity.Identifier != "checkout" || r.User.Email != "dana@acme.example" || r.PortalRunID != "r_s3Bucket0000001" {
		t.Fatalf("decoded %+v", inv)
	}
	if errs := bucket.Validate(r.Inputs); errs != nil {
		t.Fatalf("the action's schema refuses what its body sends: %v", errs)
	}
}

// v1beta3 is the part of Backstage's Template (scaffolder.backstage.io/v1beta3)
// that paved renders; decoding is strict, so a stray field fails.
type v1beta3 struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string   `yaml:"name"`
		Title       string   `yaml:"title"`
		Description string   `yaml:"description"`
		Tags        []string `yaml:"tags"`
	} `yaml:"metadata"`
	Spec struct {
		Type       string `yaml:"type"`
		Parameters []struct {
			Title      string                    `yaml:"title"`
			Required   []string                  `yaml:"required"`
			Properties map[string]map[string]any `yaml:"properties"`
		} `yaml:"parameters"`
		Steps []struct {
			ID     string         `yaml:"id"`
			Name   string         `yaml:"name"`
			Action string         `yaml:"action"`
			Input  map[string]any `yaml:"input"`
		} `yaml:"steps"`
		Output struct {
			Links []struct {
				Title string `yaml:"title"`
				URL   string `yaml:"url"`
			} `yaml:"links"`
		} `yaml:"output"`
	} `yaml:"spec"`
}

func TestBackstageTemplates(t *testing.T) {
	actions, _ := shipped(t)
	byID := map[string]*catalog.Action{}
	for _, a := range actions {
		byID[a.Identifier] = a
	}
	raw := backstageYAML(t, actions)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	n := 0
	for ; ; n++ {
		var tpl v1beta3
		if err := dec.Decode(&tpl); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		a := byID[tpl.Metadata.Name]
		if a == nil || tpl.APIVersion != "scaffolder.backstage.io/v1beta3" || tpl.Kind != "Template" || tpl.Spec.Type == "" {
			t.Fatalf("template %+v", tpl)
		}
		if len(tpl.Spec.Steps) != 1 || tpl.Spec.Steps[0].Action != RunAction || tpl.Spec.Steps[0].Input["action"] != a.Identifier {
			t.Fatalf("%s: steps %+v", a.Identifier, tpl.Spec.Steps)
		}
		links := tpl.Spec.Output.Links
		if len(links) != 2 || links[0].URL != "${{ steps.run.output.runUrl }}" || links[1].URL != "${{ steps.run.output.pipelineUrl }}" {
			t.Fatalf("%s: links %+v", a.Identifier, links)
		}
		pages := tpl.Spec.Parameters
		form := pages[len(pages)-1]
		if !slices.Equal(form.Required, a.RequiredInputs()) || len(form.Properties) != len(a.Order) {
			t.Fatalf("%s: form %+v", a.Identifier, form)
		}
		inputs := tpl.Spec.Steps[0].Input["inputs"].(map[string]any)
		for _, name := range a.Order {
			if form.Properties[name]["title"] != a.InputProperties()[name]["title"] || inputs[name] == nil {
				t.Errorf("%s: input %s: %v / %v", a.Identifier, name, form.Properties[name], inputs[name])
			}
		}
		switch a.Operation {
		case run.Create:
			if len(pages) != 1 || tpl.Spec.Steps[0].Input["entity"] != nil {
				t.Errorf("%s: a CREATE template asks for an entity", a.Identifier)
			}
		default:
			e, _ := tpl.Spec.Steps[0].Input["entity"].(map[string]any)
			if len(pages) != 2 || pages[0].Properties["entity"]["ui:field"] != "EntityPicker" || e["blueprint"] != a.Blueprint {
				t.Errorf("%s: entity page %+v, input %v", a.Identifier, pages[0], e)
			}
		}
	}
	if n != len(actions) {
		t.Fatalf("%d templates for %d actions", n, len(actions))
	}
	// The form keeps the action's order (a map would sort it).
	if i, j := bytes.Index(raw, []byte("        tenant:\n")), bytes.Index(raw, []byte("        bucketName:\n")); i < 0 || j < i {
		t.Fatal("form inputs are not in the action's order")
	}
}

func TestBlueprintOrder(t *testing.T) {
	bp := func(id string, targets ...string) *blueprint.Blueprint {
		b := &blueprint.Blueprint{Identifier: id, Doc: map[string]any{"identifier": id}, Relations: map[string]blueprint.Relation{}}
		for _, tg := range targets {
			b.Relations[tg] = blueprint.Relation{Target: tg}
		}
		return b
	}
	ids := func(bps []*blueprint.Blueprint) string {
		var s []string
		for _, b := range blueprintOrder(bps) {
			s = append(s, b.Identifier)
		}
		return strings.Join(s, " ")
	}
	for want, in := range map[string][]*blueprint.Blueprint{
		"a b c":       {bp("c", "b"), bp("b", "a"), bp("a")},
		"a b z":       {bp("z"), bp("b", "a", "b"), bp("a")}, // a relation to itself waits for nothing
		"d x y":       {bp("y", "x"), bp("x", "y"), bp("d")}, // a cycle keeps identifier order
		"b a":         {bp("a", "b"), bp("b", "gone")},       // a target outside the set is Port's
		"environment": {bp("environment")},
	} {
		if got := ids(in); got != want {
			t.Errorf("order = %q, want %q", got, want)
		}
	}
	p := renderShipped(t)
	var got []string
	for _, b := range p.Blueprints {
		got = append(got, b["identifier"].(string))
	}
	if strings.Join(got, " ") != "environment service tenant s3_bucket sqs_queue" {
		t.Fatalf("shipped order %v", got)
	}
}

func TestRenderPortWebhookURL(t *testing.T) {
	for _, u := range []string{"", "paved.example.com/webhooks/port", "ftp://paved/x", "https://"} {
		if _, err := RenderPort(nil, nil, PortOptions{WebhookURL: u}); err == nil {
			t.Errorf("webhook URL %q accepted", u)
		}
	}
}

// at reads a dotted path from a JSON document; nil where it is absent.
func at(doc any, path string) any {
	cur := doc
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	if s, ok := cur.([]string); ok { // rendered lists are []string before a JSON round trip
		out := make([]any, len(s))
		for i, v := range s {
			out[i] = v
		}
		return out
	}
	return cur
}

func readJSON(t *testing.T, path string) any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// evalBody fills a body template with trigger data as Port does: a string
// that is one {{ jq }} becomes the expression's JSON value. It knows exactly
// the jq paved's templates use, read as jq's manual defines it; any other
// expression fails the test, so that a new one is taught here first.
func evalBody(t *testing.T, tmpl, data any) any {
	t.Helper()
	switch v := tmpl.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = evalBody(t, x, data)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = evalBody(t, x, data)
		}
		return out
	case string:
		if m := wholeRE.FindStringSubmatch(v); m != nil {
			cur := data
			for _, stage := range strings.Split(m[1], " | ") {
				cur = jqStage(t, stage, cur)
			}
			return cur
		}
		if strings.Contains(v, "{{") {
			t.Fatalf("template %q is not one whole expression", v)
		}
	}
	// JSON round trip: numbers float64, as in the fixtures.
	raw, _ := json.Marshal(tmpl)
	var out any
	_ = json.Unmarshal(raw, &out)
	return out
}

var (
	wholeRE    = regexp.MustCompile(`^\{\{ (.*) \}\}$`)
	pathRE     = regexp.MustCompile(`^(\.[A-Za-z_][A-Za-z0-9_]*)+$`)
	pickRE     = regexp.MustCompile(`^\{([a-z]+(?:, [a-z]+)*)\}$`)
	entityIDRE = regexp.MustCompile(`^if has\(("[^"]*")\) then \.\[("[^"]*")\] \|= \.identifier else \. end$`)
)

func jqStage(t *testing.T, s string, in any) any {
	t.Helper()
	switch {
	case s == "if .entity == {} then null else .entity end":
		e := jqPath(in, ".entity")
		if m, ok := e.(map[string]any); ok && len(m) == 0 {
			return nil
		}
		return e
	case pathRE.MatchString(s):
		return jqPath(in, s)
	case pickRE.MatchString(s): // {a, b}: an object of those fields
		out := map[string]any{}
		for _, k := range strings.Split(pickRE.FindStringSubmatch(s)[1], ", ") {
			out[k] = jqPath(in, "."+k)
		}
		return out
	case entityIDRE.MatchString(s):
		m := entityIDRE.FindStringSubmatch(s)
		var key, key2 string
		_ = json.Unmarshal([]byte(m[1]), &key)
		_ = json.Unmarshal([]byte(m[2]), &key2)
		obj, _ := in.(map[string]any)
		if key != key2 || obj == nil {
			t.Fatalf("stage %q on %v", s, in)
		}
		if _, ok := obj[key]; !ok {
			return obj
		}
		out := map[string]any{}
		for k, v := range obj {
			out[k] = v
		}
		out[key] = jqPath(obj[key], ".identifier")
		return out
	}
	t.Fatalf("jq %q is not one paved's templates use; teach evalBody", s)
	return nil
}

// jqPath is .a.b: null through anything that is not an object.
func jqPath(in any, path string) any {
	cur := in
	for _, k := range strings.Split(path, ".")[1:] {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// backstageYAML renders the actions' templates as one YAML stream.
func backstageYAML(t *testing.T, actions []*catalog.Action) []byte {
	t.Helper()
	ts, err := RenderBackstage(actions)
	if err != nil {
		t.Fatal(err)
	}
	docs := make([]any, len(ts))
	for i := range ts {
		docs[i] = ts[i]
	}
	b, err := YAML(docs...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Without the blueprints of the DAY-2 actions, the approve action is a
// CREATE on no blueprint: Port needs no entity for it.
func TestApproveRunActionWithoutBlueprints(t *testing.T) {
	actions, _ := shipped(t)
	p, err := RenderPort(actions, nil, PortOptions{WebhookURL: "https://paved.example.com/webhooks/port"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range p.Actions {
		if a["identifier"] == ApproveRunAction && (at(a, "trigger.operation") != "CREATE" || at(a, "trigger.blueprintIdentifier") != nil) {
			t.Fatalf("approve action without blueprints: %v", a["trigger"])
		}
	}
}
