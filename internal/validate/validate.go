// Package validate checks paved's definitions, for the platform team's CI
// (`paved validate`) and for `paved serve`, which refuses to start on the
// same problems: every action, blueprint and policy file loads; the Rego
// unit tests next to the policy pass; every action's outputs map to
// properties and relations of its blueprint, with types that fit; every
// input has a type Port can show. Each problem names its file and line.
package validate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
	"gopkg.in/yaml.v3"

	"github.com/paved-idp/paved/internal/blueprint"
	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/catalog/placeholder"
	"github.com/paved-idp/paved/internal/policy"
	"github.com/paved-idp/paved/internal/srcpos"
)

// Problem is one thing wrong, at a file and line.
type Problem = srcpos.Problem

// Definitions are the actions and blueprints that loaded.
type Definitions struct {
	Actions    []*catalog.Action // sorted by identifier
	Blueprints []*blueprint.Blueprint
}

// Dirs checks everything: Load's checks, and the policy in policyDir
// compiles and its Rego unit tests (*_test.rego) pass. blueprintsDir ""
// leaves blueprints out. Problems are sorted by file and line.
func Dirs(ctx context.Context, actionsDir, blueprintsDir, policyDir string) []Problem {
	_, ps := Load(actionsDir, blueprintsDir)
	ps = append(ps, Policy(ctx, policyDir)...)
	return sorted(ps)
}

// Report is problems as text, one "file:line: message" per line.
func Report(ps []Problem) string { return srcpos.Problems(ps).Error() }

// Load reads the actions in actionsDir and the blueprints in blueprintsDir
// and checks them against each other. It returns what loaded, so that a
// caller can render it, and every problem. blueprintsDir "" skips the
// blueprints and the checks that need them.
func Load(actionsDir, blueprintsDir string) (Definitions, []Problem) {
	var defs Definitions
	actions, ps := loadActions(actionsDir)
	if blueprintsDir != "" {
		bps, bpProblems := blueprint.Load(blueprintsDir)
		defs.Blueprints = bps
		ps = append(ps, bpProblems...)
		byID := map[string]*blueprint.Blueprint{}
		for _, b := range bps {
			byID[b.Identifier] = b
		}
		for _, a := range actions {
			ps = append(ps, againstBlueprints(a.action, a.index, byID, blueprintsDir)...)
		}
	}
	for _, a := range actions {
		ps = append(ps, portInputs(a.action, a.index)...)
	}
	out := make([]*catalog.Action, len(actions))
	for i, a := range actions {
		out[i] = a.action
	}
	defs.Actions = out
	return defs, sorted(ps)
}

// parsed is an action with the index of its file's keys.
type parsed struct {
	action *catalog.Action
	index  *srcpos.Index
}

func loadActions(dir string) ([]parsed, []Problem) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, []Problem{{File: dir, Msg: err.Error()}}
	}
	if len(paths) == 0 {
		return nil, []Problem{{File: dir, Msg: "no *.yaml action files"}}
	}
	slices.Sort(paths)
	var out []parsed
	var ps []Problem
	seen := map[string]parsed{}
	for _, p := range paths {
		a, ix, aps := parseAction(p)
		ps = append(ps, aps...)
		if a == nil {
			continue
		}
		if prev, dup := seen[a.Identifier]; dup {
			ps = append(ps, Problem{File: p, Line: ix.Line("identifier"), Msg: fmt.Sprintf("identifier %q is already defined in %s", a.Identifier, prev.action.File)})
			continue
		}
		seen[a.Identifier] = parsed{a, ix}
		out = append(out, parsed{a, ix})
	}
	slices.SortFunc(out, func(x, y parsed) int { return strings.Compare(x.action.Identifier, y.action.Identifier) })
	return out, ps
}

