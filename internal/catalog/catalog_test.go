package catalog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/run"
)

const actionsDir = "../../actions"

func loadReal(t *testing.T) *Catalog {
	t.Helper()
	c, err := Load(actionsDir)
	if err != nil {
		t.Fatalf("Load(%s): %v", actionsDir, err)
	}
	return c
}

func mustGet(t *testing.T, c *Catalog, id string) *Action {
	t.Helper()
	a, ok := c.Get(id)
	if !ok {
		t.Fatalf("action %s not in catalog", id)
	}
	return a
}

func TestLoadRealActions(t *testing.T) {
	c := loadReal(t)
	var ids []string
	for _, a := range c.List() {
		ids = append(ids, a.Identifier)
	}
	for _, want := range []string{"add-s3-bucket", "add-sqs-queue", "create-service"} {
		if !slices.Contains(ids, want) {
			t.Errorf("catalog lacks %s; has %v", want, ids)
		}
	}
	if !slices.IsSorted(ids) {
		t.Errorf("List not sorted: %v", ids)
	}
	cs := mustGet(t, c, "create-service")
	if cs.Operation != run.Create || cs.Blueprint != "service" || cs.Output.Blueprint != "service" {
		t.Errorf("create-service = %+v", cs)
	}
	if cs.GitLab.Project == "" || cs.GitLab.Ref == "" || cs.Timeout <= 0 {
		t.Errorf("create-service gitlab/timeout = %+v %v", cs.GitLab, cs.Timeout)
	}
	for id, bp := range map[string]string{"add-s3-bucket": "s3_bucket", "add-sqs-queue": "sqs_queue"} {
		a := mustGet(t, c, id)
		if a.Operation != run.Day2 || a.Blueprint != "service" || a.Output.Blueprint != bp {
			t.Errorf("%s: operation %s on %s writing %s", id, a.Operation, a.Blueprint, a.Output.Blueprint)
		}
	}
	if _, ok := c.Get("nope"); ok {
		t.Error("Get(nope) found something")
	}
}

// blueprint is the part of Port's blueprint JSON the consistency check needs.
type blueprint struct {
	Identifier string `json:"identifier"`
	Title      string `json:"title"`
	Schema     struct {
		Properties map[string]map[string]any `json:"properties"`
		Required   []string                  `json:"required"`
	} `json:"schema"`
	Relations map[string]struct {
		Target string `json:"target"`
	} `json:"relations"`
	MirrorProperties map[string]struct {
		Path string `json:"path"`
	} `json:"mirrorProperties"`
}

func readBlueprints(t *testing.T) map[string]blueprint {
	t.Helper()
	paths, err := filepath.Glob("../../blueprints/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no blueprints: %v", err)
	}
	out := map[string]blueprint{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var b blueprint
		dec := json.NewDecoder(strings.NewReader(string(data)))
		if err := dec.Decode(&b); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if b.Identifier+".json" != filepath.Base(p) {
			t.Errorf("%s: identifier %q does not match the file name", p, b.Identifier)
		}
		out[b.Identifier] = b
	}
	return out
}

func TestBlueprintsMatchActions(t *testing.T) {
	bps := readBlueprints(t)
	for _, want := range []string{"service", "environment", "tenant", "s3_bucket", "sqs_queue"} {
		if _, ok := bps[want]; !ok {
			t.Errorf("blueprint %s missing", want)
		}
	}
	for id, b := range bps {
		for name, r := range b.Relations {
			if _, ok := bps[r.Target]; !ok {
				t.Errorf("blueprint %s: relation %s targets unknown blueprint %q", id, name, r.Target)
			}
		}
		for name, m := range b.MirrorProperties {
			rel, prop, _ := strings.Cut(m.Path, ".")
			r, ok := b.Relations[rel]
			if !ok {
				t.Errorf("blueprint %s: mirror %s uses unknown relation %q", id, name, rel)
				continue
			}
			if _, ok := bps[r.Target].Schema.Properties[prop]; !ok && !strings.HasPrefix(prop, "$") {
				t.Errorf("blueprint %s: mirror %s: %s has no property %q", id, name, r.Target, prop)
			}
		}
		for _, req := range b.Schema.Required {
			if _, ok := b.Schema.Properties[req]; !ok {
				t.Errorf("blueprint %s: required %q is not a property", id, req)
			}
		}
	}
	for _, a := range loadReal(t).List() {
		if _, ok := bps[a.Blueprint]; !ok {
			t.Errorf("%s runs on unknown blueprint %q", a.Identifier, a.Blueprint)
		}
		if a.Output.Blueprint == "" {
			continue
		}
		b, ok := bps[a.Output.Blueprint]
		if !ok {
			t.Errorf("%s writes to unknown blueprint %q", a.Identifier, a.Output.Blueprint)
			continue
		}
		for prop := range a.Output.Properties {
			if _, ok := b.Schema.Properties[prop]; !ok {
				t.Errorf("%s: output property %q does not exist in blueprint %s", a.Identifier, prop, b.Identifier)
			}
		}
		for rel := range a.Output.Relations {
			if _, ok := b.Relations[rel]; !ok {
				t.Errorf("%s: output relation %q does not exist in blueprint %s", a.Identifier, rel, b.Identifier)
			}
		}
		for _, req := range b.Schema.Required {
			if _, ok := a.Output.Properties[req]; !ok {
				t.Errorf("%s: blueprint %s requires %q, which the action does not write", a.Identifier, b.Identifier, req)
			}
		}
	}
}

