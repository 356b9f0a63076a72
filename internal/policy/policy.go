// Package policy decides whether a validated request may run, using OPA with
// the Rego policy in actions/policy. The query is prepared once at start,
// and partially evaluated for the configuration, so a decision costs one
// evaluation of what depends on the request and no compilation.
//
// A deny rule names itself by denying {"rule": name, "msg": message}
// rather than a bare message: the message carries user input, so only the
// name, from a small fixed set, is fit to label metrics with (see Denial).
// Bare messages are still accepted, with no name, so that platform teams'
// own policies keep working.
package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/paved-idp/paved/internal/run"
)

// Query is the rule paved evaluates; it yields {"deny": set of denials,
// "require_approval": bool}. A denial is {"rule": name, "msg": message},
// name matching RulePattern, or a bare message string (a denial with no
// rule name).
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
	// Preview is what the run's `pulumi preview` would change, once the
	// pipeline has previewed it (absent at intake): create, update,
	// replace, delete (counts), destroy, digest, and resources [{op, type,
	// name}].
	Preview map[string]any `json:"preview,omitempty"`
	// TTLSeconds is the ephemeral stack's TTL (the input ttl) in seconds,
	// absent when the stack is kept.
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
}

// InputOf is what the policy sees of run r: its request, stack, owning
// team and TTL (the preview is added by who judges one).
func InputOf(r *run.Run) Input {
	in := Input{
		Action: r.Request.Action, Operation: string(r.Operation), Inputs: r.Request.Inputs,
		Tenant: r.Stack.Tenant, Environment: r.Stack.Environment, Service: r.Stack.Service, Team: r.Team,
		TTLSeconds: int64(r.TTL / time.Second),
	}
	in.User.Email, in.User.Teams = r.Request.User.Email, r.Request.User.Teams
	e := r.Request.Entity
	in.Entity.Identifier, in.Entity.Blueprint, in.Entity.Team, in.Entity.Properties = e.Identifier, e.Blueprint, e.Team, e.Properties
	return in
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
	// Denials are what the deny rules said, sorted by message, then rule;
	// empty when allowed.
	Denials []Denial
	// Reasons are the Denials' messages, in the same order, for callers
	// that only show them.
	Reasons         []string
	RequireApproval bool
	// Approvers are who may approve or deny the run when it waits for
	// approval (the rule "approvers"): team identifiers, emails, and
	// operator:<name> or operator:* for paved's operator page. Sorted.
	Approvers []string
}

// Denial is one deny rule's refusal.
type Denial struct {
	// Rule is the rule's name, matching RulePattern, or "" when the rule
	// denied a bare message. Names are few and fixed by the policy, unlike
	// messages, so this is what metrics are labelled with.
	Rule string
	// Message is what the developer is shown.
	Message string
}

// RulePattern is what a denial's rule name must match: short kebab-case,
// so that a policy cannot blow up a metric's label values with free text.
const RulePattern = `^[a-z0-9][a-z0-9-]{0,62}$`

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
	// cur is the form decisions use: the policy evaluated in full from New,
	// replaced by its partially evaluated form once that is ready.
	cur atomic.Pointer[prepared]
	// settled is closed when cur holds its final form.
	settled chan struct{}
}

// prepared is one prepared form of the query.
type prepared struct {
	query rego.PreparedEvalQuery
	// partial says the query was partially evaluated (see New).
	partial bool
	// opts are the evaluation options every decision shares.
	opts []rego.EvalOption
}

// New loads every *.rego file in dir except tests, and prepares the query.
//
// New returns once the policy is compiled and evaluable in full, and then
// partially evaluates it for the configuration in the background (about
// two thirds of the preparation): paved need not wait for that to serve,
// since both forms decide alike, the partial one in about half the time.
// Settled tells when the final form is in place.
func New(ctx context.Context, dir string, data Data) (*Engine, error) {
	return newEngine(ctx, dir, data, true)
}

// Check compiles the policy in dir as New does, and nothing more: for
// `paved validate`, which decides nothing and so needs no partial form
// (a policy that has none is served in full, not refused).
func Check(ctx context.Context, dir string) error {
	_, err := newEngine(ctx, dir, Data{}, false)
	return err
}

// Settled is closed once decisions use the engine's final form: the
// partially evaluated query, or the full one for a policy OPA cannot
// partially evaluate.
func (e *Engine) Settled() <-chan struct{} { return e.settled }

// partial reports whether decisions use the partially evaluated form.
func (e *Engine) partial() bool { return e.cur.Load().partial }

