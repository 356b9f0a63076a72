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

	"github.com/paved-idp/paved/internal/callback"
	paved "github.com/paved-idp/paved/internal/gitlab"
	"github.com/paved-idp/paved/internal/gitlab/naming"
	"github.com/paved-idp/paved/internal/run"
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
	for _, name := range []string{"check", "preview", "up", "preview-destroy", "destroy", "drift"} {
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
	if _, ok := jobs["approve"]; ok {
		t.Error("the component has an approve job: paved approves the preview (bound to its digest); a manual job would hold the apply pipeline forever")
	}
	for name, j := range jobs {
		if needs(j, "approve") {
			t.Errorf("%s needs approve, which is gone", name)
		}
		if strings.Contains(rulesText(j), "manual") {
			t.Errorf("%s is a manual job: paved is the gate, the pipeline must run through", name)
		}
	}
	if !needs(jobs["preview"], "check") {
		t.Error("preview must wait for check")
	}
	if r := rulesText(jobs["destroy"]); !strings.Contains(r, `$PAVED_OPERATION == "DELETE"`) ||
		!strings.Contains(strings.Join(jobs["destroy"].Script, "\n"), "pulumi destroy") {
		t.Error("destroy must run pulumi destroy for DELETE operations")
	}
	// A rule that excludes operations (!=) lets every new one in: DRIFT
	// would have run check, preview and up.
	for name, j := range jobs {
		if r := rulesText(j); strings.Contains(r, "$PAVED_OPERATION !=") || strings.Contains(r, "$PAVED_OPERATION =~") || strings.Contains(r, "$PAVED_OPERATION !~") {
			t.Errorf("%s: its rules must name the operations it runs for ($PAVED_OPERATION == \"...\"), not exclude others:\n%s", name, r)
		}
	}
	if s := strings.Join(jobs["report"].Script, "\n"); !strings.Contains(s, "paved report") || !strings.Contains(rulesText(jobs["report"]), "always") {
		t.Error("report must always run paved report")
	}
	if !strings.Contains(strings.Join(jobs["up"].Script, "\n"), "pulumi stack output --json") {
		t.Error("up must save the stack outputs for the report")
	}
}

// previewPaths are the files the preview job writes and the apply job
// reads, as the scripts name them.
const (
	previewFile = `"$CI_PROJECT_DIR/paved-out/preview.json"`
	verdictFile = `"$CI_PROJECT_DIR/paved-out/verdict"`
)

// TestPreviewJobsPostThePreview: each preview job saves `pulumi preview
// --json` and hands it to `paved preview`, which writes paved's verdict for
// the apply job; the flags are the ones `paved preview` has.
func TestPreviewJobsPostThePreview(t *testing.T) {
	_, jobs, _ := load(t)
	flags := callback.NewPreviewCommand().Flags()
	for _, f := range []string{"file", "verdict-file", "destroy"} {
		if flags.Lookup(f) == nil {
			t.Errorf("paved preview has no --%s flag", f)
		}
	}
	for _, tc := range []struct {
		job, pulumi, paved string
	}{
		{"preview", "pulumi preview --json --non-interactive", "paved preview --file " + previewFile + " --verdict-file " + verdictFile},
		{"preview-destroy", "pulumi preview --destroy --json --non-interactive", "paved preview --destroy --file " + previewFile + " --verdict-file " + verdictFile},
	} {
		script := jobs[tc.job].Script
		if len(script) == 0 || script[0] != "set -o pipefail" {
			t.Errorf("%s: the script must start with set -o pipefail, so that a failed preview fails the job", tc.job)
		}
		ip := slices.IndexFunc(script, func(l string) bool { return strings.Contains(l, tc.pulumi) })
		ic := slices.IndexFunc(script, func(l string) bool { return strings.Contains(l, tc.paved) })
		if ip < 0 || !strings.Contains(script[ip], "> "+previewFile) {
			t.Errorf("%s does not run %s > %s", tc.job, tc.pulumi, previewFile)
		}
		if ic < 0 || ic < ip {
			t.Errorf("%s does not run %s after the preview", tc.job, tc.paved)
			continue
		}
		if !strings.Contains(script[ic], `| tee -a "$CI_PROJECT_DIR/paved-logs/preview.log"`) {
			t.Errorf("%s: paved's verdict is not kept in paved-logs/preview.log for the report: %s", tc.job, script[ic])
		}
		if tc.job == "preview" && strings.Contains(strings.Join(script, "\n"), "--destroy") {
			t.Error("preview previews a destruction")
		}
	}
}

