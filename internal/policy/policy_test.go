package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/paved-idp/paved/internal/catalog"
)

const policyDir = "../../actions/policy"

// TestRego runs the Rego unit tests next to the policy, so a failing Rego
// test fails go test.
func TestRego(t *testing.T) {
	ctx := context.Background()
	results, err := tester.Run(ctx, policyDir)
	if err != nil {
		t.Fatalf("run rego tests: %v", err)
	}
	n := 0
	for _, r := range results {
		n++
		if !r.Pass() {
			t.Errorf("rego %s.%s (%s): fail=%v err=%v", r.Package, r.Name, r.Location, r.Fail, r.Error)
		}
	}
	if n == 0 {
		t.Fatal("no rego tests found")
	}
	t.Logf("%d rego tests passed", n)
}

// TestRegoFormatted keeps the policy as `opa fmt` writes it, so diffs in
// review show changes of meaning only.
func TestRegoFormatted(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(policyDir, "*.rego"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no rego files: %v", err)
	}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := format.Source(p, src)
		if err != nil {
			t.Fatalf("format %s: %v", p, err)
		}
		if string(got) != string(src) {
			t.Errorf("%s is not formatted as opa fmt would; expected:\n%s", p, got)
		}
	}
}

var testData = Data{
	Environments: []Environment{{Name: "dev"}, {Name: "staging"}, {Name: "prod", Production: true}},
	Tenants:      []string{"acme", "globex"},
}

var (
	engineOnce sync.Once
	engine     *Engine
	engineErr  error
)

// testEngine shares one engine: preparing the query is the slow part, and
// sharing it also exercises concurrent Decide calls across subtests.
func testEngine(t *testing.T) *Engine {
	t.Helper()
	engineOnce.Do(func() {
		// The tests decide with the form paved decides with once started.
		if engine, engineErr = New(context.Background(), policyDir, testData); engineErr == nil {
			<-engine.Settled()
		}
	})
	if engineErr != nil {
		t.Fatalf("New: %v", engineErr)
	}
	return engine
}

func base() Input {
	return Input{
		Action: "add-sqs-queue", Operation: "DAY-2",
		Inputs: map[string]any{"tenant": "acme", "environment": "dev", "queueName": "orders"},
		User:   User{Email: "dev@x.io", Teams: []string{"payments"}},
		Entity: Entity{Identifier: "checkout", Blueprint: "service", Team: []string{"payments"}},
		Tenant: "acme", Environment: "dev", Service: "checkout", Team: "payments",
	}
}

