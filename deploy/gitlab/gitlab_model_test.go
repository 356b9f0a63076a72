package gitlab

// A small model of how GitLab builds a pipeline from a .gitlab-ci.yml that
// includes this project's component, enough to test the component as GitLab
// sees it (https://docs.gitlab.com/ci/components/, ci/yaml/inputs and
// ci/yaml/includes):
//
//   - include:component resolves <fqdn>/<project path>/<name>@<version> to
//     templates/<name>.yml of the component project;
//   - spec:inputs are checked (required unless they have a default; type
//     string, array, number or boolean; regex in RE2, for strings only;
//     options) and unknown inputs are refused;
//   - $[[ inputs.x ]] is interpolated into the configuration before it is
//     merged: a value that is one whole interpolation block takes the input's
//     type, anything else becomes a string;
//   - included configuration is deep-merged into the including file's, which
//     wins: hashes merge at any depth, anything else (rules, scripts, needs)
//     is replaced whole;
//   - extends merges a job over its parent the same way;
//   - workflow:rules and job rules: the first rule whose if matches decides;
//     when: never, or no match, leaves the pipeline or job out.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// defaultStages are GitLab's stages when a configuration declares none.
var defaultStages = []string{".pre", "build", "test", "deploy", ".post"}

// componentPath is the component address form GitLab documents,
// <fqdn>/<project path>/<component name>@<version>.
var componentPath = regexp.MustCompile(`^\$CI_SERVER_FQDN/(.+)/([a-z0-9_-]+)@(\S+)$`)

var interpolation = regexp.MustCompile(`\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]`)

// inputSpec is one entry of spec:inputs.
type inputSpec struct {
	Type        string
	Default     any
	HasDefault  bool
	Description string
	Regex       string
	Options     []any
}

func (in inputSpec) kind() string {
	if in.Type == "" {
		return "string"
	}
	return in.Type
}

// component is a parsed component file: its spec and its configuration
// document, not yet interpolated.
type component struct {
	Inputs map[string]inputSpec
	Config yaml.Node
	Raw    string
}

func loadComponent(t *testing.T, name string) component {
	t.Helper()
	path := "templates/" + name + ".yml"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("component %s: %v", name, err)
	}
	docs, err := yamlDocuments(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(docs) != 2 {
		t.Fatalf("%s: want a spec header and a configuration separated by ---, got %d documents", path, len(docs))
	}
	var head struct {
		Spec struct {
			Inputs map[string]map[string]any `yaml:"inputs"`
		} `yaml:"spec"`
	}
	if err := docs[0].Decode(&head); err != nil {
		t.Fatalf("%s: spec: %v", path, err)
	}
	c := component{Inputs: map[string]inputSpec{}, Config: docs[1], Raw: string(b)}
	for name, m := range head.Spec.Inputs {
		var in inputSpec
		for k, v := range m {
			switch k {
			case "type":
				in.Type, _ = v.(string)
			case "default":
				in.Default, in.HasDefault = v, true
			case "description":
				in.Description, _ = v.(string)
			case "regex":
				in.Regex, _ = v.(string)
			case "options":
				in.Options, _ = v.([]any)
			default:
				t.Errorf("%s: input %s: unknown keyword %s", path, name, k)
			}
		}
		c.Inputs[name] = in
	}
	return c
}

func yamlDocuments(b []byte) ([]yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			return docs, nil
		} else if err != nil {
			return nil, err
		}
		docs = append(docs, n)
	}
}

