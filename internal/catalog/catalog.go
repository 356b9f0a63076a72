// Package catalog holds paved's action definitions, read from actions/*.yaml:
// what each action asks the developer (a JSON Schema, compiled once at load),
// which GitLab project runs it, which stack it changes and which portal entity
// its results are written to. internal/render turns actions into what the
// portals read.
//
// The schema itself (compiling it, checking inputs against it) is
// inputschema's, and the ${...} language of an output's templates is
// placeholder's: this package keeps the action file's own rules.
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/paved-idp/paved/internal/catalog/inputschema"
	"github.com/paved-idp/paved/internal/catalog/placeholder"
	"github.com/paved-idp/paved/internal/run"
)

// Catalog is the set of actions paved knows, keyed by identifier. It is
// immutable after Load, so it is safe for concurrent use.
type Catalog struct {
	actions map[string]*Action
}

// Action is one portal action, validated and with its input schema compiled.
// Actions come from Parse or Load; a hand-built Action has no compiled schema.
type Action struct {
	Identifier  string
	Title       string
	Description string
	Icon        string
	Operation   run.Operation
	// Blueprint is the blueprint the action runs on (Port's
	// trigger.blueprintIdentifier).
	Blueprint string
	// ServiceFrom says where the stack's service name comes from:
	// "inputs.<name>" or "entity.identifier".
	ServiceFrom string
	Output      Output
	// Inputs is the JSON Schema (draft 2020-12) of the action's inputs, as
	// written in the file; Order is the order the portal shows them in.
	Inputs           map[string]any
	Order            []string
	GitLab           GitLab
	Timeout          time.Duration // zero: the server's default
	RequiredApproval bool
	// DeleteDestroyed: when a stack this action destroys (a DELETE, or the
	// expiry of an ephemeral stack it made) is gone, its entities are
	// deleted from the portal instead of marked destroyed.
	DeleteDestroyed bool
	// File is the path the action was read from, for error messages.
	File string

	schema *inputschema.Schema // nil on a hand-built Action
}

// Output says which entity a finished run writes and how its Pulumi stack
// outputs become entity properties. Values are templates; see placeholder.
type Output struct {
	Blueprint  string            `yaml:"blueprint"`
	Identifier string            `yaml:"identifier"`
	Title      string            `yaml:"title"`
	Properties map[string]string `yaml:"properties"` // entity property: template
	Relations  map[string]string `yaml:"relations"`  // relation: template
}

// GitLab names the pipeline a run triggers.
type GitLab struct {
	Project string `yaml:"project"`
	Ref     string `yaml:"ref"`
}

// actionFile is the YAML shape of an action; decoding is strict so a typo in
// a key is an error rather than a silently ignored setting.
type actionFile struct {
	Identifier       string     `yaml:"identifier"`
	Title            string     `yaml:"title"`
	Description      string     `yaml:"description"`
	Icon             string     `yaml:"icon"`
	Operation        string     `yaml:"operation"`
	Blueprint        string     `yaml:"blueprint"`
	ServiceFrom      string     `yaml:"serviceFrom"`
	Output           *Output    `yaml:"output"`
	Inputs           inputsFile `yaml:"inputs"`
	GitLab           GitLab     `yaml:"gitlab"`
	Timeout          string     `yaml:"timeout"`
	RequiredApproval bool       `yaml:"requiredApproval"`
	// DestroyedEntities is "mark" (the default: status destroyed) or
	// "delete" (gone from the portal) for the entities of a stack this
	// action destroys.
	DestroyedEntities string `yaml:"destroyedEntities"`
}

type inputsFile struct {
	Schema map[string]any `yaml:"schema"`
	Order  []string       `yaml:"order"`
}

var blueprintRE = regexp.MustCompile(`^[A-Za-z0-9@_=\-]+$`)

// identifierPattern is what an action's identifier must match, checked by
// validIdentifier: as a regexp its {1,62} compiled to a 50 KB program at
// every start.
const identifierPattern = `^[a-z][a-z0-9-]{1,62}$`

