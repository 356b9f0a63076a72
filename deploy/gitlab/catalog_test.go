package gitlab

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	paved "github.com/paved-idp/paved/internal/gitlab"
)

// componentProject is the component project's path in the README's
// example (<group>/paved-provision).
const componentProject = "platform/paved-provision"

// TestComponentProjectLayout: GitLab's required layout: a README.md at the
// root and every component in the top-level templates/ directory, here the
// one component, provision.
func TestComponentProjectLayout(t *testing.T) {
	for _, f := range []string{"README.md", ".gitlab-ci.yml", "templates/provision.yml", "runner/Dockerfile"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the component project lacks %s: %v", f, err)
		}
	}
	entries, err := os.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	var components []string
	for _, e := range entries {
		switch {
		case !e.IsDir() && strings.HasSuffix(e.Name(), ".yml"):
			components = append(components, strings.TrimSuffix(e.Name(), ".yml"))
		case e.IsDir():
			if _, err := os.Stat(filepath.Join("templates", e.Name(), "template.yml")); err == nil {
				components = append(components, e.Name())
			}
		}
	}
	if !slices.Equal(components, []string{"provision"}) {
		t.Errorf("templates/ holds the components %v, want [provision]", components)
	}
}

// deprecatedInputs are accepted (an include that gives one keeps working)
// and ignored.
var deprecatedInputs = map[string]bool{"production_environment": true}

var inputUse = regexp.MustCompile(`\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*(\|[^\]]*)?\]\]`)

// TestInputsDeclaredAndUsed: every $[[ inputs.x ]] is declared in
// spec:inputs and every declared input is used; every input has an explicit
// type, a description, and a default of that type that passes its own
// regex; the inputs without a default (required) are exactly the ones the
// platform must choose; no default is a moving image tag. A deprecated
// input is the exception: declared, described as such, and never used.
func TestInputsDeclaredAndUsed(t *testing.T) {
	c := loadComponent(t, "provision")
	body, err := yaml.Marshal(&c.Config)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range inputUse.FindAllStringSubmatch(string(body), -1) {
		used[m[1]] = true
		if m[2] != "" {
			t.Errorf("$[[ inputs.%s %s ]]: the component uses no interpolation functions", m[1], m[2])
		}
	}
	for name := range used {
		if _, ok := c.Inputs[name]; !ok {
			t.Errorf("$[[ inputs.%s ]] is used but not declared", name)
		}
	}
	var required []string
	for _, name := range sortedKeys(c.Inputs) {
		in := c.Inputs[name]
		switch {
		case deprecatedInputs[name]:
			if used[name] {
				t.Errorf("input %s is deprecated and ignored, but used", name)
			}
			if !strings.HasPrefix(in.Description, "Deprecated") || !in.HasDefault {
				t.Errorf("deprecated input %s must say so and keep a default: %q", name, in.Description)
			}
		case !used[name]:
			t.Errorf("input %s is declared but never used", name)
		}
		if in.Type == "" {
			t.Errorf("input %s has no explicit type", name)
		}
		if in.Description == "" {
			t.Errorf("input %s has no description", name)
		}
		if !in.HasDefault {
			required = append(required, name)
			continue
		}
		if err := checkInput(name, in, in.Default); err != nil {
			t.Errorf("default: %v", err)
		}
		if s, ok := in.Default.(string); ok && (strings.HasSuffix(s, ":latest") || strings.Contains(s, "~latest")) {
			t.Errorf("input %s defaults to a moving version %q", name, s)
		}
	}
	if want := []string{"aws_role_arn", "pulumi_backend_url", "runner_image"}; !slices.Equal(required, want) {
		t.Errorf("required inputs (no default) = %v, want %v", required, want)
	}
	if ri := c.Inputs["runner_image"]; checkInput("runner_image", ri, "registry.example.com/platform/paved-runner:1.0.0") == nil ||
		checkInput("runner_image", ri, "pulumi/pulumi:latest") == nil {
		t.Error("runner_image accepts an image by tag; it must take a digest")
	}
	if d, _ := c.Inputs["pulumi_secrets_provider"].Default.(string); !strings.HasPrefix(d, "awskms://") {
		t.Errorf("pulumi_secrets_provider defaults to %q, want an awskms:// key", d)
	}
}