// resolveInputs checks the inputs an include passes against the spec, as
// GitLab does when it creates the pipeline, and fills in defaults.
func resolveInputs(spec map[string]inputSpec, given map[string]any) (map[string]any, error) {
	var problems []string
	for name := range given {
		if _, ok := spec[name]; !ok {
			problems = append(problems, "unknown input "+name)
		}
	}
	values := map[string]any{}
	for name, in := range spec {
		v, ok := given[name]
		if !ok {
			if !in.HasDefault {
				problems = append(problems, "required input "+name+" not given")
				continue
			}
			v = in.Default
		}
		if err := checkInput(name, in, v); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		values[name] = v
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return values, nil
}

func checkInput(name string, in inputSpec, v any) error {
	switch in.kind() {
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("input %s: %v is not a string", name, v)
		}
	case "array":
		if _, ok := v.([]any); !ok {
			return fmt.Errorf("input %s: %v is not an array", name, v)
		}
	case "number":
		switch v.(type) {
		case int, float64:
		default:
			return fmt.Errorf("input %s: %v is not a number", name, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("input %s: %v is not a boolean", name, v)
		}
	default:
		return fmt.Errorf("input %s: unknown type %q", name, in.Type)
	}
	if in.Regex != "" {
		if in.kind() != "string" {
			return fmt.Errorf("input %s: regex is only for string inputs", name)
		}
		re, err := regexp.Compile(in.Regex)
		if err != nil {
			return fmt.Errorf("input %s: regex %q: %v", name, in.Regex, err)
		}
		if !re.MatchString(v.(string)) {
			return fmt.Errorf("input %s: %q does not match %s", name, v, in.Regex)
		}
	}
	if len(in.Options) > 0 && !slices.Contains(in.Options, v) {
		return fmt.Errorf("input %s: %v is not one of %v", name, v, in.Options)
	}
	return nil
}

// interpolate replaces every $[[ inputs.x ]] in n (keys and values).
func interpolate(n *yaml.Node, values map[string]any) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode, yaml.MappingNode:
		for _, c := range n.Content {
			if err := interpolate(c, values); err != nil {
				return err
			}
		}
		return nil
	case yaml.ScalarNode:
	default:
		return nil
	}
	ms := interpolation.FindAllStringSubmatchIndex(n.Value, -1)
	if len(ms) == 0 {
		return nil
	}
	for _, m := range ms {
		if _, ok := values[n.Value[m[2]:m[3]]]; !ok {
			return fmt.Errorf("line %d: unknown interpolation key %s", n.Line, n.Value[m[2]:m[3]])
		}
	}
	if len(ms) == 1 && ms[0][0] == 0 && ms[0][1] == len(n.Value) {
		var typed yaml.Node
		if err := typed.Encode(values[n.Value[ms[0][2]:ms[0][3]]]); err != nil {
			return err
		}
		*n = typed
		return nil
	}
	var err error
	n.Value = interpolation.ReplaceAllStringFunc(n.Value, func(block string) string {
		v := values[interpolation.FindStringSubmatch(block)[1]]
		if _, ok := v.([]any); ok {
			err = fmt.Errorf("line %d: array input inside a string", n.Line)
		}
		return fmt.Sprint(v)
	})
	n.Tag, n.Style = "!!str", 0
	return err
}

// deepMerge merges b over a the way GitLab merges configuration.
func deepMerge(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, bv := range b {
		if am, ok := out[k].(map[string]any); ok {
			if bm, ok := bv.(map[string]any); ok {
				out[k] = deepMerge(am, bm)
				continue
			}
		}
		out[k] = bv
	}
	return out
}

// includeComponents builds the configuration GitLab sees for a
// .gitlab-ci.yml: its include:component entries (which must name this
// project's components) resolved and merged under the file itself.
// projectPaths are the component project paths the entries may use.
func includeComponents(t *testing.T, consumer []byte, projectPaths ...string) (map[string]any, error) {
	t.Helper()
	var main map[string]any
	if err := yaml.Unmarshal(consumer, &main); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	includes, _ := main["include"].([]any)
	if len(includes) == 0 {
		return nil, errors.New("no include: list")
	}
	merged := map[string]any{}
	for _, inc := range includes {
		m, ok := inc.(map[string]any)
		if !ok || m["component"] == nil {
			return nil, fmt.Errorf("include %v is not a component", inc)
		}
		addr, _ := m["component"].(string)
		parts := componentPath.FindStringSubmatch(addr)
		if parts == nil {
			return nil, fmt.Errorf("component %q is not $CI_SERVER_FQDN/<project path>/<name>@<version>", addr)
		}
		if !slices.Contains(projectPaths, parts[1]) {
			return nil, fmt.Errorf("component %q is not from %v", addr, projectPaths)
		}
		c := loadComponent(t, parts[2])
		given, _ := m["inputs"].(map[string]any)
		values, err := resolveInputs(c.Inputs, given)
		if err != nil {
			return nil, fmt.Errorf("component %s: %w", addr, err)
		}
		if err := interpolate(&c.Config, values); err != nil {
			return nil, fmt.Errorf("component %s: %w", addr, err)
		}
		var cfg map[string]any
		if err := c.Config.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("component %s: %w", addr, err)
		}
		merged = deepMerge(merged, cfg)
	}
	delete(main, "include")
	return deepMerge(merged, main), nil
}