func validIdentifier(s string) bool {
	if len(s) < 2 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Load reads every *.yaml file in dir. Any bad file fails the whole load:
// serving a partial catalog would make actions vanish without anyone noticing.
func Load(dir string) (*Catalog, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("load actions from %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("load actions from %s: no *.yaml files", dir)
	}
	sort.Strings(paths)
	var actions []*Action
	var errs []error
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read action: %w", err))
			continue
		}
		a, err := Parse(p, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		actions = append(actions, a)
	}
	c, err := New(actions)
	if err := errors.Join(append(errs, err)...); err != nil {
		return nil, fmt.Errorf("load actions from %s: %w", dir, err)
	}
	return c, nil
}

// New is the catalog of actions already parsed (paved serve has them from
// its validation); two actions with one identifier are an error.
func New(actions []*Action) (*Catalog, error) {
	c := &Catalog{actions: make(map[string]*Action, len(actions))}
	var errs []error
	for _, a := range actions {
		if prev, dup := c.actions[a.Identifier]; dup {
			errs = append(errs, fmt.Errorf("%s: identifier %q is already defined in %s", a.File, a.Identifier, prev.File))
			continue
		}
		c.actions[a.Identifier] = a
	}
	return c, errors.Join(errs...)
}

// Get returns the action with the identifier.
func (c *Catalog) Get(id string) (*Action, bool) {
	a, ok := c.actions[id]
	return a, ok
}

// List returns every action, sorted by identifier.
func (c *Catalog) List() []*Action {
	out := make([]*Action, 0, len(c.actions))
	for _, a := range c.actions {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *Action) int { return strings.Compare(a.Identifier, b.Identifier) })
	return out
}

// Parse reads one action definition; name is used in error messages only.
func Parse(name string, data []byte) (a *Action, err error) {
	// yaml.v3 has panicked on some malformed documents in the past; a bad file
	// must be an error, never a crashed server.
	defer func() {
		if r := recover(); r != nil {
			a, err = nil, fmt.Errorf("%s: malformed YAML: %v", name, r)
		}
	}()
	var f actionFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var next any
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: want exactly one YAML document", name)
	}
	a, errs := build(name, &f)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", name, errors.Join(errs...))
	}
	return a, nil
}

// DryRunInput is the input every action has: true previews the change and
// applies nothing (the run ends with the preview).
const DryRunInput = "dryRun"

// withDryRun adds DryRunInput to an action's input schema (last in the
// form), so every portal form offers it and the schema accepts it. An
// action that declares it itself must declare a boolean.
func withDryRun(schema map[string]any, order *[]string) error {
	props, ok := schema["properties"].(map[string]any)
	if !ok {
		return nil // inputschema.Compile says what is wrong with the schema
	}
	if own, ok := props[DryRunInput]; ok {
		if m, ok := own.(map[string]any); !ok || m["type"] != "boolean" {
			return defErr("inputs.schema.properties."+DryRunInput, "is paved's own input (preview only, apply nothing) and must be a boolean")
		}
		return nil
	}
	props[DryRunInput] = map[string]any{
		"type": "boolean", "title": "Dry run", "default": false,
		"description": "Only preview the change: nothing is applied, and the run ends with what would change.",
	}
	if len(*order) > 0 {
		*order = append(*order, DryRunInput)
	}
	return nil
}