// readmeConsumer is the README's example .gitlab-ci.yml: the yaml block
// that includes the component.
func readmeConsumer(t *testing.T) []byte {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.HasPrefix(m[1], "include:") {
			return []byte(m[1])
		}
	}
	t.Fatal("README has no yaml block starting with include:")
	return nil
}

// TestReadmeIncludeSnippet: the README's include names this project's
// component as $CI_SERVER_FQDN/<group>/paved-provision/provision@<semver>,
// gives only inputs that exist, every required one, and values GitLab
// accepts; the README also states the general form.
func TestReadmeIncludeSnippet(t *testing.T) {
	consumer := readmeConsumer(t)
	var doc struct {
		Include []struct {
			Component string         `yaml:"component"`
			Inputs    map[string]any `yaml:"inputs"`
		} `yaml:"include"`
	}
	if err := yaml.Unmarshal(consumer, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Include) != 1 {
		t.Fatalf("README's include has %d entries, want 1", len(doc.Include))
	}
	m := componentPath.FindStringSubmatch(doc.Include[0].Component)
	if m == nil || !strings.HasSuffix(m[1], "/paved-provision") || m[2] != "provision" ||
		!regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(m[3]) {
		t.Errorf("README includes %q, want $CI_SERVER_FQDN/<group>/paved-provision/provision@<released version>", doc.Include[0].Component)
	}
	c := loadComponent(t, "provision")
	if _, err := resolveInputs(c.Inputs, doc.Include[0].Inputs); err != nil {
		t.Errorf("GitLab would refuse the README's inputs: %v", err)
	}
	readme, _ := os.ReadFile("README.md")
	if !strings.Contains(string(readme), "`$CI_SERVER_FQDN/<group>/paved-provision/provision@<version>`") {
		t.Error("README does not state the include path $CI_SERVER_FQDN/<group>/paved-provision/provision@<version>")
	}
	cfg, err := includeComponents(t, consumer, componentProject)
	if err != nil {
		t.Fatalf("include: %v", err)
	}
	if wf, _ := cfg["workflow"].(map[string]any); wf["name"] != "paved $PAVED_RUN_ID" {
		t.Errorf("the README's pipeline is named %v, paved looks for %q", wf["name"], "paved $PAVED_RUN_ID")
	}
}