// newEngine is New, optionally without partial evaluation (which tests
// compare against).
func newEngine(ctx context.Context, dir string, data Data, partial bool) (*Engine, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.rego"))
	if err != nil {
		return nil, fmt.Errorf("policy: list %s: %w", dir, err)
	}
	sort.Strings(paths)
	// Each file is parsed once, here: the full and the partially evaluated
	// query are two rego instances, which would each parse the sources
	// again. The options are rego's own for a module. Should a file not
	// parse, the sources go to rego as they are, whose errors name file and
	// line as they always have.
	var raw, parsed []func(*rego.Rego)
	parses := true
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.rego") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		raw = append(raw, rego.Module(p, string(src)))
		m, err := ast.ParseModuleWithOpts(p, string(src), ast.ParserOptions{RegoVersion: ast.DefaultRegoVersion})
		if err != nil {
			parses = false
			continue
		}
		parsed = append(parsed, rego.ParsedModule(m))
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("policy: no *.rego files in %s", dir)
	}
	modules := parsed
	if !parses {
		modules = raw
	}
	// The compiler is rego's default one, made here so that partial
	// evaluation reuses it rather than compiling the policy again.
	// Strict compilation refuses unused variables and imports, which in
	// Rego usually mean a rule that silently never fires.
	c := ast.NewCompiler().WithStrict(true).WithUseTypeCheckAnnotations(true).WithCapabilities(ast.CapabilitiesForThisVersion())
	// Parse and compile errors from OPA name file:line.
	q, err := rego.New(append(evalOptions(data, rego.Compiler(c)), append(modules, rego.Query(query))...)...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: compile %s: %w", dir, err)
	}
	e := &Engine{settled: make(chan struct{})}
	e.cur.Store(newPrepared(q, false))
	if !partial {
		close(e.settled)
		return e, nil
	}
	// data.paved is fixed for the engine's life, so the query is partially
	// evaluated with only input unknown: lookups in the configuration and
	// rules that depend only on it are folded into the prepared query, and
	// what remains per decision is mostly comparisons on input, which OPA's
	// rule index selects rules by. This halves a decision's work. A policy
	// OPA cannot partially evaluate (or whose partially evaluated form
	// fails strict compilation) stays on the full form, only slower;
	// TestShippedPolicyIsPartiallyEvaluated keeps the shipped one on the
	// fast path. The work is the engine's own, so it outlives the caller's
	// cancellation.
	go func() {
		defer close(e.settled)
		if q, ok := preparePartial(context.WithoutCancel(ctx), data, c, parsed); ok {
			e.cur.Store(newPrepared(q, true))
		}
	}()
	return e, nil
}

// evalOptions are the options every rego instance of the engine shares,
// each with a store of its own: a store shared with one that compiles
// would hold decisions up behind its write transaction.
func evalOptions(data Data, more ...func(*rego.Rego)) []func(*rego.Rego) {
	return append([]func(*rego.Rego){
		rego.Store(inmem.NewFromObject(data.document())),
		// A policy that calls a builtin wrongly should fail the run loudly,
		// not silently leave a deny rule undefined.
		rego.StrictBuiltinErrors(true),
		rego.Strict(true),
	}, more...)
}

// query binds Query to resultVar, which Decide reads.
const (
	resultVar = "decision"
	query     = resultVar + " = " + Query
)

// preparePartial partially evaluates query with the policy compiled in c
// and prepares what is left with the modules, or reports false if that is
// not one query that compiles. rego's own
// PrepareForEval(WithPartialEval()) does the same but wraps what is left
// in a rule it then evaluates per decision, which costs each decision
// another rule and two copies of the decision object.
func preparePartial(ctx context.Context, data Data, c *ast.Compiler, modules []func(*rego.Rego)) (rego.PreparedEvalQuery, bool) {
	// With no unknowns given, Partial takes input as unknown.
	pq, err := rego.New(evalOptions(data, rego.Compiler(c), rego.Query(query))...).Partial(ctx)
	if err != nil || len(pq.Queries) != 1 {
		return rego.PreparedEvalQuery{}, false
	}
	// What is left calls the policy's functions: compiled again with them.
	popts := evalOptions(data, append(modules[:len(modules):len(modules)], rego.ParsedQuery(pq.Queries[0]))...)
	for _, m := range pq.Support {
		popts = append(popts, rego.ParsedModule(m))
	}
	q, err := rego.New(popts...).PrepareForEval(ctx)
	return q, err == nil
}

