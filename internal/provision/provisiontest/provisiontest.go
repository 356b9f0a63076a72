package provisiontest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/mapper"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/rules"
)

// Run runs program against fresh mocks for the stack and returns them.
func Run(t testing.TB, stack string, program pulumi.RunFunc) (*Mocks, error) {
	t.Helper()
	return RunMocked("paved-provision", stack, program)
}

// Decode reads a resource's inputs, as the mock monitor received them, into
// a plain type of the provider SDK (appsv1.DeploymentType, …). A property
// the SDK type does not declare fails the test, so the assertions that
// follow are on the SDK's own field names and types.
func Decode[T any](t testing.TB, r rules.Resource) T {
	t.Helper()
	var v T
	if err := mapper.New(&mapper.Opts{IgnoreMissing: true}).Decode(r.Inputs, &v); err != nil {
		t.Fatalf("%s %s: inputs do not decode into %T: %v", r.Type, r.Name, v, err)
	}
	return v
}

// Only returns the one registered resource of type typ named name.
func Only(t testing.TB, rs []rules.Resource, typ rules.Type, name string) rules.Resource {
	t.Helper()
	for _, r := range rs {
		if r.Type == typ && r.Name == name {
			return r
		}
	}
	t.Fatalf("no %s %s registered", typ, name)
	return rules.Resource{}
}

// StampProblems lists every registered resource that lacks what res.New
// promises: a logical name under the stack's, a paved component as parent,
// the provider version the platform pins, and the target's tags (AWS) or
// labels (Kubernetes) — or no tags at all on the AWS types that cannot
// carry them, which keeps the rules' tagging table true to the SDK.
func StampProblems(m *Mocks, tg platform.Target, pins platform.Providers) []string {
	var out []string
	components := map[string]bool{}
	for _, c := range m.Components() {
		components[c.Name] = true
		if !strings.HasPrefix(string(c.Type), "paved:") {
			out = append(out, fmt.Sprintf("component %s %s is not a paved component", c.Type, c.Name))
		}
	}
	want := tg.Tags()
	for _, r := range m.Registered() {
		id := fmt.Sprintf("%s %s", r.Type, r.Name)
		if !strings.HasPrefix(r.Name, tg.StackName()) {
			out = append(out, id+": name outside the stack's")
		}
		if !strings.HasPrefix(r.ParentType(), "paved:") || !components[r.ParentName()] {
			out = append(out, fmt.Sprintf("%s: parent %q is not a paved component", id, r.Parent))
		}
		pin := pins.AWS
		if strings.HasPrefix(string(r.Type), "kubernetes:") {
			pin = pins.Kubernetes
		}
		if r.Version != pin || r.Provider != "" {
			out = append(out, fmt.Sprintf("%s: provider version %q (provider %q), want %q", id, r.Version, r.Provider, pin))
		}
		tagging, ok := rules.TaggingOf(r.Type)
		var got any
		switch {
		case !ok:
			out = append(out, id+": type unknown to the rules")
			continue
		case tagging == rules.AWSTags:
			got = r.Inputs["tags"]
		case tagging == rules.K8sLabels:
			meta, _ := r.Inputs["metadata"].(map[string]any)
			got = meta["labels"]
		case r.Inputs["tags"] != nil:
			out = append(out, id+": carries tags, but the rules list the type as untagged")
			continue
		default:
			continue
		}
		have, _ := got.(map[string]any)
		for k, v := range want {
			if have[k] != v {
				out = append(out, fmt.Sprintf("%s: %s is %v, want %q", id, k, have[k], v))
			}
		}
	}
	return out
}

// Config is a platform with every combination the tests need: dev and
// staging (small, medium) and prod, a single-tenant and a multi-tenant
// tenant. Its provider pins differ from the SDKs' own versions on purpose,
// so a resource registered without the platform's pin shows.
func Config(t testing.TB) *platform.Config {
	t.Helper()
	c, err := platform.Parse([]byte(configYAML))
	if err != nil {
		t.Fatalf("test platform config: %v", err)
	}
	return c
}

// Target resolves a target in Config.
func Target(t testing.TB, tenant, env, service string, tenancy platform.Tenancy) platform.Target {
	t.Helper()
	tg, err := Config(t).Resolve(tenant, env, service, "payments", tenancy)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TenantFor is the test tenant whose default is the tenancy.
func TenantFor(tenancy platform.Tenancy) string {
	if tenancy == platform.Multi {
		return "globex"
	}
	return "acme"
}

// Environments and Tenancies are the combinations every component is
// tested in: a production and two non-production environments.
var (
	Environments = []string{"dev", "staging", "prod"}
	Tenancies    = []platform.Tenancy{platform.Single, platform.Multi}
)

// Types returns the distinct types registered, sorted.
func Types(rs []rules.Resource) []rules.Type {
	set := map[rules.Type]bool{}
	for _, r := range rs {
		set[r.Type] = true
	}
	return slices.Sorted(maps.Keys(set))
}

const configYAML = `
region: eu-west-1
accountId: "111122223333"
providers: {aws: 6.83.1, kubernetes: 4.23.0}
bootstrapImage: public.ecr.aws/nginx/nginx-unprivileged:stable-alpine
sizeClasses:
  small: {replicas: 1, maxReplicas: 3, cpuRequest: 100m, memoryRequest: 128Mi, cpuLimit: 500m, memoryLimit: 256Mi, databaseClasses: [db.t4g.medium], cacheMemory: 128Mi}
  medium: {replicas: 2, maxReplicas: 6, cpuRequest: 250m, memoryRequest: 256Mi, cpuLimit: "1", memoryLimit: 512Mi, databaseClasses: [db.t4g.large], cacheMemory: 256Mi}
  large: {replicas: 3, maxReplicas: 20, cpuRequest: 500m, memoryRequest: 512Mi, cpuLimit: "2", memoryLimit: 1Gi, databaseClasses: [db.r7g.large, db.r7g.xlarge], cacheMemory: 1Gi}
environments:
  - {name: dev, production: false, size: small, vpcId: vpc-dev, dbSubnetGroup: dev-data, clusterCidr: 10.10.0.0/16, oidcIssuer: oidc.eks.eu-west-1.amazonaws.com/id/DEV, ingressDomain: dev.example.com, ingressClass: nginx, ingressNamespace: ingress-nginx, storageClass: gp3-encrypted}
  - {name: staging, production: false, size: medium, vpcId: vpc-stg, dbSubnetGroup: stg-data, clusterCidr: 10.20.0.0/16, oidcIssuer: oidc.eks.eu-west-1.amazonaws.com/id/STG, ingressDomain: stg.example.com, ingressClass: nginx, ingressNamespace: ingress-nginx, storageClass: gp3-encrypted}
  - {name: prod, production: true, size: large, vpcId: vpc-prd, dbSubnetGroup: prd-data, clusterCidr: 10.30.0.0/16, oidcIssuer: oidc.eks.eu-west-1.amazonaws.com/id/PRD, ingressDomain: example.com, ingressClass: nginx, ingressNamespace: ingress-nginx, storageClass: gp3-encrypted}
tenants:
  - {name: acme, costCenter: cc-1001, tenancy: single}
  - {name: globex, costCenter: cc-2002, tenancy: multi}
  - {name: initech, costCenter: cc-3003, tenancy: multi, environments: [dev]}
`