func TestStackOf(t *testing.T) {
	c := loadReal(t)
	cs, s3 := mustGet(t, c, "create-service"), mustGet(t, c, "add-s3-bucket")
	st, err := cs.StackOf(run.Request{Inputs: map[string]any{"tenant": "acme", "environment": "dev", "name": "checkout"}})
	if err != nil || st != (run.Stack{Tenant: "acme", Environment: "dev", Service: "checkout"}) {
		t.Errorf("create-service stack = %+v, %v", st, err)
	}
	st, err = s3.StackOf(run.Request{
		Entity: run.Entity{Identifier: "checkout", Blueprint: "service"},
		Inputs: map[string]any{"tenant": "acme", "environment": "prod", "name": "ignored"},
	})
	if err != nil || st != (run.Stack{Tenant: "acme", Environment: "prod", Service: "checkout"}) {
		t.Errorf("add-s3-bucket stack = %+v, %v", st, err)
	}
	_, err = s3.StackOf(run.Request{Inputs: map[string]any{"environment": float64(3)}})
	if err == nil {
		t.Fatal("no error for missing tenant, bad environment, missing entity")
	}
	for _, want := range []string{`input "tenant" is missing`, `input "environment" must be a non-empty string`, "names none"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := cs.StackOf(run.Request{Inputs: map[string]any{"tenant": "a", "environment": "dev", "name": ""}}); err == nil {
		t.Error("empty service name accepted")
	}
	// A service name taken from an entity identifier must be a DNS label
	// before it reaches a stack name or a GitLab variable.
	for _, bad := range []string{"Checkout", "check_out", "-checkout", "checkout-", "a.b", "../etc", "svc name", "svc\n", strings.Repeat("a", 64), strings.Repeat("x", 100000)} {
		_, err := s3.StackOf(run.Request{Entity: run.Entity{Identifier: bad, Blueprint: "service"}, Inputs: map[string]any{"tenant": "acme", "environment": "dev"}})
		if err == nil || !strings.Contains(err.Error(), "is not a valid name") {
			t.Errorf("service %.20q: err = %v, want a refusal", bad, err)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Errorf("service %.20q: error echoes %d bytes", bad, len(err.Error()))
		}
	}
	if _, err := s3.StackOf(run.Request{Entity: run.Entity{Identifier: strings.Repeat("a", 63)}, Inputs: map[string]any{"tenant": "acme", "environment": "dev"}}); err != nil {
		t.Errorf("63-character label refused: %v", err)
	}
}

func TestTeamOf(t *testing.T) {
	c := loadReal(t)
	req := run.Request{
		Inputs: map[string]any{"team": "payments"},
		Entity: run.Entity{Identifier: "checkout", Team: []string{"web", "payments"}},
	}
	if got := mustGet(t, c, "create-service").TeamOf(req); got != "payments" {
		t.Errorf("create-service team = %q", got)
	}
	if got := mustGet(t, c, "add-sqs-queue").TeamOf(req); got != "web" {
		t.Errorf("add-sqs-queue team = %q", got)
	}
	if got := mustGet(t, c, "add-sqs-queue").TeamOf(run.Request{}); got != "" {
		t.Errorf("team without entity team = %q", got)
	}
}

var portIdentifierRE = regexp.MustCompile(`^[A-Za-z0-9@_.:\/=-]+$`)

func TestEntityFor(t *testing.T) {
	c := loadReal(t)
	r := &run.Run{
		ID: "r_1",
		Request: run.Request{
			Entity: run.Entity{Identifier: "checkout"},
			Inputs: map[string]any{"tenant": "acme", "environment": "prod", "bucketName": "invoices", "versioning": true, "retentionDays": float64(90)},
		},
		Stack: run.Stack{Tenant: "acme", Environment: "prod", Service: "checkout"},
		Team:  "payments",
		// The shape cmd/provision exports: every bucket of the stack by name
		// (another bucket must not be picked).
		Outputs: map[string]any{"buckets": map[string]any{
			"invoices": map[string]any{"name": "acme-prod-checkout-invoices", "arn": "arn:aws:s3:::acme-prod-checkout-invoices"},
			"other":    map[string]any{"name": "acme-prod-checkout-other", "arn": "arn:aws:s3:::acme-prod-checkout-other"},
		}},
	}
	e := mustGet(t, c, "add-s3-bucket").EntityFor(r)
	if e == nil {
		t.Fatal("no entity")
	}
	if e.Blueprint != "s3_bucket" || e.Identifier != "acme-prod-checkout-invoices" || !portIdentifierRE.MatchString(e.Identifier) {
		t.Errorf("entity = %+v", e)
	}
	if e.Title != "invoices (acme/prod)" || !slices.Equal(e.Team, []string{"payments"}) {
		t.Errorf("title/team = %q %v", e.Title, e.Team)
	}
	wantProps := map[string]any{
		"bucketName": "acme-prod-checkout-invoices", "arn": "arn:aws:s3:::acme-prod-checkout-invoices",
		"versioning": true, "retentionDays": float64(90),
	}
	if len(e.Properties) != len(wantProps) {
		t.Errorf("properties = %v, want %v (region has no output and must be left out)", e.Properties, wantProps)
	}
	for k, v := range wantProps {
		if e.Properties[k] != v {
			t.Errorf("property %s = %#v, want %#v", k, e.Properties[k], v)
		}
	}
	if e.Relations["service"] != "checkout" || e.Relations["environment"] != "prod" || e.Relations["tenant"] != "acme" {
		t.Errorf("relations = %v", e.Relations)
	}

	// Identifiers built from odd input still match Port's pattern.
	cs := mustGet(t, c, "create-service")
	r2 := &run.Run{Request: run.Request{Inputs: map[string]any{"name": "a b/ü"}}, Stack: run.Stack{Tenant: "t", Environment: "e", Service: "x"}}
	if e := cs.EntityFor(r2); e == nil || !portIdentifierRE.MatchString(e.Identifier) {
		t.Errorf("odd identifier = %+v", e)
	}
	if e := mustGet(t, c, "delete-service").EntityFor(r); e != nil {
		t.Errorf("delete-service writes %+v", e)
	}
	if e := cs.EntityFor(&run.Run{}); e != nil {
		t.Errorf("entity without name = %+v", e)
	}
}

// TestOutputPathInputsDeclared: an outputs path may take a segment only
// from an input the action declares.
func TestOutputPathInputsDeclared(t *testing.T) {
	if _, err := Parse("x.yaml", []byte(strings.Replace(mustRead(t, "add-s3-bucket.yaml"), "[inputs.bucketName].arn", "[inputs.nope].arn", 1))); err == nil || !strings.Contains(err.Error(), "[inputs.nope]") {
		t.Fatalf("undeclared input in an output path: %v", err)
	}
}
func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "actions", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDefinitionErrorFields: every problem Parse finds is a *DefinitionError
// naming the field it is about, which is what lets internal/validate point
// at its line.
func TestDefinitionErrorFields(t *testing.T) {
	src := mustRead(t, "create-service.yaml")
	edit := func(pairs ...string) []byte {
		s := src
		for i := 0; i < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				t.Fatalf("create-service.yaml lacks %q", pairs[i])
			}
			s = strings.Replace(s, pairs[i], pairs[i+1], 1)
		}
		return []byte(s)
	}
	_, err := Parse("x.yaml", edit(
		"title: Create a service\n", "",
		"        type: integer\n", "        type: integr\n",
		"order: [name, team,", "order: [name, team, team,",
		"    url: ${outputs.url}", "    url: ${nope}",
	))
	if err == nil {
		t.Fatal("Parse accepted a broken action")
	}
	var fields []string
	var walk func(error)
	walk = func(e error) {
		if de, ok := e.(*DefinitionError); ok {
			fields = append(fields, de.Field)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if u, ok := e.(interface{ Unwrap() error }); ok {
			walk(u.Unwrap())
			return
		}
		t.Errorf("not a *DefinitionError: %v", e)
	}
	walk(err)
	slices.Sort(fields)
	// An unknown type stops the input checks that need the schema (order);
	// the rest go on.
	want := []string{"inputs.schema.properties.replicas.type", "output.properties.url", "title"}
	if !slices.Equal(fields, want) {
		t.Fatalf("fields = %v, want %v", fields, want)
	}
	if !strings.Contains(err.Error(), "inputs.schema.properties.replicas.type: unknown type integr") {
		t.Fatalf("error = %v", err)
	}

	// With the type fixed, the order and output problems are found too.
	_, err = Parse("x.yaml", edit("order: [name, team,", "order: [name, team, team,", "    url: ${outputs.url}", "    url: ${nope}"))
	for _, want := range []string{"inputs.order: \"team\" listed twice", "output.properties.url: unknown placeholder ${nope}"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to contain %q", err, want)
		}
	}
}
