package inputschema

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// realSchema compiles the input schema of one of paved's own actions, as
// written (without the dryRun input internal/catalog adds).
func realSchema(t *testing.T, action string) *Schema {
	t.Helper()
	name := filepath.Join("..", "..", "..", "actions", action+".yaml")
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Inputs struct {
			Schema map[string]any `yaml:"schema"`
		} `yaml:"inputs"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	s, err := Compile(name, f.Inputs.Schema)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

func TestValidate(t *testing.T) {
	tests := []struct {
		action string
		inputs map[string]any
		want   []FieldError
	}{
		{"create-service", map[string]any{
			"name": "checkout", "team": "payments", "language": "go", "tenant": "acme", "environment": "dev",
			"replicas": float64(3), "tenancy": "multi",
		}, nil},
		{"create-service", map[string]any{
			"name": "checkout", "team": "payments", "language": "go", "tenant": "acme", "environment": "dev",
			"replicas": json.Number("3"),
		}, nil},
		{"create-service", map[string]any{
			"name": "checkout", "team": "payments", "language": "go", "tenant": "acme", "environment": "dev",
			"replicas": 3, // a Go int, as the CLI and tests build them
		}, nil},
		{"create-service", map[string]any{
			"name": "Checkout_Svc", "language": "cobol", "tenant": "acme", "replicas": float64(21), "tenancy": "dual",
		}, []FieldError{
			{"inputs.environment", "is required"},
			{"inputs.language", "must be one of: go, java, python, typescript"},
			{"inputs.name", "must match pattern ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"},
			{"inputs.replicas", "must be <= 20"},
			{"inputs.team", "is required"},
			{"inputs.tenancy", "must be one of: single, multi"},
		}},
		{"create-service", map[string]any{
			"name": "checkout", "team": "payments", "language": "go", "tenant": "acme", "environment": "dev",
			"replicas": 2.5,
		}, []FieldError{{"inputs.replicas", "must be an integer, not a number"}}},
		{"create-service", map[string]any{
			"name": "checkout", "team": "payments", "language": "go", "tenant": "acme", "environment": "dev",
			"replicas": json.Number("0"),
		}, []FieldError{{"inputs.replicas", "must be >= 1"}}},
		{"add-s3-bucket", map[string]any{
			"tenant": "acme", "environment": "dev", "bucketName": "invoices", "versioning": true, "retentionDays": float64(90),
		}, nil},
		{"add-s3-bucket", map[string]any{
			"tenant": "acme", "environment": "dev", "bucketName": "x", "public": true, "retentionDays": "90",
		}, []FieldError{
			{"inputs.bucketName", "must match pattern ^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$"},
			{"inputs.public", "is not an input of this action"},
			{"inputs.retentionDays", "must be an integer, not a string"},
		}},
		{"add-sqs-queue", map[string]any{
			"tenant": "acme", "environment": "prod", "queueName": "orders", "fifo": true,
			"visibilityTimeoutSeconds": float64(43201), "maxReceiveCount": float64(0),
		}, []FieldError{
			{"inputs.maxReceiveCount", "must be >= 1"},
			{"inputs.visibilityTimeoutSeconds", "must be <= 43200"},
		}},
		{"add-sqs-queue", nil, []FieldError{
			{"inputs.environment", "is required"},
			{"inputs.queueName", "is required"},
			{"inputs.tenant", "is required"},
		}},
		{"delete-service", map[string]any{"tenant": "acme", "environment": "dev", "confirm": false},
			[]FieldError{{"inputs.confirm", "must be true"}}},
	}
	for i, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			got := realSchema(t, tt.action).Validate(tt.inputs)
			if !slices.Equal(got, tt.want) {
				t.Errorf("case %d:\n got %v\nwant %v", i, got, tt.want)
			}
		})
	}
}

func TestValidateUnencodable(t *testing.T) {
	got := realSchema(t, "add-s3-bucket").Validate(map[string]any{"tenant": make(chan int)})
	if len(got) != 1 || got[0].Field != "inputs" {
		t.Errorf("got %v", got)
	}
}