func newPrepared(q rego.PreparedEvalQuery, partial bool) *prepared {
	opts := []rego.EvalOption{
		// Nobody reads the per-evaluation metrics; the no-op set allocates
		// nothing.
		rego.EvalMetrics(metrics.NoOp()),
		// Keep the result as AST: decode reads it directly, without OPA
		// converting the whole decision to Go maps and slices first.
		rego.EvalGenerateJSON(keepAST),
	}
	if partial {
		opts = append(opts, rego.EvalVirtualCache(noVirtualCache{}))
	}
	return &prepared{query: q, partial: partial, opts: opts}
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
	input, err := in.value()
	if err != nil {
		return Decision{}, fmt.Errorf("policy: input for action %s: %w", in.Action, err)
	}
	// OPA would otherwise start a goroutine per evaluation to watch ctx;
	// AfterFunc registers a callback instead, and nothing is needed when
	// ctx can never be cancelled.
	cancel := neverCancelled
	if ctx.Done() != nil {
		cancel = topdown.NewCancel()
		defer context.AfterFunc(ctx, cancel.Cancel)()
	}
	p := e.cur.Load()
	opts := append(p.opts[:len(p.opts):len(p.opts)], rego.EvalParsedInput(input), rego.EvalExternalCancel(cancel))
	rs, err := p.query.Eval(ctx, opts...)
	if err != nil {
		return Decision{}, fmt.Errorf("policy: evaluate %s for action %s: %w", Query, in.Action, err)
	}
	if len(rs) != 1 {
		return Decision{}, fmt.Errorf("policy: %s is undefined for action %s; the policy must always produce a decision", Query, in.Action)
	}
	return decode(rs[0].Bindings[resultVar])
}

