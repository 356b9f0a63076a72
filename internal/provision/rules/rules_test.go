package rules_test

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/program"
	"github.com/paved-idp/paved/internal/provision/provisiontest"
	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/rules"
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
		{Action: spec.ActionCreateService, Stack: st, Team: "payments", Inputs: map[string]any{"workload": "statefulset"}},
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

func first(rs []rules.Resource, typ res.Type) map[string]any {
	for _, r := range rs {
		if r.Type == typ {
			return r.Inputs
		}
	}
	panic("no " + typ)
}

func m(v any) map[string]any { return v.(map[string]any) }

// TestEachRuleCatchesItsViolation breaks one thing at a time in a
// compliant stack and expects exactly the rule that forbids it to fire.
// Together with TestEveryCombinationKeepsEveryRule (program package) this
// proves each rule: compliant stacks pass, and a violation is caught.
func TestEachRuleCatchesItsViolation(t *testing.T) {
	cases := []struct {
		rule, env, tenant string
		breakIt           func(rs []rules.Resource)
	}{
		{rules.EncryptionAtRest, "dev", "acme", func(rs []rules.Resource) { delete(first(rs, res.SQSQueue), "kmsMasterKeyId") }},
		{rules.EncryptionAtRest, "prod", "acme", func(rs []rules.Resource) { first(rs, res.RDSCluster)["storageEncrypted"] = false }},
		{rules.EncryptionAtRest, "dev", "globex", func(rs []rules.Resource) {
			m(m(first(rs, res.S3Encryption)["rules"].([]any)[0])["applyServerSideEncryptionByDefault"])["sseAlgorithm"] = "AES256"
		}},
		{rules.EncryptionAtRest, "dev", "acme", func(rs []rules.Resource) {
			m(first(rs, res.DynamoDBTable)["serverSideEncryption"])["enabled"] = false
		}},
		{rules.EncryptionAtRest, "dev", "acme", func(rs []rules.Resource) { delete(first(rs, res.SecretsManagerSecret), "kmsKeyId") }},
		{rules.EncryptionAtRest, "dev", "acme", func(rs []rules.Resource) {
			m(first(rs, res.ECRRepository)["encryptionConfigurations"].([]any)[0])["encryptionType"] = "AES256"
		}},
		{rules.EncryptionAtRest, "dev", "acme", func(rs []rules.Resource) {
			vct := m(m(first(rs, res.K8sStatefulSet)["spec"])["volumeClaimTemplates"].([]any)[0])
			m(vct["spec"])["storageClassName"] = "gp2"
		}},
		{rules.NoPublicS3, "dev", "acme", func(rs []rules.Resource) { first(rs, res.S3PublicAccessBlock)["blockPublicPolicy"] = false }},
		{rules.NoPublicS3, "prod", "globex", func(rs []rules.Resource) { first(rs, res.S3Bucket)["acl"] = "public-read" }},
		{rules.NoPublicS3, "dev", "acme", func(rs []rules.Resource) {
			m(first(rs, res.S3OwnershipControls)["rule"])["objectOwnership"] = "ObjectWriter"
		}},
		{rules.TLSOnlyBucketPolicy, "dev", "acme", func(rs []rules.Resource) {
			p := first(rs, res.S3BucketPolicy)
			p["policy"] = strings.Replace(p["policy"].(string), `"false"`, `"true"`, 1)
		}},
		{rules.NoPublicDatabase, "prod", "acme", func(rs []rules.Resource) { first(rs, res.RDSClusterInstance)["publiclyAccessible"] = true }},
		{rules.NoPublicDatabase, "dev", "globex", func(rs []rules.Resource) {
			m(first(rs, res.EC2SecurityGroup)["ingress"].([]any)[0])["cidrBlocks"] = []any{"0.0.0.0/0"}
		}},
		{rules.LeastPrivilegeIAM, "dev", "acme", func(rs []rules.Resource) {
			p := first(rs, res.IAMRolePolicy)
			p["policy"] = strings.Replace(p["policy"].(string), `"sqs:SendMessage"`, `"sqs:*"`, 1)
		}},
		{rules.LeastPrivilegeIAM, "prod", "globex", func(rs []rules.Resource) {
			p := first(rs, res.IAMRolePolicy)
			p["policy"] = strings.Replace(p["policy"].(string), `"Resource":["arn:aws:sns`, `"Resource":["*","arn:aws:sns`, 1)
		}},
		{rules.LeastPrivilegeIAM, "dev", "acme", func(rs []rules.Resource) {
			r := first(rs, res.IAMRole)
			r["assumeRolePolicy"] = strings.Replace(r["assumeRolePolicy"].(string), ":orders\"", ":default\"", 1)
		}},
		{rules.DeletionProtection, "prod", "acme", func(rs []rules.Resource) { first(rs, res.RDSCluster)["deletionProtection"] = false }},
		{rules.DeletionProtection, "dev", "acme", func(rs []rules.Resource) { first(rs, res.DynamoDBTable)["deletionProtectionEnabled"] = true }},
		{rules.Backups, "prod", "globex", func(rs []rules.Resource) { first(rs, res.RDSCluster)["backupRetentionPeriod"] = float64(1) }},
		{rules.Backups, "staging", "acme", func(rs []rules.Resource) {
			m(first(rs, res.DynamoDBTable)["pointInTimeRecovery"])["enabled"] = true
		}},
		{rules.MultiAZ, "prod", "acme", func(rs []rules.Resource) {
			// The standby now belongs to another cluster.
			first(rs, res.RDSClusterInstance)["clusterIdentifier"] = "elsewhere"
		}},
		{rules.SizeClass, "dev", "acme", func(rs []rules.Resource) { first(rs, res.RDSClusterInstance)["instanceClass"] = "db.r7g.xlarge" }},
		{rules.SizeClass, "dev", "globex", func(rs []rules.Resource) { m(first(rs, res.K8sHPA)["spec"])["maxReplicas"] = float64(50) }},
		{rules.OwnershipTags, "dev", "acme", func(rs []rules.Resource) { delete(m(first(rs, res.SNSTopic)["tags"]), "cost-center") }},
		{rules.OwnershipTags, "prod", "globex", func(rs []rules.Resource) {
			m(m(first(rs, res.K8sService)["metadata"])["labels"])["team"] = "someone-else"
		}},
		{rules.WorkloadHygiene, "dev", "acme", func(rs []rules.Resource) {
			c := m(m(m(m(first(rs, res.K8sStatefulSet)["spec"])["template"])["spec"])["containers"].([]any)[0])
			delete(c, "livenessProbe")
		}},
		{rules.NamespaceIsolation, "dev", "globex", func(rs []rules.Resource) {
			m(first(rs, res.K8sServiceAccount)["metadata"])["namespace"] = "default"
		}},
	}
	for _, c := range cases {
		t.Run(c.rule+"/"+c.env+"/"+c.tenant, func(t *testing.T) {
			p, rs := deployed(t, c.tenant, c.env)
			if vs := rules.Check(p.Target, rs); len(vs) != 0 {
				t.Fatalf("compliant stack breaks rules: %v", vs)
			}
			c.breakIt(rs)
			vs := rules.Check(p.Target, rs)
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

// TestEveryRuleIsExercised keeps the table above complete.
func TestEveryRuleIsExercised(t *testing.T) {
	src := []string{rules.EncryptionAtRest, rules.NoPublicS3, rules.TLSOnlyBucketPolicy, rules.NoPublicDatabase,
		rules.LeastPrivilegeIAM, rules.DeletionProtection, rules.Backups, rules.MultiAZ, rules.SizeClass,
		rules.OwnershipTags, rules.WorkloadHygiene, rules.NamespaceIsolation}
	if len(src) != len(rules.All) {
		t.Fatalf("%d rules, %d exercised", len(rules.All), len(src))
	}
	for i, r := range rules.All {
		if r.ID != src[i] {
			t.Errorf("rule %d is %s, test table has %s", i, r.ID, src[i])
		}
	}
}
