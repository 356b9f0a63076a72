package cost

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func shippedTable(t *testing.T) *Table {
	t.Helper()
	tb, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestShippedTableSaysWhatItIs(t *testing.T) {
	tb := shippedTable(t)
	if tb.Currency != "USD" || tb.HoursPerMonth != 730 || !strings.Contains(tb.Name(), "us-east-1") || !strings.Contains(tb.Name(), tb.AsOf) {
		t.Fatalf("table %+v named %q", tb, tb.Name())
	}
	if _, err := Parse([]byte("currency: USD\nhoursPerMonth: 730\nsource: x\nasOf: y\nkinds: {a: {monthly: 1, dayly: 2}}\n")); err == nil {
		t.Fatal("a misspelt key was accepted")
	}
	if _, err := Parse([]byte("currency: USD\n")); err == nil {
		t.Fatal("a table without its source and date was accepted")
	}
}

// inputs reads JSON as the preview decoder does (numbers as json.Number).
func inputs(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Each kind of price, worked out by hand at 730 hours a month.
func TestEstimate(t *testing.T) {
	tb := shippedTable(t)
	deployment := func(replicas string) Resource {
		spec := `"template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}, {"resources": {"requests": {"cpu": "0.25", "memory": "0.5Gi"}}}]}}`
		if replicas != "" {
			spec = `"replicas": ` + replicas + `, ` + spec
		}
		return Resource{Type: "kubernetes:apps/v1:Deployment", Name: "api", Inputs: inputs(t, `{"metadata": {"name": "api"}, "spec": {`+spec+`}}`)}
	}
	before := []Resource{
		{Type: "aws:rds/clusterInstance:ClusterInstance", Name: "db-1", Inputs: map[string]any{"instanceClass": "db.t4g.medium"}},
		{Type: "aws:dynamodb/table:Table", Name: "carts", Inputs: map[string]any{"billingMode": "PAY_PER_REQUEST"}},
		{Type: "aws:secretsmanager/secret:Secret", Name: "old", Inputs: map[string]any{}},
		{Type: "aws:sqs/queue:Queue", Name: "jobs"},
		deployment("2"),
	}
	after := []Resource{
		{Type: "aws:rds/clusterInstance:ClusterInstance", Name: "db-1", Inputs: map[string]any{"instanceClass": "db.r7g.large"}},
		{Type: "aws:dynamodb/table:Table", Name: "carts", Inputs: inputs(t, `{"billingMode": "PROVISIONED", "readCapacity": 10, "writeCapacity": 5}`)},
		{Type: "aws:kms/key:Key", Name: "key"},
		{Type: "aws:sqs/queue:Queue", Name: "jobs"},
		{Type: "aws:iam/role:Role", Name: "role"},
		{Type: "pulumi:providers:aws", Name: "default"},
		// Scaled by an autoscaler with a minimum of 3.
		deployment(""),
		{Type: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", Name: "api", Inputs: inputs(t, `{"spec": {"scaleTargetRef": {"name": "api"}, "minReplicas": 3}}`)},
		{Type: "aws:rds/clusterInstance:ClusterInstance", Name: "db-2", Inputs: map[string]any{"instanceClass": "db.x9.huge"}},
		{Type: "aws:elasticache/cluster:Cluster", Name: "cache"},
	}
	// A pod requests 0.5 vCPU and 1 GiB: 0.5*0.04048 + 1*0.004445 = 0.024685 an hour.
	pod := 0.024685 * 730
	wantBefore := 0.073*730 + 0.40 + 2*pod
	wantAfter := 0.276*730 + (10*0.00013+5*0.00065)*730 + 1.00 + 3*pod
	c := tb.Estimate(before, after)
	if !near(c.Before, wantBefore) || !near(c.Monthly, wantAfter) || !near(c.Delta, wantAfter-wantBefore) || c.Currency != "USD" {
		t.Fatalf("estimate %+v; want before %.2f, after %.2f", c, wantBefore, wantAfter)
	}
	wantUnpriced := []string{
		`aws:elasticache/cluster:Cluster cache: not in the price table`,
		`aws:rds/clusterInstance:ClusterInstance db-2: instanceClass "db.x9.huge" not in the price table`,
	}
	if !slices.Equal(c.Unpriced, wantUnpriced) {
		t.Fatalf("unpriced %q, want %q", c.Unpriced, wantUnpriced)
	}
	if got := c.Label(); !strings.HasPrefix(got, "$") || !strings.Contains(got, "/month (+$") {
		t.Fatalf("label %q", got)
	}
	// Destroying the stack: nothing after, the whole cost saved.
	gone := tb.Estimate(before, nil)
	if gone.Monthly != 0 || !near(gone.Delta, -wantBefore) || !strings.Contains(gone.Label(), "(-$") {
		t.Fatalf("estimate of a destroy %+v (%s)", gone, gone.Label())
	}
}

// near compares to the cent, as estimates are rounded.
func near(a, b float64) bool { return a-b < 0.006 && b-a < 0.006 }

func TestQuantity(t *testing.T) {
	for in, want := range map[string]float64{"250m": 0.25, "2": 2, "1.5": 1.5, "512Mi": 512 << 20, "1Gi": 1 << 30, "1G": 1e9, "128974848": 128974848} {
		if got, err := quantity(in); err != nil || got != want {
			t.Errorf("quantity(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []any{"", "lots", "1Zi", nil} {
		if _, err := quantity(in); err == nil {
			t.Errorf("quantity(%v) has no error", in)
		}
	}
}
