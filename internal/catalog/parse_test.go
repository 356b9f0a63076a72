package catalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func realFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(actionsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseErrors(t *testing.T) {
	s3 := realFile(t, "add-s3-bucket.yaml")
	tests := []struct {
		name string
		yaml string
		want []string // every one must appear in the error
	}{
		{"unknown key", s3 + "\ncolour: red\n", []string{"bad.yaml", "colour"}},
		{"unknown nested key", strings.Replace(s3, "  ref: main", "  ref: main\n  branch: x", 1), []string{"branch"}},
		{"bad operation", strings.Replace(s3, "operation: DAY-2", "operation: UPDATE", 1), []string{"operation", "UPDATE"}},
		{"bad timeout", strings.Replace(s3, "timeout: 20m", "timeout: soon", 1), []string{"timeout"}},
		{"no tenant", strings.Replace(s3, "required: [tenant, environment, bucketName]", "required: [environment, bucketName]", 1),
			[]string{"inputs.schema.required: must include tenant"}},
		{"order incomplete", strings.Replace(s3, "bucketName, versioning, retentionDays]", "bucketName, versioning]", 1),
			[]string{"inputs.order", "retentionDays"}},
		{"order unknown", strings.Replace(s3, "bucketName, versioning, retentionDays]", "bucketName, versioning, retentionDays, public]", 1),
			[]string{`inputs.order: "public"`}},
		{"additional allowed", strings.Replace(s3, "additionalProperties: false", "additionalProperties: true", 1), []string{"additionalProperties must be false"}},
		{"bad schema", strings.Replace(s3, "minimum: 1", "minimum: one", 1), []string{"inputs.schema", "compile"}},
		{"bad regex", strings.Replace(s3, "pattern: ^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$", "pattern: '[a-'", 1), []string{"inputs.schema"}},
		{"unknown placeholder", strings.Replace(s3, "region: ${outputs.region}", "region: ${region}", 1), []string{"output.properties.region", "${region}"}},
		{"undeclared input", strings.Replace(s3, "versioning: ${inputs.versioning}", "versioning: ${inputs.versioned}", 1), []string{"inputs.versioned"}},
		{"optional input in identifier", strings.Replace(s3, "identifier: ${stack}-${inputs.bucketName}", "identifier: ${stack}-${inputs.retentionDays}", 1), []string{"must be a required input"}},
		{"outputs in identifier", strings.Replace(s3, "identifier: ${stack}-${inputs.bucketName}", "identifier: ${outputs.bucketArn}", 1), []string{"output.identifier"}},
		{"unclosed placeholder", strings.Replace(s3, "region: ${outputs.region}", "region: ${outputs.region", 1), []string{"unclosed"}},
		{"serviceFrom", strings.Replace(s3, "serviceFrom: entity.identifier", "serviceFrom: name", 1), []string{"serviceFrom"}},
		{"external ref", strings.Replace(s3, "type: boolean", "$ref: https://example.com/x.json", 1), []string{"inputs.schema"}},
		{"old draft", strings.Replace(s3, "2020-12", "2019-09", 1), []string{"$schema"}},
		{"two documents", s3 + "\n---\nidentifier: x\n", []string{"one YAML document"}},
		{"empty", "", []string{"empty"}},
		{"not a map", "- a\n- b\n", []string{"bad.yaml"}},
		{"bad identifier", strings.Replace(s3, "identifier: add-s3-bucket", "identifier: Add S3", 1), []string{"identifier"}},
		{"destroyed entities of a DAY-2", s3 + "\ndestroyedEntities: delete\n", []string{"destroyedEntities", "DAY-2"}},
		{"destroyed entities unknown", strings.Replace(realFile(t, "delete-service.yaml"), "operation: DELETE", "operation: DELETE\ndestroyedEntities: purge", 1), []string{`destroyedEntities: must be "mark"`}},
		{"deleting a DELETE's output", strings.Replace(strings.Replace(realFile(t, "delete-service.yaml"), "operation: DELETE", "operation: DELETE\ndestroyedEntities: delete", 1),
			"serviceFrom: entity.identifier", "serviceFrom: entity.identifier\noutput:\n  blueprint: service\n  identifier: ${entity.identifier}", 1), []string{"may not delete it"}},
		{"ttl on a DAY-2", strings.Replace(s3, "      bucketName:", "      ttl:\n        type: string\n      bucketName:", 1), []string{"ttl", "CREATE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadRefusesDuplicatesAndNamesFile(t *testing.T) {
	dir := t.TempDir()
	s3 := realFile(t, "add-s3-bucket.yaml")
	for _, n := range []string{"a.yaml", "b.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s3), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "b.yaml") || !strings.Contains(err.Error(), "already defined") {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("empty dir loaded")
	}
}

func FuzzLoadAction(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(actionsDir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("identifier: x\ninputs: {schema: {type: object, properties: {a: {$ref: '#'}}}}"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		// A parsed action must be usable without panicking.
		a.Validate(map[string]any{"tenant": "t", "environment": "e"})
		if a.InputProperties() == nil {
			t.Fatal("a parsed action has no inputs")
		}
	})
}