// build checks a decoded file and turns it into an Action, collecting every
// problem so an author fixes the file in one go.
func build(name string, f *actionFile) (*Action, []error) {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, defErr(field, format, args...)) }
	if !validIdentifier(f.Identifier) {
		bad("identifier", "must match %s, got %q", identifierPattern, f.Identifier)
	}
	if strings.TrimSpace(f.Title) == "" {
		bad("title", "is required")
	}
	op := run.Operation(f.Operation)
	switch op {
	case run.Create, run.Day2, run.Delete:
	default:
		bad("operation", "must be one of CREATE, DAY-2, DELETE, got %q", f.Operation)
	}
	if !blueprintRE.MatchString(f.Blueprint) {
		bad("blueprint", "must be a blueprint identifier, got %q", f.Blueprint)
	}
	a := &Action{
		Identifier: f.Identifier, Title: f.Title, Description: strings.TrimSpace(f.Description), Icon: f.Icon,
		Operation: op, Blueprint: f.Blueprint, ServiceFrom: f.ServiceFrom, Order: f.Inputs.Order,
		GitLab: f.GitLab, RequiredApproval: f.RequiredApproval, File: name,
		DeleteDestroyed: f.DestroyedEntities == "delete",
	}
	switch {
	case f.DestroyedEntities != "" && f.DestroyedEntities != "mark" && f.DestroyedEntities != "delete":
		bad("destroyedEntities", `must be "mark" (status destroyed, the default) or "delete", got %q`, f.DestroyedEntities)
	case f.DestroyedEntities != "" && op == run.Day2:
		bad("destroyedEntities", "says what a destroy does to the stack's entities; a DAY-2 action destroys none")
	case f.DestroyedEntities == "delete" && op == run.Delete && f.Output != nil:
		// The output's entity may be shared by other stacks (a service's),
		// which the stack's own entities (what a destroy deletes) never are.
		bad("destroyedEntities", "delete is for the stack's own entities; a DELETE action that also writes an output entity may not delete it")
	}
	if f.GitLab.Project == "" {
		bad("gitlab.project", "is required")
	}
	if f.GitLab.Ref == "" {
		bad("gitlab.ref", "is required")
	}
	if f.Timeout != "" {
		d, err := time.ParseDuration(f.Timeout)
		switch {
		case err != nil:
			bad("timeout", "must be a Go duration like 30m: %v", err)
		case d <= 0:
			bad("timeout", "must be positive, got %s", f.Timeout)
		default:
			a.Timeout = d
		}
	}
	var props map[string]map[string]any
	var required []string
	if err := withDryRun(f.Inputs.Schema, &f.Inputs.Order); err != nil {
		errs = append(errs, err)
	}
	a.Order = f.Inputs.Order
	if typeErrs := inputschema.CheckTypes(f.Inputs.Schema); len(typeErrs) > 0 {
		for _, e := range typeErrs { // the compiler would only repeat them, less precisely
			bad("inputs.schema.properties."+e.Input+".type", "%s", e.Msg)
		}
	} else if schema, err := inputschema.Compile(name, f.Inputs.Schema); err != nil {
		bad("inputs.schema", "%v", err)
	} else {
		a.Inputs, a.schema = f.Inputs.Schema, schema
		props, required = schema.Properties(), schema.Required()
		errs = append(errs, checkInputs(props, required, f.Inputs.Order)...)
	}
	errs = append(errs, checkServiceFrom(f.ServiceFrom, op, props, required)...)
	errs = append(errs, checkTTL(op, props)...)
	if f.Output != nil {
		a.Output = *f.Output
		errs = append(errs, checkOutput(a.Output, props, required)...)
	}
	return a, errs
}

// DefinitionError is one problem with an action definition, at the field it
// is about ("inputs.schema.properties.tenant.type"), so that a tool can point
// at the line that field is on (internal/validate does).
type DefinitionError struct {
	Field string
	Msg   string
}

func (e *DefinitionError) Error() string { return e.Field + ": " + e.Msg }