func TestDecide(t *testing.T) {
	e := testEngine(t)
	// rule is the name every denial of the case must carry.
	tests := []struct {
		name     string
		edit     func(*Input)
		rule     string
		reasons  []string
		approval bool
	}{
		{"dev allowed", func(*Input) {}, "", nil, false},
		{"unknown tenant", func(in *Input) { in.Tenant = "initech" }, "unknown-tenant",
			[]string{`tenant "initech" is not one of: acme, globex`}, false},
		{"unknown environment", func(in *Input) { in.Environment = "qa" }, "unknown-environment",
			[]string{`environment "qa" is not one of: dev, prod, staging`}, false},
		{"production by owning team", func(in *Input) { in.Environment = "prod" }, "", nil, false},
		{"production by another team", func(in *Input) {
			in.Environment = "prod"
			in.User.Teams = []string{"web"}
		}, "production-owning-team", []string{`production changes to service "checkout" may only be made by members of its owning team "payments"; you (dev@x.io) are in: web`}, false},
		{"production by user without teams", func(in *Input) {
			in.Environment = "prod"
			in.User.Teams = nil
		}, "production-owning-team", []string{`production changes to service "checkout" may only be made by members of its owning team "payments"; you (dev@x.io) are in: no team`}, false},
		{"production without owner", func(in *Input) {
			in.Environment = "prod"
			in.Team = ""
		}, "production-needs-owner", []string{`service "checkout" has no owning team, and production changes need one; set the service's team in the portal, then run the action again`}, false},
		{"staging by another team", func(in *Input) {
			in.Environment = "staging"
			in.User.Teams = []string{"web"}
		}, "", nil, false},
		{"replicas over dev cap (float64)", func(in *Input) { in.Inputs["replicas"] = float64(12) }, "cap-exceeded",
			[]string{"replicas 12 exceeds the dev limit of 3; ask for 3 or less, or ask the platform team to raise the non-production cap"}, false},
		{"replicas over dev cap (json.Number)", func(in *Input) { in.Inputs["replicas"] = json.Number("4") }, "cap-exceeded",
			[]string{"replicas 4 exceeds the dev limit of 3; ask for 3 or less, or ask the platform team to raise the non-production cap"}, false},
		{"replicas at dev cap (int)", func(in *Input) { in.Inputs["replicas"] = 3 }, "", nil, false},
		{"replicas over prod cap", func(in *Input) {
			in.Environment = "prod"
			in.Inputs["replicas"] = 13
		}, "cap-exceeded", []string{"replicas 13 exceeds the prod limit of 12; ask for 12 or less, or ask the platform team to raise the production cap"}, false},
		{"retention and queue caps, sorted", func(in *Input) {
			in.Inputs["retentionDays"] = 365
			in.Inputs["visibilityTimeoutSeconds"] = 7200
			in.Inputs["maxReceiveCount"] = 11
		}, "cap-exceeded", []string{
			"maxReceiveCount 11 exceeds the dev limit of 10; ask for 10 or less, or ask the platform team to raise the non-production cap",
			"retentionDays 365 exceeds the dev limit of 90; ask for 90 or less, or ask the platform team to raise the non-production cap",
			"visibilityTimeoutSeconds 7200 exceeds the dev limit of 3600; ask for 3600 or less, or ask the platform team to raise the non-production cap",
		}, false},
		{"public bucket", func(in *Input) { in.Inputs["public"] = true }, "public-storage",
			[]string{"public access is not offered: storage is private; publish through the CDN instead"}, false},
		{"production delete needs approval", func(in *Input) {
			in.Environment = "prod"
			in.Operation = "DELETE"
			in.Inputs["confirmName"] = "checkout"
		}, "", nil, true},
		{"production delete without the typed name", func(in *Input) {
			in.Environment = "prod"
			in.Operation = "DELETE"
			in.Inputs["confirmName"] = "checkuot"
		}, "production-delete-unconfirmed", []string{`deleting service "checkout" in production destroys its stack and its data: type the service's name, checkout, in confirmName to confirm`}, true},
		{"dev delete needs none", func(in *Input) { in.Operation = "DELETE" }, "", nil, false},
		{"over budget", func(in *Input) {
			in.Preview = map[string]any{"create": 1, "update": 0, "replace": 0, "delete": 0, "destroy": false, "digest": "sha256:x",
				"resources": []any{map[string]any{"op": "create", "type": "aws:kms/key:Key", "name": "k"}},
				"cost":      map[string]any{"monthly": 101.5, "before": 1.5, "delta": 100.0, "currency": "USD", "unpriced": []any{}, "others": 1950.0}}
		}, "budget-exceeded", []string{`over budget: tenant "acme" in "dev" may spend 2000 USD a month; its stacks cost 1951.5 now and this change adds 100, to 2051.5; nothing was applied. Make the change smaller, remove something, or ask the platform team to raise the budget`}, false},
		{"extended by another team", func(in *Input) {
			in.Action, in.Inputs["ttl"], in.TTLSeconds, in.User.Teams = "paved-extend-ttl", "8h", 8*3600, []string{"web"}
		}, "extend-owning-team", []string{`only the owning team "payments" may extend the stacks of service "checkout"; you are in: web`}, false},
		{"ephemeral in dev", func(in *Input) { in.Inputs["ttl"], in.TTLSeconds = "14d", 14*24*3600 }, "", nil, false},
		{"ephemeral too long", func(in *Input) { in.Environment, in.Inputs["ttl"], in.TTLSeconds = "staging", "73h", 73*3600 }, "ttl-too-long",
			[]string{`a ttl of 73h is longer than environment "staging" allows: at most 72h; ask for less, and extend it later with paved-extend-ttl`}, false},
		{"ephemeral in production", func(in *Input) { in.Environment, in.Inputs["ttl"], in.TTLSeconds = "prod", "8h", 8*3600 }, "ttl-in-production",
			[]string{`environment "prod" is production, where stacks are not ephemeral: leave ttl empty`}, false},
		{"production replace of a database refused", func(in *Input) {
			in.Environment = "prod"
			in.Preview = map[string]any{"create": 0, "update": 0, "replace": 1, "delete": 0, "destroy": false, "digest": "sha256:x",
				"resources": []any{map[string]any{"op": "replace", "type": "aws:rds/cluster:Cluster", "name": "acme-prod-checkout-db"}}}
		}, "production-data-loss", []string{"this change would replace aws:rds/cluster:Cluster acme-prod-checkout-db in production, losing its data; nothing was applied. Change the inputs so the resource is kept, or ask the platform team to migrate it"}, true},
		{"production replace of a topic needs approval", func(in *Input) {
			in.Environment = "prod"
			in.Preview = map[string]any{"create": 0, "update": 0, "replace": 1, "delete": 0, "destroy": false, "digest": "sha256:x",
				"resources": []any{map[string]any{"op": "replace", "type": "aws:sns/topic:Topic", "name": "acme-prod-checkout-events"}}}
		}, "", nil, true},
		{"dev replace of a database allowed", func(in *Input) {
			in.Preview = map[string]any{"create": 0, "update": 0, "replace": 1, "delete": 0, "destroy": false, "digest": "sha256:x",
				"resources": []any{map[string]any{"op": "replace", "type": "aws:rds/cluster:Cluster", "name": "acme-dev-checkout-db"}}}
		}, "", nil, false},
		{"nil inputs", func(in *Input) { in.Inputs = nil; in.Entity = Entity{} }, "", nil, false},
	}
	// Every named deny rule of the shipped policy is met by some case, so a
	// new rule cannot go untested here.
	covered := map[string]bool{}
	for _, tt := range tests {
		if tt.rule != "" {
			covered[tt.rule] = true
		}
	}
	if names := shippedRuleNames(t); !reflect.DeepEqual(covered, names) {
		t.Errorf("cases cover deny rules %v; the shipped policy has %v", slices.Sorted(maps.Keys(covered)), slices.Sorted(maps.Keys(names)))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := base()
			tt.edit(&in)
			// t.Context can be cancelled, so Decide watches it (the
			// benchmark's context.Background cannot, so it does not).
			d, err := e.Decide(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			var want []Denial
			for _, r := range tt.reasons {
				want = append(want, Denial{Rule: tt.rule, Message: r})
			}
			if !slices.Equal(d.Denials, want) || !slices.Equal(d.Reasons, tt.reasons) || d.Allow != (len(tt.reasons) == 0) || d.RequireApproval != tt.approval {
				t.Errorf("got %+v\nwant rule %q reasons %q approval %v", d, tt.rule, tt.reasons, tt.approval)
			}
		})
	}
}

