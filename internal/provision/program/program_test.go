package program_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/cost"
	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/program"
	"github.com/paved-idp/paved/internal/provision/provisiontest"
	"github.com/paved-idp/paved/internal/provision/rules"
	"github.com/paved-idp/paved/internal/provision/rules/audit"
	"github.com/paved-idp/paved/internal/provision/spec"
	"github.com/paved-idp/paved/internal/run"
)

// requests builds the service with every component, one action at a time,
// as the portal would.
func requests(tenant, env string, workload string) []run.PipelineRequest {
	st := run.Stack{Tenant: tenant, Environment: env, Service: "orders"}
	req := func(action string, in map[string]any) run.PipelineRequest {
		return run.PipelineRequest{RunID: "r_1", Action: action, Operation: run.Day2, Stack: st, Team: "payments", Inputs: in}
	}
	create := req(spec.ActionCreateService, map[string]any{
		"name": "orders", "team": "payments", "language": "go", "replicas": float64(1),
		"tenant": tenant, "environment": env, "workload": workload, "schedule": "*/5 * * * *", "cache": true,
	})
	create.Operation = run.Create
	return []run.PipelineRequest{
		create,
		req(spec.ActionAddBucket, map[string]any{"bucketName": "invoices", "versioning": true, "retentionDays": float64(30)}),
		req(spec.ActionAddQueue, map[string]any{"queueName": "jobs", "fifo": false, "visibilityTimeoutSeconds": float64(60), "maxReceiveCount": float64(3)}),
		req(spec.ActionAddQueue, map[string]any{"queueName": "ledger", "fifo": true}),
		req(spec.ActionAddTopic, map[string]any{"topicName": "events"}),
		req(spec.ActionAddTable, map[string]any{"tableName": "carts", "hashKey": "cartId", "rangeKey": "itemId"}),
		req(spec.ActionAddDatabase, map[string]any{"databaseName": "main"}),
		req(spec.ActionAddSecret, map[string]any{"secretName": "stripe"}),
	}
}

// plan applies the requests in order, carrying the model between runs as
// the pipeline does.
func plan(t *testing.T, cfg *platform.Config, reqs []run.PipelineRequest) *program.Plan {
	t.Helper()
	var prev *spec.Service
	var p *program.Plan
	for _, r := range reqs {
		var err error
		p, err = program.NewPlan(cfg, prev, r)
		if err != nil {
			t.Fatalf("plan %s: %v", r.Action, err)
		}
		prev = p.Model
	}
	return p
}

func deploy(t *testing.T, cfg *platform.Config, p *program.Plan) *provisiontest.Mocks {
	t.Helper()
	m, err := provisiontest.Run(t, p.Target.StackName(), func(ctx *pulumi.Context) error {
		return program.Deploy(ctx, cfg, p)
	})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return m
}

func names(rs []rules.Resource, typ rules.Type) []string {
	var out []string
	for _, r := range rs {
		if r.Type == typ {
			out = append(out, r.Name)
		}
	}
	slices.Sort(out)
	return out
}

// everyCombination deploys the full service (every component) in every
// environment and tenancy, for every workload kind, and calls check with
// what was registered.
func everyCombination(t *testing.T, check func(t *testing.T, cfg *platform.Config, p *program.Plan, m *provisiontest.Mocks)) {
	cfg := provisiontest.Config(t)
	for _, env := range provisiontest.Environments {
		for _, tenancy := range provisiontest.Tenancies {
			for _, kind := range []string{spec.Deployment, spec.StatefulSet, spec.CronJob} {
				t.Run(env+"/"+string(tenancy)+"/"+kind, func(t *testing.T) {
					p := plan(t, cfg, requests(provisiontest.TenantFor(tenancy), env, kind))
					check(t, cfg, p, deploy(t, cfg, p))
				})
			}
		}
	}
}

// TestEveryCombinationKeepsEveryRule runs every resource rule over every
// combination.
func TestEveryCombinationKeepsEveryRule(t *testing.T) {
	everyCombination(t, func(t *testing.T, _ *platform.Config, p *program.Plan, m *provisiontest.Mocks) {
		rs := m.Resources()
		for _, v := range audit.Check(p.Target, rs) {
			t.Errorf("%v", v)
		}
		if len(rs) < 20 {
			t.Errorf("only %d resources registered", len(rs))
		}
	})
}

// TestEveryResourceIsStamped: every resource of every component, as the
// mock monitor received it, is named under the stack, is a child of its
// paved component, asks for the provider version the platform pins (not
// the SDK's own default), and carries the ownership tags (AWS) or labels
// (Kubernetes) wherever its SDK type can carry them. Across the
// combinations every type the rules know is registered, so every token
// they judge by is one the typed SDKs really send.
func TestEveryResourceIsStamped(t *testing.T) {
	seen := map[rules.Type]bool{}
	everyCombination(t, func(t *testing.T, cfg *platform.Config, p *program.Plan, m *provisiontest.Mocks) {
		for _, problem := range provisiontest.StampProblems(m, p.Target, cfg.Providers) {
			t.Error(problem)
		}
		for _, typ := range provisiontest.Types(m.Resources()) {
			seen[typ] = true
		}
	})
	for _, typ := range rules.Types() {
		if !seen[typ] {
			t.Errorf("type %s is known to the rules but never registered", typ)
		}
	}
}