func defErr(field, format string, args ...any) error {
	return &DefinitionError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// InputProperties is the schema of each input as written (numbers as
// float64); callers must not change it.
func (a *Action) InputProperties() map[string]map[string]any { return a.schema.Properties() }

// RequiredInputs lists the inputs the schema requires.
func (a *Action) RequiredInputs() []string { return a.schema.Required() }

// Validate checks inputs against the action's schema and returns every
// violation, sorted by field; nil means valid.
func (a *Action) Validate(inputs map[string]any) []inputschema.FieldError {
	return a.schema.Validate(inputs)
}

// checkInputs enforces the platform's conventions on top of JSON Schema:
// every action names its tenant and environment, and the display order lists
// every input exactly once.
func checkInputs(props map[string]map[string]any, required, order []string) []error {
	var errs []error
	for _, k := range []string{"tenant", "environment"} {
		p, ok := props[k]
		if !ok {
			errs = append(errs, defErr("inputs.schema.properties."+k, "is required on every action"))
			continue
		}
		if p["type"] != "string" {
			errs = append(errs, defErr("inputs.schema.properties."+k+".type", "must be string"))
		}
		if !slices.Contains(required, k) {
			errs = append(errs, defErr("inputs.schema.required", "must include %s", k))
		}
	}
	for _, r := range required {
		if _, ok := props[r]; !ok {
			errs = append(errs, defErr("inputs.schema.required", "%q is not a declared property", r))
		}
	}
	seen := map[string]bool{}
	for _, o := range order {
		switch {
		case seen[o]:
			errs = append(errs, defErr("inputs.order", "%q listed twice", o))
		case props[o] == nil:
			errs = append(errs, defErr("inputs.order", "%q is not a declared property", o))
		}
		seen[o] = true
	}
	missing := slices.DeleteFunc(slices.Sorted(maps.Keys(props)), func(k string) bool { return seen[k] })
	if len(missing) > 0 {
		errs = append(errs, defErr("inputs.order", "must list every input; missing %s", strings.Join(missing, ", ")))
	}
	return errs
}

func checkServiceFrom(from string, op run.Operation, props map[string]map[string]any, required []string) []error {
	if from == "entity.identifier" {
		if op == run.Create {
			return []error{defErr("serviceFrom", "a CREATE action has no entity yet; use inputs.<name>")}
		}
		return nil
	}
	in, ok := strings.CutPrefix(from, "inputs.")
	if !ok {
		return []error{defErr("serviceFrom", "must be inputs.<name> or entity.identifier, got %q", from)}
	}
	if props != nil && (props[in] == nil || !slices.Contains(required, in)) {
		return []error{defErr("serviceFrom", "input %q must be a declared, required input", in)}
	}
	return nil
}

func checkOutput(o Output, props map[string]map[string]any, required []string) []error {
	var errs []error
	if !blueprintRE.MatchString(o.Blueprint) {
		errs = append(errs, defErr("output.blueprint", "must be a blueprint identifier, got %q", o.Blueprint))
	}
	// The identifier must exist before the pipeline runs (so it cannot use
	// outputs) and must never be empty (so it may only use required inputs).
	if o.Identifier == "" {
		errs = append(errs, defErr("output.identifier", "is required"))
	}
	check := func(field, tmpl string, allowOutputs bool) {
		refs, err := placeholder.Refs(tmpl)
		if err != nil {
			errs = append(errs, defErr(field, "%v", err))
			return
		}
		for _, r := range refs {
			switch {
			case r == "tenant" || r == "environment" || r == "service" || r == "stack":
			case strings.HasPrefix(r, "outputs.") && allowOutputs:
				for _, in := range placeholder.PathInputs(r) {
					if props != nil && props[in] == nil {
						errs = append(errs, defErr(field, "${%s} names [inputs.%s], which is not a declared input", r, in))
					}
				}
			case strings.HasPrefix(r, "inputs."):
				in := strings.TrimPrefix(r, "inputs.")
				if props != nil && props[in] == nil {
					errs = append(errs, defErr(field, "${%s} is not a declared input", r))
				} else if !allowOutputs && props != nil && !slices.Contains(required, in) {
					errs = append(errs, defErr(field, "${%s} must be a required input", r))
				}
			default:
				errs = append(errs, defErr(field, "unknown placeholder ${%s}; use tenant, environment, service, stack, inputs.<name> or outputs.<name>", r))
			}
		}
	}
	check("output.identifier", o.Identifier, false)
	check("output.title", o.Title, true)
	for _, k := range slices.Sorted(maps.Keys(o.Properties)) {
		check("output.properties."+k, o.Properties[k], true)
	}
	for _, k := range slices.Sorted(maps.Keys(o.Relations)) {
		check("output.relations."+k, o.Relations[k], false)
	}
	return errs
}