// pavedVars are the variables of a pipeline paved creates, with extra
// ones (PAVED_DRY_RUN, PAVED_APPROVED_DIGEST) as name=value pairs.
func pavedVars(operation, environment string, extra ...string) map[string]string {
	vars := map[string]string{
		"CI_PIPELINE_SOURCE": "api", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main",
		paved.RunIDVariable: "r_1", "PAVED_OPERATION": operation, "PAVED_ENVIRONMENT": environment,
		"PAVED_TENANT": "acme", "PAVED_SERVICE": "orders",
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return vars
}

// TestWorkflowAdmitsOnlyPavedAPIPipelines: of every way a pipeline can
// start, GitLab creates one from the README's configuration only through
// the pipelines API with PAVED_RUN_ID.
func TestWorkflowAdmitsOnlyPavedAPIPipelines(t *testing.T) {
	cfg, err := includeComponents(t, readmeConsumer(t), componentProject)
	if err != nil {
		t.Fatal(err)
	}
	sources := []string{"api", "push", "web", "schedule", "trigger", "pipeline", "parent_pipeline",
		"merge_request_event", "external", "chat", "webide", "security_orchestration_policy"}
	for _, source := range sources {
		for _, runID := range []string{"", "r_1"} {
			vars := map[string]string{"CI_PIPELINE_SOURCE": source, "CI_COMMIT_BRANCH": "main"}
			if runID != "" {
				vars[paved.RunIDVariable] = runID
			}
			created, _ := buildPipeline(t, cfg, vars)
			if want := source == "api" && runID != ""; created != want {
				t.Errorf("source %s, PAVED_RUN_ID %q: pipeline created = %v, want %v", source, runID, created, want)
			}
		}
	}
}

// TestPipelineJobsPerOperation: the jobs GitLab creates for each kind of
// run, with their needs satisfiable and their stage declared (the README's
// configuration declares no stages, so GitLab's defaults apply). No job is
// manual, in production neither: paved approves previews, and a guarded
// run's apply pipeline (with PAVED_APPROVED_DIGEST) must run through. A dry
// run has no apply job. A drift check (DRIFT) runs drift and report alone,
// whatever else paved passes; an operation the component does not know runs
// no stack job at all.
func TestPipelineJobsPerOperation(t *testing.T) {
	cfg, err := includeComponents(t, readmeConsumer(t), componentProject)
	if err != nil {
		t.Fatal(err)
	}
	const digest = "PAVED_APPROVED_DIGEST=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	apply := []string{"check", "preview", "report", "up"}
	destroy := []string{"destroy", "preview-destroy", "report"}
	drift := []string{"drift", "report"}
	cases := []struct {
		operation, environment string
		extra                  []string
		jobs                   []string
	}{
		{"CREATE", "dev", nil, apply},
		{"DAY-2", "staging", nil, apply},
		{"CREATE", "prod", nil, apply},
		{"DAY-2", "prod", []string{digest}, apply},
		{"DAY-2", "prod", []string{"PAVED_DRY_RUN=false"}, apply},
		{"CREATE", "dev", []string{"PAVED_DRY_RUN=true"}, []string{"check", "preview", "report"}},
		{"DAY-2", "prod", []string{"PAVED_DRY_RUN=true"}, []string{"check", "preview", "report"}},
		{"DELETE", "dev", nil, destroy},
		{"DELETE", "prod", nil, destroy},
		{"DELETE", "prod", []string{digest}, destroy},
		{"DELETE", "prod", []string{"PAVED_DRY_RUN=true"}, []string{"preview-destroy", "report"}},
		{"DRIFT", "dev", nil, drift},
		{"DRIFT", "prod", nil, drift},
		{"DRIFT", "prod", []string{"PAVED_DRY_RUN=true"}, drift},
		{"DRIFT", "prod", []string{"PAVED_DRY_RUN=false"}, drift},
		{"DRIFT", "prod", []string{digest}, drift},
		{"drift", "dev", nil, []string{"report"}},
		{"IMPORT", "dev", nil, []string{"report"}},
		{"", "dev", nil, []string{"report"}},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s in %s %v", tc.operation, tc.environment, tc.extra)
		created, jobs := buildPipeline(t, cfg, pavedVars(tc.operation, tc.environment, tc.extra...))
		if !created {
			t.Errorf("%s: no pipeline", name)
			continue
		}
		if got := sortedKeys(jobs); !slices.Equal(got, tc.jobs) {
			t.Errorf("%s: jobs %v, want %v", name, got, tc.jobs)
		}
		for job, j := range jobs {
			want := "on_success"
			if job == "report" {
				want = "always"
			}
			if j.When != want || j.AllowFailure {
				t.Errorf("%s: %s runs %s (allow_failure %v), want %s", name, job, j.When, j.AllowFailure, want)
			}
		}
		for _, p := range checkPipeline(cfg, jobs) {
			t.Errorf("%s: %s", name, p)
		}
	}
}

// TestStacksAreCreatedWithTheSecretsProvider: every stack job creates a
// missing stack with --secrets-provider from the input, and no passphrase
// ever comes from the file.
func TestStacksAreCreatedWithTheSecretsProvider(t *testing.T) {
	_, jobs, raw := load(t)
	base := jobs[".paved-stack"]
	if base.Variables["PAVED_SECRETS_PROVIDER"] != "$[[ inputs.pulumi_secrets_provider ]]" ||
		base.Variables["PULUMI_BACKEND_URL"] != "$[[ inputs.pulumi_backend_url ]]" {
		t.Errorf(".paved-stack variables %v do not carry the backend and secrets provider inputs", base.Variables)
	}
	script := strings.Join(base.BeforeScript, "\n")
	if !strings.Contains(script, `pulumi stack select --create --secrets-provider "$PAVED_SECRETS_PROVIDER" "$PAVED_STACK"`) {
		t.Error("the stack jobs do not create a missing stack with --secrets-provider")
	}
	for _, cmd := range regexp.MustCompile(`pulumi stack (init|select)[^\n]*`).FindAllString(script, -1) {
		if !strings.Contains(cmd, "--secrets-provider") && (strings.Contains(cmd, "init") || strings.Contains(cmd, "--create")) {
			t.Errorf("%q creates a stack without --secrets-provider", cmd)
		}
	}
	if !strings.Contains(script, `unset PULUMI_CONFIG_PASSPHRASE`) || !strings.Contains(script, "passphrase)") {
		t.Error("the stack jobs must refuse the passphrase provider without PULUMI_CONFIG_PASSPHRASE and never use an empty one")
	}
	for name, j := range jobs {
		for k := range j.Variables {
			if strings.HasPrefix(k, "PULUMI_CONFIG_PASSPHRASE") {
				t.Errorf("%s sets %s in the file; it must be a masked project variable", name, k)
			}
		}
	}
	if regexp.MustCompile(`PULUMI_CONFIG_PASSPHRASE(_FILE)?=`).MatchString(raw) {
		t.Error("the component assigns PULUMI_CONFIG_PASSPHRASE; it must come from a masked project variable")
	}
	if i, j := strings.Index(script, "PULUMI_CONFIG_PASSPHRASE"), strings.Index(script, "pulumi login"); i < 0 || j < i {
		t.Error("the passphrase checks must run before pulumi login")
	}
}

// keepRunToken is the one line a stack job may run before it unsets
// PAVED_RUN_TOKEN: a job that posts a preview (the preview jobs and drift)
// copies the token into an unexported shell variable (allexport off), which
// no child process inherits.
const keepRunToken = `set +a; if [ "${PAVED_POSTS_PREVIEW:-}" = true ]; then paved_run_token="${PAVED_RUN_TOKEN:-}"; fi`

// TestRunTokenStaysInTheReportJob: GitLab cannot mask PAVED_RUN_TOKEN (it is
// passed to the pipelines API), so no stack job has it in its environment:
// the preview jobs and drift hand it to `paved preview` alone, the report
// job to `paved report`; nothing prints it.
func TestRunTokenStaysInTheReportJob(t *testing.T) {
	_, jobs, raw := load(t)
	for name, j := range jobs {
		if name == "report" || j.Extends != nil {
			continue
		}
		first := append(append([]string{}, j.BeforeScript...), j.Script...)
		i := slices.IndexFunc(first, func(l string) bool { return strings.Contains(l, "unset PAVED_RUN_TOKEN") })
		if i < 0 {
			t.Errorf("%s keeps PAVED_RUN_TOKEN in its environment", name)
			continue
		}
		for _, l := range first[:i] {
			if l != "set -eu" && l != keepRunToken {
				t.Errorf("%s runs %q before it unsets PAVED_RUN_TOKEN", name, l)
			}
		}
	}
	for name, j := range jobs {
		posts := name == "preview" || name == "preview-destroy" || name == "drift"
		if got := j.Variables["PAVED_POSTS_PREVIEW"]; (got == "true") != posts || !posts && got != "" {
			t.Errorf("%s: PAVED_POSTS_PREVIEW = %q; only the preview jobs and drift keep the run token", name, got)
		}
		for _, l := range append(append([]string{}, j.BeforeScript...), j.Script...) {
			if !strings.Contains(l, "paved_run_token") && !regexp.MustCompile(`PAVED_RUN_TOKEN=`).MatchString(l) {
				continue
			}
			switch {
			case l == keepRunToken && name == ".paved-stack":
			case posts && l == "unset paved_run_token":
			case posts && strings.HasPrefix(l, `PAVED_RUN_TOKEN="$paved_run_token" paved preview `) && strings.Count(l, "paved_run_token") == 1:
			default:
				t.Errorf("%s: %q: the kept run token goes only to paved preview, as its environment", name, l)
			}
		}
		if posts {
			ip := slices.IndexFunc(j.Script, func(l string) bool { return strings.HasPrefix(l, `PAVED_RUN_TOKEN="$paved_run_token" paved preview `) })
			iu := slices.Index(j.Script, "unset paved_run_token")
			if ip < 0 || iu != ip+1 {
				t.Errorf("%s: paved preview gets the kept run token (line %d), and the next line drops it (line %d)", name, ip, iu)
			}
		}
	}
	var scripts []string
	for _, j := range jobs {
		scripts = append(append(scripts, j.BeforeScript...), j.Script...)
	}
	all := strings.Join(scripts, "\n")
	for _, bad := range []string{"set -x", "set -o xtrace", "set -a", "set -o allexport", "--token", "printenv", "env |", "export -p", "export paved_run_token", "declare -x"} {
		if strings.Contains(all, bad) {
			t.Errorf("a script runs %q, which could print the run token", bad)
		}
	}
	if regexp.MustCompile(`(echo|printf)[^\n]*RUN_TOKEN`).MatchString(all) {
		t.Error("a script prints PAVED_RUN_TOKEN")
	}
	for name, j := range jobs {
		if _, ok := j.Variables["CI_DEBUG_TRACE"]; ok {
			t.Errorf("%s sets CI_DEBUG_TRACE, which prints every variable", name)
		}
	}
	if strings.Contains(raw, "CI_DEBUG_TRACE: ") {
		t.Error("the component sets CI_DEBUG_TRACE")
	}
	readme, _ := os.ReadFile("README.md")
	if regexp.MustCompile("`PAVED_RUN_TOKEN` \\(masked\\)").Match(readme) {
		t.Error("README claims PAVED_RUN_TOKEN is masked; GitLab cannot mask variables passed to the pipelines API")
	}
}

// TestComponentProjectPipeline: the component project's own .gitlab-ci.yml,
// as GitLab builds it: it includes the component from its own commit (so
// GitLab checks the component and these inputs), never runs the
// component's jobs, checks that all of them were added, and creates the
// release (which publishes to the CI/CD Catalog) on semantic-version tags
// only, with the release keyword.
func TestComponentProjectPipeline(t *testing.T) {
	b, err := os.ReadFile(".gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/provision@$CI_COMMIT_SHA") {
		t.Error(".gitlab-ci.yml does not include the component from the commit under test")
	}
	cfg, err := includeComponents(t, b, "$CI_PROJECT_PATH")
	if err != nil {
		t.Fatalf("include: %v", err)
	}
	c := loadComponent(t, "provision")
	var own map[string]any
	if err := c.Config.Decode(&own); err != nil {
		t.Fatal(err)
	}
	var componentJobs []string
	for name := range own {
		if isJob(name) {
			componentJobs = append(componentJobs, name)
		}
	}
	sort.Strings(componentJobs)

	tag := map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "1.2.0", "CI_COMMIT_REF_NAME": "1.2.0"}
	created, jobs := buildPipeline(t, cfg, tag)
	if !created {
		t.Fatal("no pipeline for a tag push")
	}
	for _, name := range componentJobs {
		j, ok := jobs[name]
		if !ok || j.When != "manual" || !j.AllowFailure {
			t.Errorf("component job %s = %+v; in the component project it must be a manual job allowed to fail", name, j)
		}
	}
	for _, p := range checkPipeline(cfg, jobs) {
		t.Error(p)
	}
	verify, ok := jobs["verify-component"]
	if !ok {
		t.Fatal("no verify-component job")
	}
	vars, _ := verify.Def["variables"].(map[string]any)
	if got := strings.Fields(vars["EXPECTED_JOBS"].(string)); !slices.Equal(got, componentJobs) {
		t.Errorf("verify-component expects %v, the component adds %v", got, componentJobs)
	}

	rel, ok := jobs["create-release"]
	if !ok {
		t.Fatal("no create-release job in a tag pipeline")
	}
	release, _ := rel.Def["release"].(map[string]any)
	if release["tag_name"] != "$CI_COMMIT_TAG" || release["description"] == nil {
		t.Errorf("create-release's release: %v, want tag_name $CI_COMMIT_TAG and a description", release)
	}
	if !slices.ContainsFunc(rel.Needs, func(n needRef) bool { return n.Job == "verify-component" }) {
		t.Error("create-release must wait for the component check")
	}
	for _, tc := range []struct {
		vars    map[string]string
		release bool
	}{
		{map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "1.0.0"}, true},
		{map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "2.3.4-rc.1"}, true},
		{map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1.0.0"}, false},
		{map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "1.0"}, false},
		{map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}, false},
		{map[string]string{"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7"}, false},
	} {
		created, jobs := buildPipeline(t, cfg, tc.vars)
		if !created {
			t.Errorf("%v: no pipeline", tc.vars)
			continue
		}
		if _, ok := jobs["create-release"]; ok != tc.release {
			t.Errorf("%v: create-release in the pipeline = %v, want %v", tc.vars, ok, tc.release)
		}
		if _, ok := jobs["verify-component"]; !ok {
			t.Errorf("%v: the component is not checked", tc.vars)
		}
	}
	for name, j := range jobs {
		if img, _ := j.Def["image"].(string); strings.HasSuffix(img, ":latest") {
			t.Errorf("%s uses the moving image %s", name, img)
		}
	}
	if globals, _ := cfg["variables"].(map[string]any); globals != nil {
		for k, v := range globals {
			if s, _ := v.(string); strings.HasSuffix(s, ":latest") {
				t.Errorf("variable %s = %s is a moving image", k, s)
			}
		}
	}
}