// TestResourceNames pins the registered resources and their names for a
// single-tenant and a multi-tenant service.
func TestResourceNames(t *testing.T) {
	cfg := provisiontest.Config(t)
	cases := []struct {
		tenancy platform.Tenancy
		env     string
		want    map[rules.Type][]string
	}{
		{platform.Single, "prod", map[rules.Type][]string{
			rules.KMSKey:               {"acme-prod-orders-key"},
			rules.KMSAlias:             {"acme-prod-orders-key-alias"},
			rules.ECRRepository:        {"acme-prod-orders"},
			rules.SQSQueue:             {"acme-prod-orders-jobs", "acme-prod-orders-jobs-dlq", "acme-prod-orders-ledger", "acme-prod-orders-ledger-dlq"},
			rules.SNSTopic:             {"acme-prod-orders-events"},
			rules.S3Bucket:             {"acme-prod-orders-invoices"},
			rules.S3BucketPolicy:       {"acme-prod-orders-invoices-tls-only"},
			rules.DynamoDBTable:        {"acme-prod-orders-carts"},
			rules.RDSCluster:           {"acme-prod-orders-main"},
			rules.RDSClusterInstance:   {"acme-prod-orders-main-1", "acme-prod-orders-main-2"},
			rules.EC2SecurityGroup:     {"acme-prod-orders-main-db"},
			rules.SecretsManagerSecret: {"acme-prod-orders-stripe"},
			rules.IAMRole:              {"acme-prod-orders-role"},
			rules.IAMRolePolicy:        {"acme-prod-orders-role-policy"},
			rules.K8sNamespace:         {"acme-prod-orders-ns"},
			rules.K8sServiceAccount:    {"acme-prod-orders-sa"},
			rules.K8sDeployment:        {"acme-prod-orders", "acme-prod-orders-cache"},
			rules.K8sService:           {"acme-prod-orders-cache-svc", "acme-prod-orders-svc"},
			rules.K8sIngress:           {"acme-prod-orders-ing"},
			rules.K8sHPA:               {"acme-prod-orders-hpa"},
			rules.K8sNetworkPolicy:     {"acme-prod-orders-cache-netpol", "acme-prod-orders-netpol"},
		}},
		{platform.Multi, "dev", map[rules.Type][]string{
			rules.KMSKey:             nil, // the tenant's shared key
			rules.K8sNamespace:       nil, // the tenant's shared namespace
			rules.RDSClusterInstance: {"globex-dev-orders-main-1"},
			rules.SQSQueue:           {"globex-dev-orders-jobs", "globex-dev-orders-jobs-dlq", "globex-dev-orders-ledger", "globex-dev-orders-ledger-dlq"},
			rules.K8sPDB:             nil, // production only
		}},
	}
	for _, c := range cases {
		t.Run(string(c.tenancy)+"/"+c.env, func(t *testing.T) {
			p := plan(t, cfg, requests(provisiontest.TenantFor(c.tenancy), c.env, spec.Deployment))
			m := deploy(t, cfg, p)
			for typ, want := range c.want {
				if got := names(m.Resources(), typ); !slices.Equal(got, want) {
					t.Errorf("%s: got %v, want %v", typ, got, want)
				}
			}
			if c.tenancy == platform.Multi && !slices.Contains(m.Invokes(), "aws:kms/getAlias:getAlias") {
				t.Errorf("multi-tenant service did not look up the tenant key")
			}
		})
	}
}

// TestMultiTenantIsolation: shared namespace, tenant-tag IAM conditions and
// the tenant's observability labels.
func TestMultiTenantIsolation(t *testing.T) {
	cfg := provisiontest.Config(t)
	p := plan(t, cfg, requests("globex", "staging", spec.Deployment))
	m := deploy(t, cfg, p)
	for _, r := range m.Resources() {
		if r.Type == rules.IAMRolePolicy {
			pol := r.Inputs["policy"].(string)
			if !strings.Contains(pol, `"aws:ResourceTag/tenant":"globex"`) {
				t.Errorf("multi-tenant policy lacks the tenant condition: %s", pol)
			}
		}
		if r.Type == rules.K8sDeployment {
			labels := r.Inputs["metadata"].(map[string]any)["labels"].(map[string]any)
			if labels["app.kubernetes.io/part-of"] != "globex" || r.Inputs["metadata"].(map[string]any)["namespace"] != "globex-staging" {
				t.Errorf("deployment %s: labels %v", r.Name, labels)
			}
		}
	}
}