// driftFile is where the drift job saves `pulumi refresh --preview-only
// --json`, as its script names it.
const driftFile = `"$CI_PROJECT_DIR/paved-out/drift.json"`

// TestDriftJobAppliesNothing: a drift check's pipeline runs the drift job
// alone (with report): it selects the stack like the other stack jobs,
// refreshes it in preview only, posts that with `paved preview` (the flags
// it has) and fails unless paved answers drift_checked; nothing in it can
// change the stack or its state.
func TestDriftJobAppliesNothing(t *testing.T) {
	_, jobs, _ := load(t)
	j, ok := jobs["drift"]
	if !ok {
		t.Fatal("the component has no drift job")
	}
	if j.Extends != ".paved-stack" {
		t.Errorf("drift extends %v, want .paved-stack (the stack, its resource group, OIDC)", j.Extends)
	}
	if j.Needs == nil || len(j.Needs) != 0 {
		t.Errorf("drift needs %v, want needs: [] (the only stack job of its pipeline)", j.Needs)
	}
	if len(j.Rules) != 1 || j.Rules[0]["if"] != `$PAVED_OPERATION == "DRIFT"` || j.Rules[0]["when"] != nil {
		t.Errorf("drift: rules %s, want only if: $PAVED_OPERATION == \"DRIFT\"", rulesText(j))
	}
	if j.Variables["PAVED_POSTS_PREVIEW"] != "true" {
		t.Errorf("drift: PAVED_POSTS_PREVIEW = %q: paved preview needs the run token", j.Variables["PAVED_POSTS_PREVIEW"])
	}
	script := j.Script
	if len(script) == 0 || script[0] != "set -o pipefail" {
		t.Error("drift: the script must start with set -o pipefail, so that a failed refresh fails the job")
	}
	const refresh = "pulumi refresh --preview-only --json --non-interactive"
	post := "paved preview --file " + driftFile + " --verdict-file " + verdictFile
	ir := slices.IndexFunc(script, func(l string) bool { return strings.Contains(l, refresh) })
	ip := slices.IndexFunc(script, func(l string) bool { return strings.Contains(l, post) })
	iv := slices.IndexFunc(script, func(l string) bool { return strings.Contains(l, "case ") && strings.Contains(l, verdictFile) })
	if ir < 0 || !strings.Contains(script[ir], "2>&1 > "+driftFile+` | tee "$CI_PROJECT_DIR/paved-logs/drift.log"`) {
		t.Errorf("drift does not run %s > %s, its messages to paved-logs/drift.log", refresh, driftFile)
	}
	if ip < 0 || ip < ir || !strings.Contains(script[ip], `| tee -a "$CI_PROJECT_DIR/paved-logs/drift.log"`) {
		t.Errorf("drift does not run %s after the refresh, its verdict kept in paved-logs/drift.log", post)
	}
	if iv < 0 || iv < ip {
		t.Fatalf("drift does not check paved's verdict after paved preview:\n%s", strings.Join(script, "\n"))
	}
	gate := script[iv]
	if !regexp.MustCompile(`(^|[\s|])`+run.VerdictDrift+`\)`).MatchString(gate) || !strings.Contains(gate, "*)") || !strings.Contains(gate, "exit 1") {
		t.Errorf("drift: the verdict check must accept %s alone and fail on anything else:\n%s", run.VerdictDrift, gate)
	}
	for _, v := range []string{run.VerdictApply, run.VerdictDryRun, run.VerdictAwaitApproval} {
		if regexp.MustCompile(`(^|[\s|])` + v + `[|)]`).MatchString(gate) {
			t.Errorf("drift: the verdict check has a case for %s, a change's verdict", v)
		}
	}
	all := strings.Join(append(append([]string{}, jobs[".paved-stack"].BeforeScript...), script...), "\n")
	for _, bad := range []string{"pulumi up", "pulumi destroy", "pulumi preview", "pulumi import", "pulumi state", "pulumi cancel", "--yes", "--skip-preview", "--destroy", "provision check"} {
		if strings.Contains(all, bad) {
			t.Errorf("drift runs %q: a drift check only refreshes in preview", bad)
		}
	}
	for _, m := range regexp.MustCompile(`pulumi refresh[^\n]*`).FindAllString(all, -1) {
		if !strings.Contains(m, "--preview-only") {
			t.Errorf("drift: %q refreshes the state; a drift check must not write it", m)
		}
	}
	if !slices.ContainsFunc(jobs["report"].Needs, func(n any) bool {
		m, ok := n.(map[string]any)
		return ok && m["job"] == "drift" && m["optional"] == true
	}) {
		t.Error("report must wait for drift (optional: the other pipelines have no drift job)")
	}
	flags := callback.NewPreviewCommand().Flags()
	for _, f := range []string{"file", "verdict-file"} {
		if flags.Lookup(f) == nil {
			t.Errorf("paved preview has no --%s flag", f)
		}
	}
}