// gitlabRefusals are GitLab's answers to POST /projects/:id/pipeline when a
// permission or the workflow rules refuse the pipeline (texts from GitLab's
// pipeline-creation chain and its CI/CD variables documentation).
var gitlabRefusals = []string{
	`{"message":"403 Forbidden"}`,
	`{"message":{"base":["You do not have sufficient permission to run a pipeline on '<ref>'. Please select a different branch or contact your administrator for assistance."]}}`,
	`{"message":{"base":["Insufficient permissions to set pipeline variables"]}}`,
	`{"message":{"base":["Pipeline filtered out by workflow rules."]}}`,
}

// TestReadmesQuoteGitLabsRefusals: both READMEs give the same, exact texts,
// on one line each, so that an operator (and paved) can match them.
func TestReadmesQuoteGitLabsRefusals(t *testing.T) {
	for _, path := range []string{"README.md", "../../README.md"} {
		b, err := os.ReadFile(path)
		if err != nil {
			if path != "README.md" && os.IsNotExist(err) {
				continue // a split component project
			}
			t.Fatal(err)
		}
		for _, text := range gitlabRefusals {
			if !strings.Contains(string(b), text) {
				t.Errorf("%s does not quote GitLab's %s", path, text)
			}
		}
		if !strings.Contains(string(b), "ci_pipeline_variables_minimum_override_role") || !strings.Contains(string(b), "Minimum role to use pipeline variables") {
			t.Errorf("%s does not name the pipeline variables setting", path)
		}
	}
}