// parseAction parses one file with catalog.Parse and places each of its
// problems at the line of the field it is about.
func parseAction(path string) (*catalog.Action, *srcpos.Index, []Problem) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, []Problem{{File: path, Msg: fmt.Sprintf("read action: %v", err)}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, yamlProblems(path, data, err)
	}
	ix := srcpos.IndexYAML(&doc)
	a, err := catalog.Parse(path, data)
	if err == nil {
		return a, ix, nil
	}
	var ps []Problem
	for _, leaf := range leaves(err) {
		var de *catalog.DefinitionError
		var te *yaml.TypeError
		switch {
		case errors.As(leaf, &de):
			ps = append(ps, Problem{File: path, Line: ix.Line(de.Field), Msg: de.Error()})
		case errors.As(leaf, &te):
			ps = append(ps, yamlProblems(path, data, te)...)
		default:
			ps = append(ps, Problem{File: path, Line: ix.Line(""), Msg: strings.TrimPrefix(leaf.Error(), path+": ")})
		}
	}
	return nil, nil, ps
}

func yamlProblems(path string, data []byte, err error) []Problem {
	var ps []Problem
	for _, le := range srcpos.YAMLErrors(data, err) {
		ps = append(ps, Problem{File: path, Line: le.Line, Msg: le.Msg})
	}
	return ps
}

// leaves flattens an error tree (fmt's %w wrapping, errors.Join) into the
// errors it is made of.
func leaves(err error) []error {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, inner := range e.Unwrap() {
			out = append(out, leaves(inner)...)
		}
		return out
	case *catalog.DefinitionError, *yaml.TypeError:
		return []error{err}
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return leaves(inner)
		}
	}
	return []error{err}
}

// againstBlueprints checks that the action's blueprints exist and that its
// outputs are properties and relations of its output blueprint, with values
// of the property's type where the template says which.
func againstBlueprints(a *catalog.Action, ix *srcpos.Index, byID map[string]*blueprint.Blueprint, dir string) []Problem {
	var ps []Problem
	at := func(field, format string, args ...any) {
		ps = append(ps, Problem{File: a.File, Line: ix.Line(field), Msg: field + ": " + fmt.Sprintf(format, args...)})
	}
	if a.Blueprint != "" && byID[a.Blueprint] == nil {
		at("blueprint", "no blueprint %q in %s", a.Blueprint, dir)
	}
	o := a.Output
	if o.Blueprint == "" {
		return ps
	}
	bp := byID[o.Blueprint]
	if bp == nil {
		at("output.blueprint", "no blueprint %q in %s", o.Blueprint, dir)
		return ps
	}
	for _, k := range sortedKeys(o.Properties) {
		field := "output.properties." + k
		prop, ok := bp.Properties[k]
		if !ok {
			at(field, "blueprint %s has no property %q (it has: %s)", bp.Identifier, k, strings.Join(sortedKeys(bp.Properties), ", "))
			continue
		}
		if t, from := templateType(o.Properties[k], a); t != "" && t != prop.Type {
			at(field, "%s is a %s, but property %s of blueprint %s is a %s", from, t, k, bp.Identifier, prop.Type)
		}
	}
	for _, k := range sortedKeys(o.Relations) {
		if _, ok := bp.Relations[k]; !ok {
			at("output.relations."+k, "blueprint %s has no relation %q", bp.Identifier, k)
		}
	}
	return ps
}

// templateType is the Port property type a template's value has, and what
// gives it: a template that is one ${inputs.x} keeps the input's type, one
// that is ${outputs...} is whatever the pipeline reports (""), and anything
// else becomes a string.
func templateType(tmpl string, a *catalog.Action) (typ, from string) {
	ref, ok := placeholder.Whole(tmpl)
	if !ok {
		return "string", "the template " + strconv.Quote(tmpl)
	}
	if strings.HasPrefix(ref, "outputs") {
		return "", ""
	}
	in, ok := strings.CutPrefix(ref, "inputs.")
	if !ok {
		return "string", "${" + ref + "}"
	}
	t, _ := a.InputProperties()[in]["type"].(string)
	if t == "integer" {
		t = "number" // Port's numbers hold integers
	}
	return t, "input " + in
}

