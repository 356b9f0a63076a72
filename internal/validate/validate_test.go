package validate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tree is a copy of the shipped definitions to break.
type tree struct {
	t                         *testing.T
	actions, blueprints, rego string
}

func newTree(t *testing.T) *tree {
	root := t.TempDir()
	tr := &tree{t: t, actions: filepath.Join(root, "actions"), blueprints: filepath.Join(root, "blueprints"), rego: filepath.Join(root, "actions", "policy")}
	copyDir(t, "../../actions", tr.actions)
	copyDir(t, "../../actions/policy", tr.rego)
	copyDir(t, "../../blueprints", tr.blueprints)
	return tr
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// edit replaces old with new in a file of the tree; old must occur once.
func (tr *tree) edit(path, old, new string) {
	tr.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tr.t.Fatal(err)
	}
	if n := strings.Count(string(b), old); n != 1 {
		tr.t.Fatalf("%q occurs %d times in %s", old, n, path)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) problems() []Problem {
	return Dirs(context.Background(), tr.actions, tr.blueprints, tr.rego)
}

// lineOf is the line of the first occurrence of s in path.
func lineOf(t *testing.T, path, s string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), s)
	if i < 0 {
		t.Fatalf("%s lacks %q", path, s)
	}
	return strings.Count(string(b[:i]), "\n") + 1
}

func TestShippedDefinitionsAreClean(t *testing.T) {
	start := time.Now()
	if ps := Dirs(context.Background(), "../../actions", "../../blueprints", "../../actions/policy"); len(ps) > 0 {
		t.Fatalf("problems in the shipped definitions:\n%s", Report(ps))
	}
	t.Logf("validated in %v", time.Since(start)) // paved serve runs this at every start
	defs, ps := Load("../../actions", "../../blueprints")
	if len(ps) > 0 || len(defs.Actions) != 4 || len(defs.Blueprints) != 5 || defs.Actions[0].Identifier != "add-s3-bucket" {
		t.Fatalf("Load = %+v, %v", defs, ps)
	}
}