// shippedRuleNames are the rule names of the shipped policy's deny rules,
// read from the source; each rule must deny {"rule": <constant>, "msg": ...}
// with a valid name, so that every shipped denial is counted by rule.
func shippedRuleNames(t *testing.T) map[string]bool {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(policyDir, "*.rego"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.rego") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ast.ParseModule(p, string(src))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Rules {
			if !r.Head.Ref().Equal(ast.Ref{ast.VarTerm("deny")}) {
				continue
			}
			obj, ok := r.Head.Key.Value.(ast.Object)
			if !ok {
				t.Errorf("%v: deny rule adds %v, want {\"rule\": name, \"msg\": message}", r.Location, r.Head.Key)
				continue
			}
			name, ok := valueOf(obj.Get(keyRule)).(ast.String)
			if !ok || !validRule(string(name)) {
				t.Errorf("%v: deny rule's name %v is not a constant matching %s", r.Location, obj.Get(keyRule), RulePattern)
				continue
			}
			names[string(name)] = true
		}
	}
	if len(names) == 0 {
		t.Fatal("no named deny rules in the shipped policy")
	}
	return names
}

func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bad := "package paved.policy\n\ndecision := {\"deny\": deny\n"
	if err := os.WriteFile(filepath.Join(dir, "broken.rego"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(ctx, dir, testData)
	if err == nil || !strings.Contains(err.Error(), "broken.rego:") {
		t.Errorf("compile error does not name file:line: %v", err)
	}
	if _, err := New(ctx, t.TempDir(), testData); err == nil {
		t.Error("empty dir accepted")
	}

	// A policy without the decision rule fails per request, clearly.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, "p.rego"), []byte("package paved.policy\n\nx := 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := New(ctx, dir2, testData)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Decide(ctx, base()); err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Errorf("missing decision: %v", err)
	}
}

