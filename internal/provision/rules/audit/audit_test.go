package audit_test

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/program"
	"github.com/paved-idp/paved/internal/provision/provisiontest"
	"github.com/paved-idp/paved/internal/provision/rules"
	"github.com/paved-idp/paved/internal/provision/rules/audit"
	"github.com/paved-idp/paved/internal/provision/spec"
	"github.com/paved-idp/paved/internal/run"
)

// deployed returns what the full service registers in env for tenant.
func deployed(t *testing.T, tenant, env string) (*program.Plan, []rules.Resource) {
	t.Helper()
	cfg := provisiontest.Config(t)
	st := run.Stack{Tenant: tenant, Environment: env, Service: "orders"}
	var prev *spec.Service
	var p *program.Plan
	for _, r := range []run.PipelineRequest{
		{Action: spec.ActionCreateService, Stack: st, Team: "payments", Inputs: map[string]any{"workload": "statefulset", "cache": true}},
		{Action: spec.ActionAddBucket, Stack: st, Inputs: map[string]any{"bucketName": "files"}},
		{Action: spec.ActionAddQueue, Stack: st, Inputs: map[string]any{"queueName": "jobs"}},
		{Action: spec.ActionAddTopic, Stack: st, Inputs: map[string]any{"topicName": "events"}},
		{Action: spec.ActionAddTable, Stack: st, Inputs: map[string]any{"tableName": "carts"}},
		{Action: spec.ActionAddDatabase, Stack: st, Inputs: map[string]any{"databaseName": "main"}},
		{Action: spec.ActionAddSecret, Stack: st, Inputs: map[string]any{"secretName": "api"}},
	} {
		var err error
		if p, err = program.NewPlan(cfg, prev, r); err != nil {
			t.Fatal(err)
		}
		prev = p.Model
	}
	m, err := provisiontest.Run(t, p.Target.StackName(), func(ctx *pulumi.Context) error { return program.Deploy(ctx, cfg, p) })
	if err != nil {
		t.Fatal(err)
	}
	return p, m.Resources()
}

func first(rs []rules.Resource, typ rules.Type) map[string]any {
	for _, r := range rs {
		if r.Type == typ {
			return r.Inputs
		}
	}
	panic("no " + typ)
}

// named finds the inputs of the resource of type typ whose name ends in
// suffix.
func named(rs []rules.Resource, typ rules.Type, suffix string) map[string]any {
	for _, r := range rs {
		if r.Type == typ && strings.HasSuffix(r.Name, suffix) {
			return r.Inputs
		}
	}
	panic("no " + string(typ) + " *" + suffix)
}

func m(v any) map[string]any { return v.(map[string]any) }

// pod is the StatefulSet's pod template, app the container in it.
func pod(rs []rules.Resource) map[string]any {
	return m(m(first(rs, rules.K8sStatefulSet)["spec"])["template"])
}

func app(rs []rules.Resource) map[string]any { return m(m(pod(rs)["spec"])["containers"].([]any)[0]) }

// TestEachRuleCatchesItsViolation breaks one thing at a time in a
// compliant stack and expects exactly the rule that forbids it to fire.
// Together with TestEveryCombinationKeepsEveryRule (program package) this
// proves each rule: compliant stacks pass, and a violation is caught.
func TestEachRuleCatchesItsViolation(t *testing.T) {
	for _, c := range violations {
		t.Run(c.rule+"/"+c.env+"/"+c.tenant, func(t *testing.T) {
			p, rs := deployed(t, c.tenant, c.env)
			if vs := audit.Check(p.Target, rs); len(vs) != 0 {
				t.Fatalf("compliant stack breaks rules: %v", vs)
			}
			c.breakIt(rs)
			vs := audit.Check(p.Target, rs)
			if len(vs) == 0 {
				t.Fatalf("rule %s did not fire", c.rule)
			}
			for _, v := range vs {
				if v.Rule != c.rule {
					t.Errorf("unexpected %v", v)
				}
			}
		})
	}
}