// portInputs checks that every input has one type: Port shows an input by
// its type, and has no input for "null" or a choice of types.
func portInputs(a *catalog.Action, ix *srcpos.Index) []Problem {
	var ps []Problem
	props := a.InputProperties()
	for _, name := range sortedKeys(props) {
		field := "inputs.schema.properties." + name
		t, isStr := props[name]["type"].(string)
		switch {
		case props[name]["type"] == nil:
			ps = append(ps, Problem{File: a.File, Line: ix.Line(field), Msg: field + ": needs a type: Port shows an input by its type"})
		case !isStr || t == "null":
			ps = append(ps, Problem{File: a.File, Line: ix.Line(field + ".type"), Msg: fmt.Sprintf("%s.type: Port's inputs have one type of string, number, integer, boolean, array or object, got %v", field, props[name]["type"])})
		}
	}
	return ps
}

// Policy checks that the policy in dir compiles as paved serves it and that
// its Rego unit tests pass.
func Policy(ctx context.Context, dir string) []Problem {
	var ps []Problem
	if err := policy.Check(ctx, dir); err != nil {
		ps = append(ps, regoProblems(dir, err)...)
	}
	return append(ps, RegoTests(ctx, dir)...)
}

// RegoTests runs the Rego unit tests (*_test.rego) in dir with OPA's test
// runner. paved serve asks only this of Policy: it compiles the policy
// itself, and policy.New's errors name file and line too.
func RegoTests(ctx context.Context, dir string) []Problem {
	var ps []Problem
	results, err := tester.Run(ctx, dir)
	if err != nil {
		return append(ps, regoProblems(dir, err)...)
	}
	for _, r := range results {
		if r.Pass() || r.Skip { // todo_test_ rules are skipped, as opa test does
			continue
		}
		p := Problem{File: dir, Msg: fmt.Sprintf("rego test %s.%s fails", r.Package, r.Name)}
		if r.Location != nil {
			p.File, p.Line = r.Location.File, r.Location.Row
		}
		if r.Error != nil {
			p.Msg += ": " + r.Error.Error()
		}
		ps = append(ps, p)
	}
	// OPA's runner drops the tests it had not run when ctx ends, without
	// an error: a run cut short must not read as a pass.
	if err := ctx.Err(); err != nil {
		ps = append(ps, Problem{File: dir, Msg: "rego tests not all run: " + err.Error()})
	}
	return ps
}

// regoLineRE is OPA's "file:row: message" inside an error's text.
var regoLineRE = regexp.MustCompile(`(?m)(\S+\.rego):(\d+): ([^\n]*)`)

func regoProblems(dir string, err error) []Problem {
	var ae ast.Errors
	if errors.As(err, &ae) {
		var ps []Problem
		for _, e := range ae {
			p := Problem{File: dir, Msg: e.Code + ": " + e.Message}
			if e.Location != nil {
				p.File, p.Line = e.Location.File, e.Location.Row
			}
			ps = append(ps, p)
		}
		return ps
	}
	// Loader and rego errors wrap OPA's in their own text.
	var ps []Problem
	for _, m := range regoLineRE.FindAllStringSubmatch(err.Error(), -1) {
		n, _ := strconv.Atoi(m[2])
		ps = append(ps, Problem{File: m[1], Line: n, Msg: m[3]})
	}
	if len(ps) == 0 {
		ps = append(ps, Problem{File: dir, Msg: err.Error()})
	}
	return ps
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sorted sorts problems and drops repeats (the policy's compile errors come
// from both policy.New and the test runner).
func sorted(ps []Problem) []Problem {
	srcpos.Problems(ps).Sort()
	return slices.Compact(ps)
}