// needRef is one entry of a job's needs.
type needRef struct {
	Job      string
	Optional bool
}

type pipelineJob struct {
	When         string
	AllowFailure bool
	Stage        string
	Needs        []needRef
	Def          map[string]any // the job after extends
}

// isJob tells a job from a global keyword or a hidden job.
func isJob(name string) bool {
	return !globalKeywords[name] && !strings.HasPrefix(name, ".")
}

// resolveExtends merges a job over the jobs it extends.
func resolveExtends(cfg map[string]any, name string, depth int) (map[string]any, error) {
	def, ok := cfg[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is not defined", name)
	}
	if depth > 11 {
		return nil, fmt.Errorf("%s: extends nests too deep", name)
	}
	var parents []string
	switch e := def["extends"].(type) {
	case nil:
	case string:
		parents = []string{e}
	case []any:
		for _, p := range e {
			s, _ := p.(string)
			parents = append(parents, s)
		}
	default:
		return nil, fmt.Errorf("%s: extends %v", name, e)
	}
	base := map[string]any{}
	for _, p := range parents {
		pd, err := resolveExtends(cfg, p, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		base = deepMerge(base, pd)
	}
	own := deepMerge(map[string]any{}, def)
	delete(own, "extends")
	return deepMerge(base, own), nil
}

// buildPipeline is the pipeline GitLab creates from cfg for the given
// variables: whether it is created, and its jobs.
func buildPipeline(t *testing.T, cfg map[string]any, vars map[string]string) (bool, map[string]pipelineJob) {
	t.Helper()
	if wf, ok := cfg["workflow"].(map[string]any); ok {
		if rules, ok := wf["rules"].([]any); ok {
			if when, _, matched := evalRules(t, rules, vars); !matched || when == "never" {
				return false, nil
			}
		}
	}
	jobs := map[string]pipelineJob{}
	for name := range cfg {
		if !isJob(name) {
			continue
		}
		def, err := resolveExtends(cfg, name, 0)
		if err != nil {
			t.Fatalf("extends: %v", err)
		}
		when, allowFailure := "on_success", false
		if af, ok := def["allow_failure"].(bool); ok {
			allowFailure = af
		}
		if rules, ok := def["rules"].([]any); ok {
			w, af, matched := evalRules(t, rules, vars)
			if !matched || w == "never" {
				continue
			}
			when = w
			if af != nil {
				allowFailure = *af
			}
		}
		stage, _ := def["stage"].(string)
		if stage == "" {
			stage = "test"
		}
		j := pipelineJob{When: when, AllowFailure: allowFailure, Stage: stage, Def: def}
		needs, _ := def["needs"].([]any)
		for _, n := range needs {
			switch n := n.(type) {
			case string:
				j.Needs = append(j.Needs, needRef{Job: n})
			case map[string]any:
				job, _ := n["job"].(string)
				opt, _ := n["optional"].(bool)
				j.Needs = append(j.Needs, needRef{Job: job, Optional: opt})
			default:
				t.Fatalf("%s: needs entry %v", name, n)
			}
		}
		jobs[name] = j
	}
	return true, jobs
}

// evalRules evaluates rules the way GitLab does: the first rule whose if
// matches (a rule without if always matches) gives when (default
// on_success) and allow_failure.
func evalRules(t *testing.T, rules []any, vars map[string]string) (when string, allowFailure *bool, matched bool) {
	t.Helper()
	for _, r := range rules {
		rule, ok := r.(map[string]any)
		if !ok {
			t.Fatalf("rule %v is not a hash", r)
		}
		for k := range rule {
			if !slices.Contains([]string{"if", "when", "allow_failure"}, k) {
				t.Fatalf("rule %v: the model does not know %s", rule, k)
			}
		}
		if cond, ok := rule["if"].(string); ok && !evalIf(t, cond, vars) {
			continue
		}
		when = "on_success"
		if w, ok := rule["when"].(string); ok {
			when = w
		}
		if af, ok := rule["allow_failure"].(bool); ok {
			allowFailure = &af
		}
		return when, allowFailure, true
	}
	return "", nil, false
}

var (
	atomDefined = regexp.MustCompile(`^\$(\w+)$`)
	atomString  = regexp.MustCompile(`^\$(\w+)\s*(==|!=)\s*"([^"]*)"$`)
	atomVar     = regexp.MustCompile(`^\$(\w+)\s*(==|!=)\s*\$(\w+)$`)
	atomRegex   = regexp.MustCompile(`^\$(\w+)\s*(=~|!~)\s*/(.*)/$`)
	// regexLiteral is the /pattern/ operand of =~ and !~.
	regexLiteral = regexp.MustCompile(`[=!]~\s*/(?:[^/\\]|\\.)*/`)
)

// evalIf evaluates a rules:if expression: && binds tighter than ||; atoms
// are $VAR (defined and not empty), $VAR ==/!= "string" or $OTHER, and
// $VAR =~/!~ /regex/. Anything else fails the test rather than guess.
func evalIf(t *testing.T, expr string, vars map[string]string) bool {
	t.Helper()
	if strings.ContainsAny(regexLiteral.ReplaceAllString(expr, ""), "()") {
		t.Fatalf("rules:if %q: the model does not evaluate parentheses", expr)
	}
	for _, or := range strings.Split(expr, "||") {
		all := true
		for _, atom := range strings.Split(or, "&&") {
			if !evalAtom(t, strings.TrimSpace(atom), vars) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func evalAtom(t *testing.T, atom string, vars map[string]string) bool {
	t.Helper()
	if m := atomDefined.FindStringSubmatch(atom); m != nil {
		return vars[m[1]] != ""
	}
	if m := atomString.FindStringSubmatch(atom); m != nil {
		return (vars[m[1]] == m[3]) == (m[2] == "==")
	}
	if m := atomVar.FindStringSubmatch(atom); m != nil {
		return (vars[m[1]] == vars[m[3]]) == (m[2] == "==")
	}
	if m := atomRegex.FindStringSubmatch(atom); m != nil {
		re, err := regexp.Compile(m[3])
		if err != nil {
			t.Fatalf("rules:if %q: %v", atom, err)
		}
		_, defined := vars[m[1]]
		return defined && re.MatchString(vars[m[1]]) == (m[2] == "=~")
	}
	t.Fatalf("rules:if: the model does not evaluate %q", atom)
	return false
}

// stagesOf is the configuration's stages, or GitLab's defaults.
func stagesOf(cfg map[string]any) []string {
	list, ok := cfg["stages"].([]any)
	if !ok {
		return defaultStages
	}
	var out []string
	for _, s := range list {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

// checkPipeline reports what GitLab would refuse in a built pipeline: a job
// in an undeclared stage, a need of a job that is not in the pipeline
// (unless optional) or that is not defined at all, or a need of a job in a
// later stage.
func checkPipeline(cfg map[string]any, jobs map[string]pipelineJob) []string {
	stages := stagesOf(cfg)
	var problems []string
	for name, j := range jobs {
		si := slices.Index(stages, j.Stage)
		if si < 0 {
			problems = append(problems, fmt.Sprintf("%s: stage %q is not one of %v", name, j.Stage, stages))
		}
		for _, n := range j.Needs {
			if _, defined := cfg[n.Job]; !defined || !isJob(n.Job) {
				problems = append(problems, fmt.Sprintf("%s needs %s, which is not a job", name, n.Job))
				continue
			}
			dep, ok := jobs[n.Job]
			if !ok {
				if !n.Optional {
					problems = append(problems, fmt.Sprintf("%s needs %s, which is not in the pipeline", name, n.Job))
				}
				continue
			}
			if slices.Index(stages, dep.Stage) > si {
				problems = append(problems, fmt.Sprintf("%s needs %s of a later stage", name, n.Job))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