// TestProblems breaks one thing at a time and expects exactly one problem,
// at the file and line of what is broken.
func TestProblems(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(tr *tree) (file string, line int)
		want   string
	}{
		{"malformed YAML", func(tr *tree) (string, int) {
			f := filepath.Join(tr.actions, "add-s3-bucket.yaml")
			tr.edit(f, "  order: [tenant, environment, bucketName, versioning, retentionDays]", "  order: [tenant, environment, bucketName, versioning, retentionDays")
			return f, lineOf(t, f, "  order: [tenant")
		}, "YAML: did not find expected ',' or ']'"},
		{"YAML that is not a mapping where one belongs", func(tr *tree) (string, int) {
			f := filepath.Join(tr.actions, "add-s3-bucket.yaml")
			tr.edit(f, "gitlab:\n  project: platform/paved-provision\n  ref: main\n", "gitlab: [platform/paved-provision]\n")
			return f, lineOf(t, f, "gitlab: [")
		}, "YAML: cannot unmarshal !!seq into catalog.GitLab"},
		{"unknown key", func(tr *tree) (string, int) {
			f := filepath.Join(tr.actions, "add-sqs-queue.yaml")
			tr.edit(f, "timeout: 20m\n", "timeout: 20m\ntimout: 30m\n")
			return f, lineOf(t, f, "timout:")
		}, "YAML: field timout not found in type catalog.actionFile"},
		{"unknown input type", func(tr *tree) (string, int) {
			f := filepath.Join(tr.actions, "create-service.yaml")
			tr.edit(f, "      replicas:\n        type: integer\n", "      replicas:\n        type: int\n")
			return f, lineOf(t, f, "        type: int\n")
		}, "inputs.schema.properties.replicas.type: unknown type int"},
		{"input without a type", func(tr *tree) (string, int) {
			f := filepath.Join(tr.actions, "create-service.yaml")
			tr.edit(f, "      replicas:\n        type: integer\n", "      replicas:\n")
			return f, lineOf(t, f, "      replicas:\n")
		}, "inputs.schema.properties.replicas: needs a type"},
		{"a catalog convention", func(tr *tree) (string, int) {
			f := filepath.Join(tr.actions, "delete-service.yaml")
			tr.edit(f, "  order: [tenant, environment, confirm, confirmName]", "  order: [tenant, environment, confirmName]")
			return f, lineOf(t, f, "  order:")
		}, "inputs.order: must list every input; missing confirm"},
		{"output not a blueprint property", func(tr *tree) (string, int) {
			f := filepath.Join(tr.actions, "add-s3-bucket.yaml")
			tr.edit(f, "    region: ${outputs.region}", "    awsRegion: ${outputs.region}")
			return f, lineOf(t, f, "    awsRegion:")
		}, `output.properties.awsRegion: blueprint s3_bucket has no property "awsRegion"`},
		{"output of the wrong type", func(tr *tree) (string, int) {
			f := filepath.Join(tr.actions, "add-s3-bucket.yaml")
			tr.edit(f, "    versioning: ${inputs.versioning}", "    versioning: ${inputs.bucketName}")
			return f, lineOf(t, f, "    versioning: ${inputs.bucketName}")
		}, "output.properties.versioning: input bucketName is a string, but property versioning of blueprint s3_bucket is a boolean"},
		{"output relation the blueprint lacks", func(tr *tree) (string, int) {
			f := filepath.Join(tr.actions, "add-sqs-queue.yaml")
			tr.edit(f, "    tenant: ${tenant}", "    owner: ${tenant}")
			return f, lineOf(t, f, "    owner: ${tenant}")
		}, `output.relations.owner: blueprint sqs_queue has no relation "owner"`},
		{"output blueprint missing", func(tr *tree) (string, int) {
			f := filepath.Join(tr.actions, "add-sqs-queue.yaml")
			tr.edit(f, "  blueprint: sqs_queue", "  blueprint: queue")
			return f, lineOf(t, f, "  blueprint: queue")
		}, `output.blueprint: no blueprint "queue" in`},
		{"duplicate identifier", func(tr *tree) (string, int) {
			f := filepath.Join(tr.actions, "add-sqs-queue.yaml")
			tr.edit(f, "identifier: add-sqs-queue", "identifier: add-s3-bucket")
			return f, lineOf(t, f, "identifier: add-s3-bucket")
		}, `identifier "add-s3-bucket" is already defined in`},
		{"broken blueprint", func(tr *tree) (string, int) {
			f := filepath.Join(tr.blueprints, "tenant.json")
			tr.edit(f, `"type": "string",
        "title": "Cost center"`, `"type": "text",
        "title": "Cost center"`)
			return f, lineOf(t, f, `"type": "text"`)
		}, `schema.properties.costCenter.type: must be one of`},
		{"Rego test failure", func(tr *tree) (string, int) {
			f := filepath.Join(tr.rego, "policy_test.rego")
			tr.edit(f, "tenant_set := {t: true | some t in tenants}", "tenant_set := {t: true | some t in tenants}\n\ntest_shipped_policy_fails if {\n\tcount(policy.decision.deny) == 99\n}")
			return f, lineOf(t, f, "test_shipped_policy_fails")
		}, "rego test data.paved.policy_test.test_shipped_policy_fails fails"},
		{"Rego syntax error", func(tr *tree) (string, int) {
			f := filepath.Join(tr.rego, "policy.rego")
			tr.edit(f, "default require_approval := false", "default require_approval := false +")
			return f, lineOf(t, f, "default require_approval")
		}, "rego_parse_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTree(t)
			file, line := tt.break_(tr)
			ps := tr.problems()
			want := fmt.Sprintf("%s:%d: ", file, line)
			if len(ps) == 0 {
				t.Fatalf("no problem found, want %s%s", want, tt.want)
			}
			for _, p := range ps {
				if !strings.HasPrefix(p.String(), want) || !strings.Contains(p.Msg, tt.want) {
					t.Errorf("problem %q, want %s…%s…", p, want, tt.want)
				}
			}
		})
	}
}

func TestMissingDirs(t *testing.T) {
	empty := t.TempDir()
	ps := Dirs(context.Background(), empty, empty, empty)
	got := Report(ps)
	for _, want := range []string{empty + ": no *.yaml action files", empty + ": no *.json blueprint files", "no *.rego files"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems:\n%s\nlack %q", got, want)
		}
	}
	// Without a blueprints directory, only what needs none is checked.
	if ps := Dirs(context.Background(), "../../actions", "", "../../actions/policy"); len(ps) > 0 {
		t.Fatal(Report(ps))
	}
}

// A skipped Rego test (todo_test_…) is no problem, as with opa test.
func TestSkippedRegoTestsPass(t *testing.T) {
	tr := newTree(t)
	f := filepath.Join(tr.rego, "policy_test.rego")
	tr.edit(f, "tenant_set := {t: true | some t in tenants}", "tenant_set := {t: true | some t in tenants}\n\ntodo_test_later if {\n\tfalse\n}")
	if ps := tr.problems(); len(ps) != 0 {
		t.Fatalf("problems %v", ps)
	}
}