// TestCapsNameRealInputs keeps the cap table honest: every capped name is an
// input of some action, and no production cap is above the schema's maximum.
func TestCapsNameRealInputs(t *testing.T) {
	ctx := context.Background()
	src, err := os.ReadFile(filepath.Join(policyDir, "policy.rego"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rego.New(rego.Query("data.paved.policy.caps"), rego.Module("policy.rego", string(src))).Eval(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("eval caps: %v %v", rs, err)
	}
	caps, _ := rs[0].Expressions[0].Value.(map[string]any)
	cat, err := catalog.Load("../../actions")
	if err != nil {
		t.Fatal(err)
	}
	for class, table := range caps {
		for name, limit := range table.(map[string]any) {
			found := false
			for _, a := range cat.List() {
				props, _ := a.Inputs["properties"].(map[string]any)
				p, ok := props[name].(map[string]any)
				if !ok {
					continue
				}
				found = true
				l, err1 := strconv.ParseFloat(fmt.Sprint(limit), 64)
				m, err2 := strconv.ParseFloat(fmt.Sprint(p["maximum"]), 64)
				if err1 != nil || err2 != nil {
					t.Fatalf("%s: cap %v or maximum %v of %s is not a number", a.Identifier, limit, p["maximum"], name)
				}
				if l > m {
					t.Errorf("%s cap for %s is %v, above %s's schema maximum %v", class, name, limit, a.Identifier, m)
				}
			}
			if !found {
				t.Errorf("%s cap names %q, which no action has as an input", class, name)
			}
		}
	}
}

// The hand-built input value must be what OPA would make of the struct's
// JSON, so the policy sees the same input either way: with values in every
// field, and with the nil slices and maps, which must be [] and {}.
func TestInputValueMatchesItsJSON(t *testing.T) {
	full := Input{Action: "a", Operation: "DAY-2", Inputs: map[string]any{"size": 3.0, "n": json.Number("4"), "tags": []any{"x"}, "on": true, "none": nil, "obj": map[string]any{"k": "v"}},
		User: User{Email: "e@x", Teams: []string{"t", "u"}}, Entity: Entity{Identifier: "i", Blueprint: "b", Team: []string{"t"}, Properties: map[string]any{"p": true}},
		Tenant: "acme", Environment: "dev", Service: "svc", Team: "t", TTLSeconds: 3600,
		Preview: map[string]any{"replace": 1.0, "destroy": false, "resources": []any{map[string]any{"op": "replace", "type": "aws:s3/bucket:Bucket", "name": "b"}},
			"cost": map[string]any{"monthly": 101.5, "delta": json.Number("100"), "currency": "USD", "unpriced": []any{}}}}
	for _, in := range []Input{full, {}, {Inputs: map[string]any{}, User: User{Teams: []string{}}, Entity: Entity{Team: []string{}, Properties: map[string]any{}}}} {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		// nil slices and maps marshal as null; Rego must see [] and {}.
		m := doc.(map[string]any)
		user, entity := m["user"].(map[string]any), m["entity"].(map[string]any)
		for _, f := range []struct {
			obj map[string]any
			key string
			def any
		}{{m, "inputs", map[string]any{}}, {user, "teams", []any{}}, {entity, "team", []any{}}, {entity, "properties", map[string]any{}}} {
			if f.obj[f.key] == nil {
				f.obj[f.key] = f.def
			}
		}
		want, err := ast.InterfaceToValue(doc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := in.value()
		if err != nil {
			t.Fatal(err)
		}
		if ast.Compare(got, want) != 0 || got.Hash() != want.Hash() {
			t.Errorf("value %v\n  != JSON %v", got, want)
		}
	}
}

// The shipped policy must stay on the fast path: if partial evaluation
// stops working for it (New then falls back to full evaluation), a decision
// costs about twice as much.
func TestShippedPolicyIsPartiallyEvaluated(t *testing.T) {
	if !testEngine(t).partial() {
		t.Fatal("the shipped policy was not partially evaluated at start; see New")
	}
}

// Partial evaluation specialises the policy for the configuration at start;
// it must not change a single decision or message. Compared with full
// evaluation across configurations (none, several production environments,
// odd names) and generated inputs around every rule's edges.
func TestPartialEvaluationMatchesFull(t *testing.T) {
	ctx := context.Background()
	datas := []Data{
		testData,
		{},
		{Environments: []Environment{{Name: "prod", Production: true}, {Name: "prod-eu", Production: true}, {Name: "dev"}}, Tenants: []string{"acme"}},
		{Environments: []Environment{{Name: ""}, {Name: "qa \"x\"", Production: true}}, Tenants: []string{"", "acme", "globex", "initech"}},
	}
	inputs := generatedInputs(500)
	for i, data := range datas {
		fast, err := newEngine(ctx, policyDir, data, true)
		if err != nil {
			t.Fatal(err)
		}
		full, err := newEngine(ctx, policyDir, data, false)
		if err != nil {
			t.Fatal(err)
		}
		// Until it settles, fast decides in full too.
		<-fast.Settled()
		if !fast.partial() || full.partial() {
			t.Fatalf("data %d: partial %v / %v", i, fast.partial(), full.partial())
		}
		for _, in := range inputs {
			want, err1 := full.Decide(ctx, in)
			got, err2 := fast.Decide(ctx, in)
			if (err1 != nil) != (err2 != nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("data %d, input %+v:\n partial %+v, %v\n full    %+v, %v", i, in, got, err2, want, err1)
			}
		}
	}
}

// Decisions made while New's engine is still on its full form, and while
// the partial form replaces it, are the same as the full form's (run with
// -race, this is also the swap's race check).
func TestDecisionsWhileSettling(t *testing.T) {
	ctx := context.Background()
	full, err := newEngine(ctx, policyDir, testData, false)
	if err != nil {
		t.Fatal(err)
	}
	inputs := generatedInputs(200)
	want := make([]Decision, len(inputs))
	for i, in := range inputs {
		if want[i], err = full.Decide(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	e, err := New(ctx, policyDir, testData)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for settled := false; !settled; {
				select {
				case <-e.Settled():
					settled = true // one more pass, on the final form
				default:
				}
				for i, in := range inputs {
					got, err := e.Decide(ctx, in)
					if err != nil || !reflect.DeepEqual(got, want[i]) {
						t.Errorf("input %+v: %+v, %v; want %+v", in, got, err, want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if !e.partial() {
		t.Fatal("settled on the full form")
	}
}

// generatedInputs are n inputs drawn (deterministically) from values on
// both sides of every rule: known and unknown tenants and environments,
// owners in and not in the user's teams, missing and empty fields, and
// capped inputs below, at and above each cap as ints, floats, json.Number
// and non-numbers.
func generatedInputs(n int) []Input {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	teams := func() []string {
		if r.IntN(5) == 0 {
			return nil
		}
		var ts []string
		for range r.IntN(4) {
			ts = append(ts, pick("payments", "web", "", "Payments EU", "payments_eu"))
		}
		return ts
	}
	number := func(limit float64) any {
		v := limit + float64(r.IntN(5)-2)
		switch r.IntN(5) {
		case 0:
			return int(v)
		case 1:
			return v + 0.5
		case 2:
			return json.Number(strconv.FormatFloat(v, 'f', -1, 64))
		case 3:
			return "lots"
		default:
			return v
		}
	}
	out := make([]Input, n)
	for i := range out {
		in := Input{
			Action:      pick("add-s3-bucket", "add-sqs-queue"),
			Operation:   pick("CREATE", "DAY-2", "DELETE", ""),
			User:        User{Email: pick("dev@x.io", ""), Teams: teams()},
			Entity:      Entity{Identifier: pick("checkout", ""), Blueprint: "service", Team: teams()},
			Tenant:      pick("acme", "globex", "initech", ""),
			Environment: pick("dev", "staging", "prod", "prod-eu", "qa", "", "qa \"x\""),
			Service:     pick("checkout", ""),
			Team:        pick("payments", "web", "", "payments_eu"),
		}
		if r.IntN(6) > 0 {
			in.Inputs = map[string]any{"tenant": in.Tenant, "environment": in.Environment}
			for name, limits := range map[string][2]float64{"replicas": {12, 3}, "retentionDays": {2555, 90}, "visibilityTimeoutSeconds": {43200, 3600}, "maxReceiveCount": {100, 10}} {
				if r.IntN(2) == 0 {
					in.Inputs[name] = number(limits[r.IntN(2)])
				}
			}
			switch r.IntN(4) {
			case 0:
				in.Inputs["public"] = true
			case 1:
				in.Inputs["public"] = "true"
			}
		}
		if r.IntN(3) == 0 {
			in.Entity.Properties = map[string]any{"team": "web", "public": true}
		}
		out[i] = in
	}
	return out
}

// decode reads the decision in AST; it accepts what it accepted when OPA
// handed it Go values: deny a set or array of strings, null or missing, and
// require_approval a boolean, null or missing; and, in deny, named denials
// {"rule", "msg"}, alone or mixed with strings.
func TestDecode(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, tt := range []struct {
		decision string
		want     Decision
		// err is part of the expected error, "" for none.
		err string
	}{
		{`{"deny": {"b", "a"}, "require_approval": true}`, Decision{Denials: []Denial{{"", "a"}, {"", "b"}}, Reasons: []string{"a", "b"}, RequireApproval: true}, ""},
		{`{"deny": set(), "require_approval": false}`, Decision{Allow: true}, ""},
		{`{"deny": ["b", "a"]}`, Decision{Denials: []Denial{{"", "a"}, {"", "b"}}, Reasons: []string{"a", "b"}}, ""},
		{`{"deny": null, "require_approval": null}`, Decision{Allow: true}, ""},
		{`{}`, Decision{Allow: true}, ""},
		// Sorted by message, whatever the rules' order; then by rule.
		{`{"deny": {{"rule": "a-rule", "msg": "z"}, {"rule": "z-rule", "msg": "a"}, {"rule": "b", "msg": "m"}, {"rule": "a", "msg": "m"}}}`,
			Decision{Denials: []Denial{{"z-rule", "a"}, {"a", "m"}, {"b", "m"}, {"a-rule", "z"}}, Reasons: []string{"a", "m", "m", "z"}}, ""},
		{`{"deny": ["plain", {"rule": "cap-exceeded", "msg": "capped"}]}`,
			Decision{Denials: []Denial{{"cap-exceeded", "capped"}, {"", "plain"}}, Reasons: []string{"capped", "plain"}}, ""},
		{`{"deny": [{"rule": "` + long + `", "msg": "m"}, {"rule": "0-9", "msg": "n"}]}`,
			Decision{Denials: []Denial{{long, "m"}, {"0-9", "n"}}, Reasons: []string{"m", "n"}}, ""},
		{`{"deny": "no"}`, Decision{}, "want a set of denials"},
		{`{"approvers": {"platform", "operator:*", "a@x.io"}}`, Decision{Allow: true, Approvers: []string{"a@x.io", "operator:*", "platform"}}, ""},
		{`{"approvers": set()}`, Decision{Allow: true}, ""},
		{`{"approvers": ["platform"]}`, Decision{}, "approvers is array, want a set of strings"},
		{`{"approvers": {1}}`, Decision{}, "approvers holds 1, want non-empty strings"},
		{`{"deny": {1}}`, Decision{}, "denial 1 is number, want a string or an object"},
		{`{"deny": {{"rule": "Cap", "msg": "m"}}}`, Decision{}, `rule name "Cap" does not match`},
		{`{"deny": {{"rule": "-cap", "msg": "m"}}}`, Decision{}, `rule name "-cap" does not match`},
		{`{"deny": {{"rule": "cap exceeded", "msg": "m"}}}`, Decision{}, `rule name "cap exceeded" does not match`},
		{`{"deny": {{"rule": "", "msg": "m"}}}`, Decision{}, `rule name "" does not match`},
		{`{"deny": {{"rule": "a` + long + `", "msg": "m"}}}`, Decision{}, `rule name "a` + long + `" does not match`},
		{`{"deny": {{"rule": 1, "msg": "m"}}}`, Decision{}, "rule is number, want a string"},
		{`{"deny": {{"rule": "cap", "msg": 5}}}`, Decision{}, `denial of rule "cap": msg is number, want a string`},
		{`{"deny": {{"rule": "cap", "msg": null}}}`, Decision{}, `denial of rule "cap": msg is null, want a string`},
		{`{"deny": {{"rule": "cap"}}}`, Decision{}, "want exactly the keys rule and msg"},
		{`{"deny": {{"rule": "cap", "message": "m"}}}`, Decision{}, "want exactly the keys rule and msg"},
		{`{"deny": {{"rule": "cap", "msg": "m", "extra": 1}}}`, Decision{}, "want exactly the keys rule and msg"},
		{`{"require_approval": "yes"}`, Decision{}, "require_approval"},
		{`["deny"]`, Decision{}, "want an object"},
	} {
		got, err := decode(ast.MustParseTerm(tt.decision))
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("decode(%s) = %+v, %v; want %+v, error with %q", tt.decision, got, err, tt.want, tt.err)
		}
	}
}

// validRule stands in for RulePattern, so the two must agree.
func TestValidRuleMatchesPattern(t *testing.T) {
	re := regexp.MustCompile(RulePattern)
	cases := []string{"", "a", "0", "-", "a-", "-a", "cap-exceeded", "Cap", "cap_exceeded", "cap exceeded", "é", "a\n", strings.Repeat("a", 63), strings.Repeat("a", 64)}
	for c := range 256 {
		cases = append(cases, string(rune(c)), "a"+string(rune(c)))
	}
	for _, s := range cases {
		if got, want := validRule(s), re.MatchString(s); got != want {
			t.Errorf("validRule(%q) = %v, pattern says %v", s, got, want)
		}
	}
}

// object converts the request's free-form maps itself, for fewer
// allocations; it must make exactly the value InterfaceToValue makes (the
// same value, hash and, for what InterfaceToValue refuses, an error).
func TestObjectMatchesInterfaceToValue(t *testing.T) {
	type point struct{ X, Y int }
	many := map[string]any{}
	for i := range 40 {
		many[fmt.Sprint("k", i)] = float64(i)
	}
	for _, m := range []map[string]any{
		nil,
		{},
		{"tenant": "acme", "environment": "prod", "bucketName": "receipts", "versioning": true, "retentionDays": float64(30)},
		{"zero": 0.0, "negzero": math.Copysign(0, -1), "minus1": -1.0, "minus2": -2.0, "big": 512.0, "bigger": 513.0, "half": 0.5, "e21": 1e21, "huge": 1e300, "tiny": 1e-7,
			"inf": math.Inf(1), "nan": math.NaN(), "maxint": float64(math.MaxInt64)},
		{"n": json.Number("4"), "f": json.Number("4.50"), "e": json.Number("1e3"), "i": 7, "i64": int64(-9), "u": uint64(1 << 63)},
		{"none": nil, "empty": "", "s": "x", "list": []any{"a", 1.0, map[string]any{"k": "v"}}, "strs": []string{"a", "b"}},
		{"nested": map[string]any{"a": map[string]any{"b": []any{true, nil}}, "c": map[string]any{}}},
		{"struct": point{1, 2}, "ptr": &point{3, 4}, "ints": []int{1, 2}},
		many,
		{"bad": json.Number("x1")},
		{"bad": make(chan int)},
		{"ok": "x", "nested": map[string]any{"bad": func() {}}},
	} {
		want, werr := ast.InterfaceToValue(m)
		if m == nil {
			want = ast.NewObject() // as object: nil is {}, not null
		}
		got, err := object(m)
		if (err != nil) != (werr != nil) {
			t.Errorf("object(%v): error %v, InterfaceToValue's %v", m, err, werr)
			continue
		}
		if err != nil {
			continue
		}
		if ast.Compare(got, want) != 0 || got.Hash() != want.Hash() || got.String() != want.String() {
			t.Errorf("object(%v) = %v\n  InterfaceToValue: %v", m, got, want)
		}
	}
}