// TestReadmeExplainsDriftChecks: the README says what a drift check's
// pipeline runs, that it applies nothing, and paved's verdict.
func TestReadmeExplainsDriftChecks(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, want := range []string{
		"#### Drift checks", "`PAVED_OPERATION=DRIFT`", "`pulumi refresh --preview-only --json --non-interactive`",
		"`paved preview --file \"$CI_PROJECT_DIR/paved-out/drift.json\" --verdict-file \"$CI_PROJECT_DIR/paved-out/verdict\"`",
		"`" + run.VerdictDrift + "`", "`drift` → `report`", "never applies",
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README does not say %s", want)
		}
	}
}

// TestApplyJobsFollowTheVerdict: up and destroy take their preview job's
// artifacts (the verdict), never run for a dry run, and read the verdict
// before they touch the stack, in the words paved writes.
func TestApplyJobsFollowTheVerdict(t *testing.T) {
	_, jobs, _ := load(t)
	for _, tc := range []struct{ job, preview, apply string }{
		{"up", "preview", "pulumi up"},
		{"destroy", "preview-destroy", "pulumi destroy"},
	} {
		j := jobs[tc.job]
		if len(j.Needs) != 1 || !needs(j, tc.preview) {
			t.Errorf("%s needs %v, want only %s", tc.job, j.Needs, tc.preview)
		}
		for _, n := range j.Needs {
			if m, ok := n.(map[string]any); ok && (m["artifacts"] == false || m["optional"] == true) {
				t.Errorf("%s: the need of %s must be required and carry its artifacts (the verdict): %v", tc.job, tc.preview, m)
			}
		}
		if len(j.Rules) == 0 || j.Rules[0]["if"] != `$PAVED_DRY_RUN == "true"` || j.Rules[0]["when"] != "never" {
			t.Errorf("%s: the first rule must leave the job out of a dry run: %s", tc.job, rulesText(j))
		}
		iv := slices.IndexFunc(j.Script, func(l string) bool { return strings.Contains(l, verdictFile) })
		ia := slices.IndexFunc(j.Script, func(l string) bool { return strings.Contains(l, tc.apply) })
		if iv < 0 || ia < 0 || ia < iv {
			t.Errorf("%s must read %s before it runs %s", tc.job, verdictFile, tc.apply)
			continue
		}
		gate := j.Script[iv]
		for _, v := range []string{run.VerdictApply, run.VerdictDryRun, run.VerdictAwaitApproval} {
			if !regexp.MustCompile(`(^|[\s|])` + v + `[|)]`).MatchString(gate) {
				t.Errorf("%s: the verdict check has no case for paved's verdict %s", tc.job, v)
			}
		}
		if !strings.Contains(gate, "nothing is applied") || !strings.Contains(gate, "exit 0") || !strings.Contains(gate, "exit 1") {
			t.Errorf("%s: the verdict check must say why nothing is applied, and end the job (success for a stop, failure for no verdict):\n%s", tc.job, gate)
		}
	}
	if jobs["up"].Script[1] != jobs["destroy"].Script[1] {
		t.Error("up and destroy check the verdict differently")
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
		if want := naming.PipelineName(id); got != want {
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