// violations break one property each; every rule has at least one.
var violations = []struct {
	rule, env, tenant string
	breakIt           func(rs []rules.Resource)
}{
	{rules.EncryptionAtRest, "dev", "acme", func(rs []rules.Resource) { delete(first(rs, rules.SQSQueue), "kmsMasterKeyId") }},
	{rules.EncryptionAtRest, "prod", "acme", func(rs []rules.Resource) { first(rs, rules.RDSCluster)["storageEncrypted"] = false }},
	{rules.EncryptionAtRest, "dev", "globex", func(rs []rules.Resource) {
		m(m(first(rs, rules.S3Encryption)["rules"].([]any)[0])["applyServerSideEncryptionByDefault"])["sseAlgorithm"] = "AES256"
	}},
	{rules.EncryptionAtRest, "dev", "acme", func(rs []rules.Resource) {
		m(first(rs, rules.DynamoDBTable)["serverSideEncryption"])["enabled"] = false
	}},
	{rules.EncryptionAtRest, "dev", "acme", func(rs []rules.Resource) { delete(first(rs, rules.SecretsManagerSecret), "kmsKeyId") }},
	{rules.EncryptionAtRest, "dev", "acme", func(rs []rules.Resource) {
		m(first(rs, rules.ECRRepository)["encryptionConfigurations"].([]any)[0])["encryptionType"] = "AES256"
	}},
	{rules.EncryptionAtRest, "dev", "acme", func(rs []rules.Resource) {
		vct := m(m(first(rs, rules.K8sStatefulSet)["spec"])["volumeClaimTemplates"].([]any)[0])
		m(vct["spec"])["storageClassName"] = "gp2"
	}},
	{rules.NoPublicS3, "dev", "acme", func(rs []rules.Resource) { first(rs, rules.S3PublicAccessBlock)["blockPublicPolicy"] = false }},
	{rules.NoPublicS3, "prod", "globex", func(rs []rules.Resource) { first(rs, rules.S3Bucket)["acl"] = "public-read" }},
	{rules.NoPublicS3, "dev", "acme", func(rs []rules.Resource) {
		m(first(rs, rules.S3OwnershipControls)["rule"])["objectOwnership"] = "ObjectWriter"
	}},
	{rules.TLSOnlyBucketPolicy, "dev", "acme", func(rs []rules.Resource) {
		p := first(rs, rules.S3BucketPolicy)
		p["policy"] = strings.Replace(p["policy"].(string), `"false"`, `"true"`, 1)
	}},
	{rules.NoPublicDatabase, "prod", "acme", func(rs []rules.Resource) { first(rs, rules.RDSClusterInstance)["publiclyAccessible"] = true }},
	{rules.NoPublicDatabase, "dev", "globex", func(rs []rules.Resource) {
		m(first(rs, rules.EC2SecurityGroup)["ingress"].([]any)[0])["cidrBlocks"] = []any{"0.0.0.0/0"}
	}},
	{rules.LeastPrivilegeIAM, "dev", "acme", func(rs []rules.Resource) {
		p := first(rs, rules.IAMRolePolicy)
		p["policy"] = strings.Replace(p["policy"].(string), `"sqs:SendMessage"`, `"sqs:*"`, 1)
	}},
	{rules.LeastPrivilegeIAM, "prod", "globex", func(rs []rules.Resource) {
		p := first(rs, rules.IAMRolePolicy)
		p["policy"] = strings.Replace(p["policy"].(string), `"Resource":["arn:aws:sns`, `"Resource":["*","arn:aws:sns`, 1)
	}},
	{rules.LeastPrivilegeIAM, "dev", "acme", func(rs []rules.Resource) {
		r := first(rs, rules.IAMRole)
		r["assumeRolePolicy"] = strings.Replace(r["assumeRolePolicy"].(string), ":orders\"", ":default\"", 1)
	}},
	{rules.DeletionProtection, "prod", "acme", func(rs []rules.Resource) { first(rs, rules.RDSCluster)["deletionProtection"] = false }},
	{rules.DeletionProtection, "dev", "acme", func(rs []rules.Resource) { first(rs, rules.DynamoDBTable)["deletionProtectionEnabled"] = true }},
	{rules.Backups, "prod", "globex", func(rs []rules.Resource) { first(rs, rules.RDSCluster)["backupRetentionPeriod"] = float64(1) }},
	{rules.Backups, "staging", "acme", func(rs []rules.Resource) {
		m(first(rs, rules.DynamoDBTable)["pointInTimeRecovery"])["enabled"] = true
	}},
	{rules.MultiAZ, "prod", "acme", func(rs []rules.Resource) {
		// The standby now belongs to another cluster.
		first(rs, rules.RDSClusterInstance)["clusterIdentifier"] = "elsewhere"
	}},
	{rules.SizeClass, "dev", "acme", func(rs []rules.Resource) { first(rs, rules.RDSClusterInstance)["instanceClass"] = "db.r7g.xlarge" }},
	{rules.SizeClass, "dev", "globex", func(rs []rules.Resource) { m(first(rs, rules.K8sHPA)["spec"])["maxReplicas"] = float64(50) }},
	{rules.OwnershipTags, "dev", "acme", func(rs []rules.Resource) { delete(m(first(rs, rules.SNSTopic)["tags"]), "cost-center") }},
	{rules.OwnershipTags, "prod", "globex", func(rs []rules.Resource) {
		m(m(first(rs, rules.K8sService)["metadata"])["labels"])["team"] = "someone-else"
	}},
	{rules.WorkloadHygiene, "dev", "acme", func(rs []rules.Resource) {
		c := m(m(m(m(first(rs, rules.K8sStatefulSet)["spec"])["template"])["spec"])["containers"].([]any)[0])
		delete(c, "livenessProbe")
	}},
	{rules.NamespaceIsolation, "dev", "globex", func(rs []rules.Resource) {
		m(first(rs, rules.K8sServiceAccount)["metadata"])["namespace"] = "default"
	}},
	{rules.RestrictedPods, "dev", "acme", func(rs []rules.Resource) { m(app(rs)["securityContext"])["readOnlyRootFilesystem"] = false }},
	{rules.RestrictedPods, "prod", "globex", func(rs []rules.Resource) { delete(m(app(rs)["securityContext"]), "capabilities") }},
	{rules.RestrictedPods, "staging", "acme", func(rs []rules.Resource) {
		delete(m(app(rs)["securityContext"]), "runAsNonRoot")
		delete(m(m(pod(rs)["spec"])["securityContext"]), "runAsNonRoot")
	}},
	{rules.RestrictedPods, "dev", "globex", func(rs []rules.Resource) {
		c := m(m(m(m(named(rs, rules.K8sDeployment, "-cache")["spec"])["template"])["spec"])["containers"].([]any)[0])
		m(c["securityContext"])["allowPrivilegeEscalation"] = true
	}},
	{rules.AutoscalerReplicas, "dev", "acme", func(rs []rules.Resource) { m(first(rs, rules.K8sStatefulSet)["spec"])["replicas"] = float64(2) }},
	{rules.AutoscalerReplicas, "prod", "globex", func(rs []rules.Resource) {
		m(m(first(rs, rules.K8sHPA)["spec"])["scaleTargetRef"])["name"] = "other"
	}},
	{rules.HeadlessStatefulSet, "dev", "acme", func(rs []rules.Resource) {
		delete(m(named(rs, rules.K8sService, "-headless-svc")["spec"]), "clusterIP")
	}},
	{rules.HeadlessStatefulSet, "prod", "globex", func(rs []rules.Resource) { m(first(rs, rules.K8sStatefulSet)["spec"])["serviceName"] = "orders" }},
	{rules.TenantTelemetry, "prod", "acme", func(rs []rules.Resource) {
		for _, e := range app(rs)["env"].([]any) {
			if m(e)["name"] == "OTEL_RESOURCE_ATTRIBUTES" {
				m(e)["value"] = "service.name=orders"
			}
		}
	}},
	{rules.TenantTelemetry, "dev", "globex", func(rs []rules.Resource) { m(m(pod(rs)["metadata"])["labels"])["environment"] = "prod" }},
	{rules.MultiAZ, "prod", "globex", func(rs []rules.Resource) {
		m(m(first(rs, rules.K8sPDB)["spec"])["selector"])["matchLabels"] = map[string]any{"app": "other"}
	}},
	{rules.MultiAZ, "prod", "acme", func(rs []rules.Resource) { delete(m(pod(rs)["spec"]), "topologySpreadConstraints") }},
	{rules.SizeClass, "staging", "acme", func(rs []rules.Resource) { m(m(app(rs)["resources"])["requests"])["memory"] = "4Gi" }},
}

// TestEveryRuleIsExercised keeps the table above complete: every rule has
// a violation that only it catches.
func TestEveryRuleIsExercised(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range violations {
		seen[v.rule] = true
	}
	for _, r := range audit.All {
		if !seen[r.ID] {
			t.Errorf("rule %s has no violation in the table", r.ID)
		}
		delete(seen, r.ID)
	}
	for id := range seen {
		t.Errorf("the table breaks %s, which is no resource rule", id)
	}
}
