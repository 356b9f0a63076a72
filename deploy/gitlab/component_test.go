// Package gitlab holds the provisioning pipeline's CI/CD component project;
// these tests keep the component, its README, the component project's own
// pipeline, the runner image and the component's contract with paved in
// step, reading the files the way GitLab reads them.
package gitlab

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	paved "github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
)

type job struct {
	Extends       any               `yaml:"extends"`
	Stage         string            `yaml:"stage"`
	Image         string            `yaml:"image"`
	Tags          any               `yaml:"tags"`
	Interruptible *bool             `yaml:"interruptible"`
	IDTokens      map[string]any    `yaml:"id_tokens"`
	ResourceGroup string            `yaml:"resource_group"`
	Rules         []map[string]any  `yaml:"rules"`
	Script        []string          `yaml:"script"`
	BeforeScript  []string          `yaml:"before_script"`
	Variables     map[string]string `yaml:"variables"`
	Needs         []any             `yaml:"needs"`
}

// globalKeywords are the top-level keys that configure the pipeline rather
// than define a job (image, services, cache, before_script and after_script
// are the deprecated global forms of default:).
var globalKeywords = map[string]bool{
	"default": true, "include": true, "stages": true, "variables": true, "workflow": true,
	"image": true, "services": true, "cache": true, "before_script": true, "after_script": true,
}

type workflow struct {
	Name       string           `yaml:"name"`
	Rules      []map[string]any `yaml:"rules"`
	AutoCancel map[string]any   `yaml:"auto_cancel"`
}

// workflowOf decodes the component's workflow: keyword.
func workflowOf(t *testing.T) workflow {
	t.Helper()
	c := loadComponent(t, "provision")
	var top struct {
		Workflow *workflow `yaml:"workflow"`
	}
	if err := c.Config.Decode(&top); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	if top.Workflow == nil {
		t.Fatal("the component has no workflow: keyword")
	}
	return *top.Workflow
}

// load decodes the component's jobs (hidden ones too) as written, before
// interpolation.
func load(t *testing.T) (spec map[string]inputSpec, jobs map[string]job, raw string) {
	t.Helper()
	c := loadComponent(t, "provision")
	var all map[string]yaml.Node
	if err := c.Config.Decode(&all); err != nil {
		t.Fatal(err)
	}
	jobs = map[string]job{}
	for name, n := range all {
		if n.Kind != yaml.MappingNode || globalKeywords[name] {
			continue
		}
		var j job
		if err := n.Decode(&j); err != nil {
			t.Fatalf("job %s: %v", name, err)
		}
		jobs[name] = j
	}
	return c.Inputs, jobs, c.Raw
}

// readmeInputs are the rows of the README's inputs table: name, type,
// default and whether it is marked required.
type readmeInput struct {
	Type, Default string
	Required      bool
}

var readmeInputRow = regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([a-z]+) \\| ([^|]+) \\|")

func readmeInputs(t *testing.T) map[string]readmeInput {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]readmeInput{}
	for _, m := range readmeInputRow.FindAllStringSubmatch(string(readme), -1) {
		def := strings.TrimSpace(m[3])
		rows[m[1]] = readmeInput{Type: m[2], Default: def, Required: def == "(required)"}
	}
	if len(rows) == 0 {
		t.Fatal("README documents no inputs")
	}
	return rows
}

// TestReadmeDocumentsEveryInput: every input in the README's table exists
// in spec.inputs with the same type and default (or is required there too),
// and vice versa.
func TestReadmeDocumentsEveryInput(t *testing.T) {
	inputs, _, _ := load(t)
	rows := readmeInputs(t)
	for name, row := range rows {
		in, ok := inputs[name]
		if !ok {
			t.Errorf("README documents %s, spec.inputs lacks it", name)
			continue
		}
		if row.Type != in.kind() {
			t.Errorf("README gives %s the type %s, the spec %s", name, row.Type, in.kind())
		}
		if row.Required != !in.HasDefault {
			t.Errorf("README marks %s required=%v, the spec has a default: %v", name, row.Required, in.HasDefault)
		}
		if in.HasDefault {
			want := "`" + yamlFlow(t, in.Default) + "`"
			if row.Default != want {
				t.Errorf("README gives %s the default %s, the spec %s", name, row.Default, want)
			}
		}
	}
	for name, in := range inputs {
		if _, ok := rows[name]; !ok {
			t.Errorf("input %s is not in the README", name)
		}
		if in.Description == "" {
			t.Errorf("input %s has no description", name)
		}
	}
}