func keepAST(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// neverCancelled stands in for a context that cannot be cancelled; nothing
// ever calls its Cancel, so sharing it is safe.
var neverCancelled = topdown.NewCancel()

// noVirtualCache is a topdown.VirtualCache that keeps nothing. OPA's default
// cache, a tree of hash maps made afresh for every evaluation, was a third
// of a decision's allocations; after partial evaluation a decision refers
// to each remaining rule about once (deny, require_approval, a call of
// listed), so there is little to reuse. Caching is only memoisation:
// without it a rule referred to twice is evaluated twice, with the same
// result. Full evaluation (the fallback in New) keeps OPA's cache, as there
// production and the tables are referred to by many rules.
type noVirtualCache struct{}

func (noVirtualCache) Push()                         {}
func (noVirtualCache) Pop()                          {}
func (noVirtualCache) Get(ast.Ref) (*ast.Term, bool) { return nil, false }
func (noVirtualCache) Put(ast.Ref, *ast.Term)        {}
func (noVirtualCache) Keys() []ast.Ref               { return nil }

// Top-level input keys, made once.
var (
	keyAction      = ast.InternedTerm("action")
	keyOperation   = ast.InternedTerm("operation")
	keyInputs      = ast.InternedTerm("inputs")
	keyUser        = ast.InternedTerm("user")
	keyEmail       = ast.InternedTerm("email")
	keyTeams       = ast.InternedTerm("teams")
	keyEntity      = ast.InternedTerm("entity")
	keyIdentifier  = ast.InternedTerm("identifier")
	keyBlueprint   = ast.InternedTerm("blueprint")
	keyTeam        = ast.InternedTerm("team")
	keyProperties  = ast.InternedTerm("properties")
	keyTenant      = ast.InternedTerm("tenant")
	keyEnvironment = ast.InternedTerm("environment")
	keyService     = ast.InternedTerm("service")
	keyPreview     = ast.InternedTerm("preview")
	keyTTLSeconds  = ast.InternedTerm("ttl_seconds")
)

// value is the input as Rego sees it, built as AST directly: going through
// map[string]any and ast.InterfaceToValue cost a third of a decision. Only
// the free-form inputs, properties and preview (JSON-shaped values) are
// converted, by object.
// Nil slices and maps become [] and {}, not null, so rules iterating them
// behave; the result equals InterfaceToValue of the Input's JSON
// (TestInputValueMatchesItsJSON).
func (in Input) value() (ast.Value, error) {
	inputs, err := object(in.Inputs)
	if err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	props, err := object(in.Entity.Properties)
	if err != nil {
		return nil, fmt.Errorf("entity properties: %w", err)
	}
	// The terms in one allocation rather than one each: allocation is most
	// of the cost here.
	nt := 15 + len(in.User.Teams) + len(in.Entity.Team)
	b := termBuf{ts: make([]ast.Term, 0, nt)}
	obj := ast.NewObject(
		ast.Item(keyAction, b.str(in.Action)),
		ast.Item(keyOperation, b.str(in.Operation)),
		ast.Item(keyInputs, b.term(inputs)),
		ast.Item(keyUser, b.term(ast.NewObject(
			ast.Item(keyEmail, b.str(in.User.Email)),
			ast.Item(keyTeams, b.strs(in.User.Teams)),
		))),
		ast.Item(keyEntity, b.term(ast.NewObject(
			ast.Item(keyIdentifier, b.str(in.Entity.Identifier)),
			ast.Item(keyBlueprint, b.str(in.Entity.Blueprint)),
			ast.Item(keyTeam, b.strs(in.Entity.Team)),
			ast.Item(keyProperties, b.term(props)),
		))),
		ast.Item(keyTenant, b.str(in.Tenant)),
		ast.Item(keyEnvironment, b.str(in.Environment)),
		ast.Item(keyService, b.str(in.Service)),
		ast.Item(keyTeam, b.str(in.Team)),
	)
	if in.Preview != nil {
		preview, err := object(in.Preview)
		if err != nil {
			return nil, fmt.Errorf("preview: %w", err)
		}
		obj.Insert(keyPreview, ast.NewTerm(preview))
	}
	if in.TTLSeconds != 0 {
		obj.Insert(keyTTLSeconds, ast.InternedTerm(int(in.TTLSeconds)))
	}
	return obj, nil
}

// object is a JSON-shaped map as a Rego object ({} when nil or empty): the
// value ast.InterfaceToValue makes of it (TestObjectMatchesInterfaceToValue),
// in fewer allocations, as this runs for every decision: the keys' and
// values' terms in one slice, the pairs on the stack, and whole numbers
// from OPA's interned ones.
func object(m map[string]any) (ast.Value, error) {
	if len(m) == 0 {
		return ast.InternedEmptyObjectValue, nil
	}
	ts := make([]ast.Term, 2*len(m))
	var buf [16][2]*ast.Term
	items := buf[:0]
	if len(m) > len(buf) {
		items = make([][2]*ast.Term, 0, len(m))
	}
	i := 0
	for k, v := range m {
		val, err := jsonValue(v)
		if err != nil {
			return nil, err
		}
		ts[i].Value, ts[i+1].Value = ast.InternedValue(k), val
		items = append(items, [2]*ast.Term{&ts[i], &ts[i+1]})
		i += 2
	}
	return ast.NewObject(items...), nil
}

// jsonValue is x as ast.InterfaceToValue makes it; maps and scalars are
// converted here (see object), anything else by InterfaceToValue.
func jsonValue(x any) (ast.Value, error) {
	switch x := x.(type) {
	case string:
		return ast.InternedValue(x), nil
	case bool:
		return ast.InternedValue(x), nil
	case float64:
		// InterfaceToValue formats a float64 as strconv's shortest 'g',
		// which for a small whole number is its digits, the text of OPA's
		// interned integer. -0 formats as "-0", so it is left out.
		if x >= -1 && x <= 512 && x == math.Trunc(x) && !(x == 0 && math.Signbit(x)) {
			if n := int(x); ast.HasInternedIntNumberTerm(n) {
				return ast.InternedValue(n), nil
			}
		}
	case map[string]any:
		return object(x)
	}
	return ast.InterfaceToValue(x)
}

// termBuf hands out terms from one preallocated slice. Its capacity must
// cover every term taken, or the slice would move and earlier pointers into
// it would no longer be the buffer's (harmless, but wasted).
type termBuf struct{ ts []ast.Term }

func (b *termBuf) term(v ast.Value) *ast.Term {
	b.ts = append(b.ts, ast.Term{Value: v})
	return &b.ts[len(b.ts)-1]
}

func (b *termBuf) str(s string) *ast.Term {
	if s == "" {
		return ast.InternedEmptyString
	}
	return b.term(ast.String(s))
}

// strs is ss as a Rego array ([] when nil or empty).
func (b *termBuf) strs(ss []string) *ast.Term {
	if len(ss) == 0 {
		return ast.InternedEmptyArray
	}
	elems := make([]*ast.Term, len(ss))
	for i, s := range ss {
		elems[i] = b.str(s)
	}
	return b.term(ast.NewArray(elems...))
}

// decode reads the decision object as OPA left it, in AST. As before, when
// OPA converted it to Go first: deny is a set (or array) of denials (see
// Query), and either may be null or missing.
func decode(v any) (Decision, error) {
	t, ok := v.(*ast.Term)
	if !ok {
		return Decision{}, fmt.Errorf("policy: %s is %T, want an AST term", Query, v)
	}
	m, ok := t.Value.(ast.Object)
	if !ok {
		return Decision{}, fmt.Errorf("policy: %s is %v, want an object", Query, ast.ValueName(t.Value))
	}
	var d Decision
	var deny []*ast.Term
	switch x := valueOf(m.Get(keyDeny)).(type) {
	case ast.Set:
		deny = x.Slice()
	case *ast.Array:
		for i := range x.Len() {
			deny = append(deny, x.Elem(i))
		}
	case nil, ast.Null:
	default:
		return Decision{}, fmt.Errorf("policy: %s.deny is %v, want a set of denials", Query, ast.ValueName(x))
	}
	if len(deny) > 0 {
		d.Denials = make([]Denial, len(deny))
		d.Reasons = make([]string, len(deny))
	}
	for i, t := range deny {
		dn, err := decodeDenial(t)
		if err != nil {
			return Decision{}, fmt.Errorf("policy: %s.deny: %w", Query, err)
		}
		d.Denials[i] = dn
	}
	slices.SortFunc(d.Denials, func(a, b Denial) int {
		return cmp.Or(strings.Compare(a.Message, b.Message), strings.Compare(a.Rule, b.Rule))
	})
	for i, dn := range d.Denials {
		d.Reasons[i] = dn.Message
	}
	d.Allow = len(d.Denials) == 0
	switch ra := valueOf(m.Get(keyRequireApproval)).(type) {
	case ast.Boolean:
		d.RequireApproval = bool(ra)
	case nil, ast.Null:
	default:
		return Decision{}, errors.New("policy: require_approval must be a boolean")
	}
	switch ap := valueOf(m.Get(keyApprovers)).(type) {
	case ast.Set:
		if ap.Len() > 0 {
			d.Approvers = make([]string, 0, ap.Len())
		}
		for _, t := range ap.Slice() {
			name, ok := t.Value.(ast.String)
			if !ok || name == "" {
				return Decision{}, fmt.Errorf("policy: %s.approvers holds %v, want non-empty strings", Query, t)
			}
			d.Approvers = append(d.Approvers, string(name))
		}
		slices.Sort(d.Approvers)
	case nil, ast.Null:
	default:
		return Decision{}, fmt.Errorf("policy: %s.approvers is %v, want a set of strings", Query, ast.ValueName(ap))
	}
	return d, nil
}

// decodeDenial reads one element of deny: a bare message, or
// {"rule": name, "msg": message} and nothing else, so that a misspelt key
// fails loudly rather than losing the name or the message.
func decodeDenial(t *ast.Term) (Denial, error) {
	switch x := t.Value.(type) {
	case ast.String:
		return Denial{Message: string(x)}, nil
	case ast.Object:
		rt, mt := x.Get(keyRule), x.Get(keyMsg)
		if rt == nil || mt == nil || x.Len() != 2 {
			return Denial{}, fmt.Errorf("denial %v: want exactly the keys rule and msg", t)
		}
		rule, ok := rt.Value.(ast.String)
		if !ok {
			return Denial{}, fmt.Errorf("denial %v: rule is %v, want a string", t, ast.ValueName(rt.Value))
		}
		if !validRule(string(rule)) {
			return Denial{}, fmt.Errorf("denial rule name %v does not match %s (lower-case letters, digits and dashes)", rt, RulePattern)
		}
		msg, ok := mt.Value.(ast.String)
		if !ok {
			return Denial{}, fmt.Errorf("denial of rule %v: msg is %v, want a string", rt, ast.ValueName(mt.Value))
		}
		return Denial{Rule: string(rule), Message: string(msg)}, nil
	default:
		return Denial{}, fmt.Errorf("denial %v is %v, want a string or an object {\"rule\": name, \"msg\": message}", t, ast.ValueName(t.Value))
	}
}

// validRule reports whether s matches RulePattern, checked by hand: it runs
// for every denial, and a regexp match costs some 40 times as much
// (TestValidRuleMatchesPattern keeps the two in step).
func validRule(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// valueOf is t's value, nil when t is.
func valueOf(t *ast.Term) ast.Value {
	if t == nil {
		return nil
	}
	return t.Value
}

var (
	keyDeny            = ast.InternedTerm("deny")
	keyRequireApproval = ast.InternedTerm("require_approval")
	keyApprovers       = ast.InternedTerm("approvers")
	keyRule            = ast.InternedTerm("rule")
	keyMsg             = ast.InternedTerm("msg")
)
