package platform

import (
	"strings"
	"testing"
)

func TestNameTruncatesWithoutCollisions(t *testing.T) {
	tg := Target{Tenant: Tenant{Name: "acme"}, Environment: Environment{Name: "staging"}, Service: "orders"}
	if got := tg.Name("jobs", "dlq"); got != "acme-staging-orders-jobs-dlq" {
		t.Errorf("Name = %q", got)
	}
	long1 := tg.Name(strings.Repeat("a", 60), "one")
	long2 := tg.Name(strings.Repeat("a", 60), "two")
	if len(long1) > 63 || len(long2) > 63 || long1 == long2 {
		t.Errorf("long names %q %q", long1, long2)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`
region: eu-west-1
accountId: "12"
bootstrapImage: x
sizeClasses: {small: {replicas: 2, maxReplicas: 1}}
environments: [{name: Dev, size: huge}]
tenants: [{name: acme, environments: [qa]}]
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"accountId", "size class \"small\"", "environment \"Dev\"", "unknown size class", "costCenter", "unknown environment \"qa\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := Parse([]byte("region: x\ntypo: 1\n")); err == nil || !strings.Contains(err.Error(), "typo") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestResolveTenancyAndLabels(t *testing.T) {
	c := &Config{
		Region: "eu-west-1", AccountID: "111122223333",
		SizeClasses:  map[string]SizeClass{"s": {Replicas: 1, MaxReplicas: 2}},
		Environments: []Environment{{Name: "dev", Size: "s"}},
		Tenants:      []Tenant{{Name: "globex", CostCenter: "cc", Tenancy: Multi}},
	}
	tg, err := c.Resolve("globex", "dev", "orders", "payments", "")
	if err != nil || tg.Tenancy != Multi || tg.Namespace() != "globex-dev" {
		t.Fatalf("%+v %v", tg, err)
	}
	tg, _ = c.Resolve("globex", "dev", "orders", "payments", Single)
	if tg.Namespace() != "globex-dev-orders" || tg.Labels()["cost-center"] != "cc" || tg.Labels()["app.kubernetes.io/name"] != "orders" {
		t.Fatalf("single: %v %v", tg.Namespace(), tg.Labels())
	}
	if _, err := c.Resolve("globex", "dev", "orders", "p", "shared"); err == nil {
		t.Fatal("bad tenancy accepted")
	}
}