// yamlFlow renders a default the way the README writes it: scalars plain,
// arrays in flow style.
func yamlFlow(t *testing.T, v any) string {
	t.Helper()
	if list, ok := v.([]any); ok {
		var parts []string
		for _, e := range list {
			parts = append(parts, yamlFlow(t, e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func rulesText(j job) string {
	b, _ := yaml.Marshal(j.Rules)
	return string(b)
}

func needs(j job, name string) bool {
	for _, n := range j.Needs {
		if n == name {
			return true
		}
		if m, ok := n.(map[string]any); ok && m["job"] == name {
			return true
		}
	}
	return false
}

func TestJobs(t *testing.T) {
	_, jobs, _ := load(t)
	base := jobs[".paved-stack"]
	if base.Tags == nil || base.IDTokens["PAVED_AWS_ID_TOKEN"] == nil || !strings.Contains(base.ResourceGroup, "$PAVED_TENANT-$PAVED_ENVIRONMENT-$PAVED_SERVICE") {
		t.Fatalf(".paved-stack lacks tags, id_tokens or the per-stack resource_group: %+v", base)
	}
	if base.Interruptible == nil || *base.Interruptible {
		t.Error(".paved-stack must be interruptible: false: a canceled pulumi up leaves the stack locked")
	}
	for _, name := range []string{"check", "preview", "up", "preview-destroy", "destroy"} {
		if jobs[name].Extends != ".paved-stack" {
			t.Errorf("%s does not extend .paved-stack", name)
		}
	}
	for name, j := range jobs {
		if j.Extends != nil {
			continue
		}
		if j.Tags == nil {
			t.Errorf("job %s has no runner tags", name)
		}
		if j.Stage != "$[[ inputs.stage ]]" {
			t.Errorf("job %s: stage %q, want the stage input", name, j.Stage)
		}
		if j.Image != "$[[ inputs.runner_image ]]" {
			t.Errorf("job %s: image %q, want the runner_image input", name, j.Image)
		}
	}
	if r := rulesText(jobs["approve"]); !strings.Contains(r, `$PAVED_ENVIRONMENT == "$[[ inputs.production_environment ]]"`) || !strings.Contains(r, "when: manual") || !strings.Contains(r, "allow_failure: false") {
		t.Errorf("approve is not a blocking manual gate in production: %s", r)
	}
	if !needs(jobs["approve"], "preview") || !needs(jobs["approve"], "preview-destroy") {
		t.Error("approve must wait for the preview a person approves")
	}
	if !needs(jobs["up"], "preview") || !needs(jobs["up"], "approve") || !needs(jobs["destroy"], "approve") || !needs(jobs["destroy"], "preview-destroy") {
		t.Error("up/destroy must wait for their preview and the approval")
	}
	if r := rulesText(jobs["destroy"]); !strings.Contains(r, `$PAVED_OPERATION == "DELETE"`) ||
		!strings.Contains(strings.Join(jobs["destroy"].Script, "\n"), "pulumi destroy") {
		t.Error("destroy must run pulumi destroy for DELETE operations")
	}
	if r := rulesText(jobs["up"]); !strings.Contains(r, `$PAVED_OPERATION != "DELETE"`) {
		t.Error("up must not run for DELETE operations")
	}
	if s := strings.Join(jobs["report"].Script, "\n"); !strings.Contains(s, "paved report") || !strings.Contains(rulesText(jobs["report"]), "always") {
		t.Error("report must always run paved report")
	}
	if !strings.Contains(strings.Join(jobs["up"].Script, "\n"), "pulumi stack output --json") {
		t.Error("up must save the stack outputs for the report")
	}
}

// TestNoInterpolationIntoScripts: scripts read PAVED_* and inputs only as
// quoted environment variables.
func TestNoInterpolationIntoScripts(t *testing.T) {
	_, jobs, _ := load(t)
	for name, j := range jobs {
		for _, line := range append(append([]string{}, j.BeforeScript...), j.Script...) {
			if strings.Contains(line, "$[[") {
				t.Errorf("%s: input interpolated into script: %s", name, line)
			}
			for _, m := range regexp.MustCompile(`\$\{?PAVED_[A-Z_]+\}?`).FindAllStringIndex(line, -1) {
				if !inDoubleQuotes(line, m[0]) {
					t.Errorf("%s: unquoted %s in %q", name, line[m[0]:m[1]], line)
				}
			}
		}
	}
}

func inDoubleQuotes(s string, i int) bool {
	return strings.Count(s[:i], `"`)%2 == 1
}

// TestWorkflowNamesPipelinesAfterTheirRun: the component names each
// pipeline so that paved can find a run's pipeline by name. The name must
// be exactly what paved's client asks GitLab for, once GitLab has expanded
// it, and what the simulator names pipelines by default.
func TestWorkflowNamesPipelinesAfterTheirRun(t *testing.T) {
	w := workflowOf(t)
	if w.Name != "paved $PAVED_RUN_ID" {
		t.Fatalf("workflow:name = %q, want %q", w.Name, "paved $PAVED_RUN_ID")
	}
	if w.Name != gitlabsim.DefaultWorkflowName {
		t.Errorf("the simulator's default workflow:name %q differs from the component's %q", gitlabsim.DefaultWorkflowName, w.Name)
	}
	for _, id := range []string{"r_1", "01JBX3V6Q2M9ZK7R4T8W5YH0CD"} {
		got := gitlabsim.ExpandName(w.Name, map[string]string{paved.RunIDVariable: id, "PAVED_ACTION": "add-s3-bucket"})
		if want := paved.PipelineName(id); got != want {
			t.Errorf("run %s: GitLab names the pipeline %q, paved looks for %q", id, got, want)
		}
	}
	if !strings.Contains(rulesTextOf(w.Rules), "$"+paved.RunIDVariable) {
		t.Errorf("workflow:rules %v do not require paved's run id variable %s", w.Rules, paved.RunIDVariable)
	}
	if w.AutoCancel["on_new_commit"] != "none" {
		t.Errorf("workflow:auto_cancel = %v: a newer commit on the shared ref would cancel other runs' pipelines", w.AutoCancel)
	}
}

func rulesTextOf(rules []map[string]any) string {
	b, _ := yaml.Marshal(rules)
	return string(b)
}

// TestNoGlobalKeywords: GitLab merges an included file's globals into the
// whole pipeline, so the component has none but workflow (which only
// decides whether paved's pipeline is created and names it).
func TestNoGlobalKeywords(t *testing.T) {
	c := loadComponent(t, "provision")
	var top map[string]yaml.Node
	if err := c.Config.Decode(&top); err != nil {
		t.Fatal(err)
	}
	for _, key := range sortedKeys(top) {
		if globalKeywords[key] && key != "workflow" {
			t.Errorf("the component sets the global keyword %s:, which would leak into the including pipeline", key)
		}
	}
	if _, ok := top["workflow"]; !ok {
		t.Error("the component has no workflow:")
	}
	var w map[string]any
	n := top["workflow"]
	if err := n.Decode(&w); err != nil {
		t.Fatal(err)
	}
	for key := range w {
		if !slices.Contains([]string{"name", "rules", "auto_cancel"}, key) {
			t.Errorf("workflow:%s is not one the README explains", key)
		}
	}
}
