// Package policy decides whether a validated request may run, using OPA with
// the Rego policy in actions/policy. The query is prepared once at start, so
// a decision costs one evaluation and no compilation.
package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// Query is the rule paved evaluates; it yields {"deny": set of messages,
// "require_approval": bool}.
const Query = "data.paved.policy.decision"

// Input is what the policy sees of a request (input in Rego).
type Input struct {
	Action      string         `json:"action"`
	Operation   string         `json:"operation"`
	Inputs      map[string]any `json:"inputs"`
	User        User           `json:"user"`
	Entity      Entity         `json:"entity"`
	Tenant      string         `json:"tenant"`
	Environment string         `json:"environment"`
	Service     string         `json:"service"`
	// Team is the service's owning team.
	Team string `json:"team"`
}

// User is the person who asked, with their portal teams.
type User struct {
	Email string   `json:"email"`
	Teams []string `json:"teams"`
}

// Entity is the portal entity the action runs on (empty for CREATE).
type Entity struct {
	Identifier string         `json:"identifier"`
	Blueprint  string         `json:"blueprint"`
	Team       []string       `json:"team"`
	Properties map[string]any `json:"properties"`
}

// Decision is the policy's verdict on one request.
type Decision struct {
	Allow bool
	// Reasons are the deny messages, sorted; empty when allowed.
	Reasons         []string
	RequireApproval bool
}

// Data is the platform's configuration the rules consult (data.paved).
type Data struct {
	Environments []Environment
	Tenants      []string
}

// Environment is one deployment environment.
type Environment struct {
	Name       string
	Production bool
}

// Engine evaluates the prepared policy. It is safe for concurrent use.
type Engine struct {
	query rego.PreparedEvalQuery
}

// New loads every *.rego file in dir except tests, and prepares the query.
func New(ctx context.Context, dir string, data Data) (*Engine, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.rego"))
	if err != nil {
		return nil, fmt.Errorf("policy: list %s: %w", dir, err)
	}
	sort.Strings(paths)
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.Store(inmem.NewFromObject(data.document())),
		// A policy that calls a builtin wrongly should fail the run loudly,
		// not silently leave a deny rule undefined.
		rego.StrictBuiltinErrors(true),
		// Strict compilation refuses unused variables and imports, which
		// in Rego usually mean a rule that silently never fires.
		rego.Strict(true),
	}
	n := 0
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.rego") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		opts = append(opts, rego.Module(p, string(src)))
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("policy: no *.rego files in %s", dir)
	}
	// Parse and compile errors from OPA name file:line.
	q, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: compile %s: %w", dir, err)
	}
	return &Engine{query: q}, nil
}

// document is Data as Rego sees it under data.paved; built from plain maps
// and slices because that is what the in-memory store holds.
func (d Data) document() map[string]any {
	envs := make([]any, 0, len(d.Environments))
	for _, e := range d.Environments {
		envs = append(envs, map[string]any{"name": e.Name, "production": e.Production})
	}
	tenants := make([]any, 0, len(d.Tenants))
	for _, t := range d.Tenants {
		tenants = append(tenants, t)
	}
	byName := make(map[string]any, len(d.Environments))
	for _, e := range d.Environments {
		byName[e.Name] = map[string]any{"name": e.Name, "production": e.Production}
	}
	set := make(map[string]any, len(d.Tenants))
	for _, t := range d.Tenants {
		set[t] = true
	}
	// The lists, and the same indexed so that rules look names up instead
	// of building a set on every decision.
	return map[string]any{"paved": map[string]any{"environments": envs, "tenants": tenants, "environments_by_name": byName, "tenant_set": set}}
}

// Decide evaluates the policy for one request.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	input, err := ast.InterfaceToValue(in.normalized().document())
	if err != nil {
		return Decision{}, fmt.Errorf("policy: input for action %s: %w", in.Action, err)
	}
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return Decision{}, fmt.Errorf("policy: evaluate %s for action %s: %w", Query, in.Action, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, fmt.Errorf("policy: %s is undefined for action %s; the policy must always produce a decision", Query, in.Action)
	}
	return decode(rs[0].Expressions[0].Value)
}

// normalized replaces nil slices and maps with empty ones, so Rego sees []
// and {} rather than null and rules iterating them behave.
func (in Input) normalized() Input {
	if in.Inputs == nil {
		in.Inputs = map[string]any{}
	}
	if in.User.Teams == nil {
		in.User.Teams = []string{}
	}
	if in.Entity.Team == nil {
		in.Entity.Team = []string{}
	}
	if in.Entity.Properties == nil {
		in.Entity.Properties = map[string]any{}
	}
	return in
}

// document is the input as plain maps and slices, which OPA converts
// directly; handing it the struct would cost a JSON round trip per decision.
func (in Input) document() map[string]any {
	return map[string]any{
		"action": in.Action, "operation": in.Operation, "inputs": in.Inputs,
		"user": map[string]any{"email": in.User.Email, "teams": in.User.Teams},
		"entity": map[string]any{"identifier": in.Entity.Identifier, "blueprint": in.Entity.Blueprint,
			"team": in.Entity.Team, "properties": in.Entity.Properties},
		"tenant": in.Tenant, "environment": in.Environment, "service": in.Service, "team": in.Team,
	}
}

func decode(v any) (Decision, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("policy: %s is %T, want an object", Query, v)
	}
	var d Decision
	deny, ok := m["deny"].([]any)
	if !ok && m["deny"] != nil {
		return Decision{}, fmt.Errorf("policy: %s.deny is %T, want a set of strings", Query, m["deny"])
	}
	for _, r := range deny {
		s, ok := r.(string)
		if !ok {
			return Decision{}, fmt.Errorf("policy: deny message %v is %T, want a string", r, r)
		}
		d.Reasons = append(d.Reasons, s)
	}
	slices.Sort(d.Reasons)
	d.Allow = len(d.Reasons) == 0
	switch ra := m["require_approval"].(type) {
	case bool:
		d.RequireApproval = ra
	case nil:
	default:
		return Decision{}, errors.New("policy: require_approval must be a boolean")
	}
	return d, nil
}