// TestBadInputFailsBeforeRegistration: requests the rules forbid fail in
// planning, with the rule's name, before any resource exists.
func TestBadInputFailsBeforeRegistration(t *testing.T) {
	cfg := provisiontest.Config(t)
	base := plan(t, cfg, requests("acme", "dev", spec.Deployment)[:1]).Model
	cases := []struct {
		name, rule string
		req        run.PipelineRequest
		prev       *spec.Service
	}{
		{"public bucket", rules.NoPublicS3, run.PipelineRequest{Action: spec.ActionAddBucket,
			Stack:  run.Stack{Tenant: "acme", Environment: "dev", Service: "orders"},
			Inputs: map[string]any{"bucketName": "www", "public": true}}, base},
		{"oversized database in dev", rules.SizeClass, run.PipelineRequest{Action: spec.ActionAddDatabase,
			Stack:  run.Stack{Tenant: "acme", Environment: "dev", Service: "orders"},
			Inputs: map[string]any{"databaseName": "main", "instanceClass": "db.r7g.xlarge"}}, base},
		{"public database", rules.NoPublicDatabase, run.PipelineRequest{Action: spec.ActionAddDatabase,
			Stack:  run.Stack{Tenant: "acme", Environment: "dev", Service: "orders"},
			Inputs: map[string]any{"databaseName": "main", "public": true}}, base},
		{"unknown tenant", rules.KnownTenant, run.PipelineRequest{Action: spec.ActionCreateService, Team: "payments",
			Stack:  run.Stack{Tenant: "umbrella", Environment: "dev", Service: "orders"},
			Inputs: map[string]any{"name": "orders", "team": "payments"}}, nil},
		{"unknown environment", rules.KnownEnvironment, run.PipelineRequest{Action: spec.ActionCreateService, Team: "payments",
			Stack:  run.Stack{Tenant: "acme", Environment: "qa", Service: "orders"},
			Inputs: map[string]any{"name": "orders", "team": "payments"}}, nil},
		{"environment not allowed for tenant", rules.KnownEnvironment, run.PipelineRequest{Action: spec.ActionCreateService, Team: "payments",
			Stack:  run.Stack{Tenant: "initech", Environment: "prod", Service: "orders"},
			Inputs: map[string]any{"name": "orders", "team": "payments"}}, nil},
		{"too many replicas in dev", rules.SizeClass, run.PipelineRequest{Action: spec.ActionCreateService, Team: "payments",
			Stack:  run.Stack{Tenant: "acme", Environment: "dev", Service: "orders"},
			Inputs: map[string]any{"name": "orders", "replicas": float64(12)}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The whole run, as cmd/provision does it: plan, then deploy.
			stack := c.req.Stack.Tenant + "-" + c.req.Stack.Environment + "-" + c.req.Stack.Service
			m, err := provisiontest.Run(t, stack, func(ctx *pulumi.Context) error {
				p, err := program.NewPlan(cfg, c.prev, c.req)
				if err != nil {
					return err
				}
				return program.Deploy(ctx, cfg, p)
			})
			if err == nil || !strings.Contains(err.Error(), "rule "+c.rule+":") {
				t.Fatalf("error %v does not name rule %s", err, c.rule)
			}
			if n, k := len(m.Registered()), len(m.Components()); n+k != 0 {
				t.Fatalf("%d resources and %d components registered before the refusal", n, k)
			}
		})
	}
}

func TestDeployRefusesAnotherStack(t *testing.T) {
	cfg := provisiontest.Config(t)
	p := plan(t, cfg, requests("acme", "dev", spec.Deployment)[:1])
	m, err := provisiontest.Run(t, "acme-prod-orders", func(ctx *pulumi.Context) error {
		return program.Deploy(ctx, cfg, p)
	})
	if err == nil || !strings.Contains(err.Error(), "acme-dev-orders") {
		t.Fatalf("err = %v", err)
	}
	if n := len(m.Resources()); n != 0 {
		t.Fatalf("%d resources registered on the wrong stack", n)
	}
}

// TestEveryResourceIsPriced: paved's price table prices (or lists as free
// or use-only) every resource the golden path makes, in every combination,
// so a run's cost estimate never silently leaves one out; the full service
// costs something (its pods, its database's instances, its key, secret).
func TestEveryResourceIsPriced(t *testing.T) {
	prices, err := cost.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	everyCombination(t, func(t *testing.T, _ *platform.Config, p *program.Plan, m *provisiontest.Mocks) {
		var rs []cost.Resource
		for _, r := range m.Resources() {
			rs = append(rs, cost.Resource{Type: string(r.Type), Name: r.Name, Inputs: r.Inputs})
		}
		c := prices.Estimate(nil, rs)
		t.Logf("%s: %s", p.Target.StackName(), c.Label())
		if len(c.Unpriced) > 0 || c.Monthly <= 0 || c.Delta != c.Monthly {
			t.Fatalf("estimate of %s: %+v", p.Target.StackName(), c)
		}
	})
}
