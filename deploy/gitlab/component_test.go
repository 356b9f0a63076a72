// Package gitlab holds the provisioning pipeline's CI/CD component; this
// test keeps the component, its README and its contract with paved in step.
package gitlab

import (
	"bytes"
	"errors"
	"io"
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
	Tags          any               `yaml:"tags"`
	IDTokens      map[string]any    `yaml:"id_tokens"`
	ResourceGroup string            `yaml:"resource_group"`
	Rules         []map[string]any  `yaml:"rules"`
	Script        []string          `yaml:"script"`
	BeforeScript  []string          `yaml:"before_script"`
	Variables     map[string]string `yaml:"variables"`
	Needs         []any             `yaml:"needs"`
}

// globalKeywords are the top-level keys that configure the pipeline rather
// than define a job.
var globalKeywords = map[string]bool{"default": true, "include": true, "stages": true, "variables": true, "workflow": true}

type workflow struct {
	Name  string           `yaml:"name"`
	Rules []map[string]any `yaml:"rules"`
}

// workflowOf decodes the component's workflow: keyword.
func workflowOf(t *testing.T) workflow {
	t.Helper()
	docs := documents(t)
	var top struct {
		Workflow *workflow `yaml:"workflow"`
	}
	if err := docs[1].Decode(&top); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	if top.Workflow == nil {
		t.Fatal("the component has no workflow: keyword")
	}
	return *top.Workflow
}

func documents(t *testing.T) []yaml.Node {
	t.Helper()
	b, err := os.ReadFile("templates/provision.yml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("parse: %v", err)
		}
		docs = append(docs, n)
	}
	if len(docs) != 2 {
		t.Fatalf("want a spec document and a jobs document, got %d documents", len(docs))
	}
	return docs
}

func load(t *testing.T) (spec map[string]map[string]any, jobs map[string]job, raw string) {
	t.Helper()
	b, err := os.ReadFile("templates/provision.yml")
	if err != nil {
		t.Fatal(err)
	}
	docs := documents(t)
	var head struct {
		Spec struct {
			Inputs map[string]map[string]any `yaml:"inputs"`
		} `yaml:"spec"`
	}
	if err := docs[0].Decode(&head); err != nil {
		t.Fatal(err)
	}
	var all map[string]yaml.Node
	if err := docs[1].Decode(&all); err != nil {
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
	return head.Spec.Inputs, jobs, string(b)
}

// TestReadmeDocumentsEveryInput: every input in the README's table exists
// in spec.inputs and is used as $[[ inputs.NAME ]], and vice versa.
func TestReadmeDocumentsEveryInput(t *testing.T) {
	inputs, _, raw := load(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		documented = append(documented, m[1])
	}
	if len(documented) == 0 {
		t.Fatal("README documents no inputs")
	}
	for _, name := range documented {
		if _, ok := inputs[name]; !ok {
			t.Errorf("README documents %s, spec.inputs lacks it", name)
		}
		if !strings.Contains(raw, "$[[ inputs."+name+" ]]") {
			t.Errorf("input %s is never used as $[[ inputs.%s ]]", name, name)
		}
	}
	for name, in := range inputs {
		if !slices.Contains(documented, name) {
			t.Errorf("input %s is not in the README", name)
		}
		if in["description"] == nil {
			t.Errorf("input %s has no description", name)
		}
	}
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
	for _, name := range []string{"check", "preview", "up", "preview-destroy", "destroy"} {
		if jobs[name].Extends != ".paved-stack" {
			t.Errorf("%s does not extend .paved-stack", name)
		}
	}
	for name, j := range jobs {
		if name != ".paved-stack" && j.Tags == nil && j.Extends == nil {
			t.Errorf("job %s has no runner tags", name)
		}
	}
	if r := rulesText(jobs["approve"]); !strings.Contains(r, "$PAVED_ENVIRONMENT == $PAVED_PROD_ENV") || !strings.Contains(r, "when: manual") || !strings.Contains(r, "allow_failure: false") {
		t.Errorf("approve is not a blocking manual gate in production: %s", r)
	}
	if !needs(jobs["up"], "preview") || !needs(jobs["up"], "approve") || !needs(jobs["destroy"], "approve") {
		t.Error("up/destroy must wait for preview and the approval")
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
	if len(w.Rules) != 0 {
		t.Errorf("the component sets workflow:rules %v; they would replace the including project's", w.Rules)
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
}
