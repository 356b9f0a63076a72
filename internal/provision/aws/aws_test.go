package aws_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/aws"
	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/provisiontest"
	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/rules"
	"github.com/paved-idp/paved/internal/provision/spec"
)

// stack is what one component registered for one target.
type stack struct {
	t      platform.Target
	m      *provisiontest.Mocks
	rs     []rules.Resource
	keyArn string
}

// in returns the inputs of the one resource of type typ named <stack>-<suffix>.
func (s stack) in(tb testing.TB, typ rules.Type, suffix string) map[string]any {
	tb.Helper()
	return provisiontest.Only(tb, s.rs, typ, s.t.Name(suffix)).Inputs
}

// each registers build, after the stack's key, for a production and a
// non-production environment × both tenancies, checks that every resource
// is stamped (name, parent, pinned version, tags) and calls check.
func each(t *testing.T, build func(s res.Scope, key aws.Key) error, check func(t *testing.T, s stack)) {
	cfg := provisiontest.Config(t)
	for _, env := range []string{"dev", "prod"} {
		for _, tenancy := range provisiontest.Tenancies {
			t.Run(env+"/"+string(tenancy), func(t *testing.T) {
				tg := provisiontest.Target(t, provisiontest.TenantFor(tenancy), env, "orders", tenancy)
				m, err := provisiontest.Run(t, tg.StackName(), func(ctx *pulumi.Context) error {
					s := res.Scope{Ctx: ctx, Target: tg, Providers: cfg.Providers}
					key, err := aws.NewKey(s)
					if err != nil {
						return err
					}
					return build(s, key)
				})
				if err != nil {
					t.Fatal(err)
				}
				if p := provisiontest.StampProblems(m, tg, cfg.Providers); len(p) > 0 {
					t.Errorf("unstamped: %v", p)
				}
				// The key's ARN as the mocks make it up: the service's own
				// key, or the tenant's shared key.
				keyArn := "arn:aws:kms:eu-west-1:111122223333:" + tg.Name("key")
				if tenancy == platform.Multi {
					keyArn = "arn:aws:kms:eu-west-1:111122223333:key/shared-" + tg.Tenant.Name + "-" + env
				}
				check(t, stack{t: tg, m: m, rs: m.Resources(), keyArn: keyArn})
			})
		}
	}
}

func none(res.Scope, aws.Key) error { return nil }

func get(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[k]
		case []any:
			if k != "0" || len(c) == 0 {
				return nil
			}
			cur = c[0]
		default:
			return nil
		}
	}
	return cur
}

// want fails for every path whose value differs.
func want(t *testing.T, what string, in map[string]any, exp map[string]any) {
	t.Helper()
	for path, v := range exp {
		if got := get(in, path); got != v {
			t.Errorf("%s %s = %v (%T), want %v", what, path, got, got, v)
		}
	}
}

func byEnv(t platform.Target, prod, other any) any {
	if t.Production() {
		return prod
	}
	return other
}

// TestKeyPerTenancy: a single-tenant service gets its own rotated key and
// alias; a multi-tenant one looks up its tenant's shared key and registers
// none.
func TestKeyPerTenancy(t *testing.T) {
	each(t, none, func(t *testing.T, s stack) {
		if s.t.Tenancy == platform.Multi {
			if len(s.rs) != 0 || !slices.Equal(s.m.Invokes(), []string{"aws:kms/getAlias:getAlias"}) {
				t.Errorf("multi-tenant key: %d resources, invokes %v", len(s.rs), s.m.Invokes())
			}
			return
		}
		want(t, "key", s.in(t, rules.KMSKey, "key"), map[string]any{
			"enableKeyRotation": true, "deletionWindowInDays": byEnv(s.t, 30.0, 7.0),
		})
		want(t, "alias", s.in(t, rules.KMSAlias, "key-alias"), map[string]any{
			"name": "alias/" + s.t.StackName(), "targetKeyId": s.t.Name("key") + "-key-id",
		})
	})
}

// TestQueueAndDeadLetterQueue: both encrypted with the stack's key, the
// queue redriving to its DLQ after maxReceiveCount, FIFO names suffixed.
func TestQueueAndDeadLetterQueue(t *testing.T) {
	each(t, func(s res.Scope, key aws.Key) error {
		_, err := aws.NewQueue(s, key, spec.Queue{Name: "jobs", FIFO: true, VisibilityTimeoutSeconds: 60, MaxReceiveCount: 3})
		return err
	}, func(t *testing.T, s stack) {
		dlq, q := s.in(t, rules.SQSQueue, "jobs-dlq"), s.in(t, rules.SQSQueue, "jobs")
		want(t, "dlq", dlq, map[string]any{"name": s.t.Name("jobs-dlq") + ".fifo", "kmsMasterKeyId": s.keyArn,
			"messageRetentionSeconds": 1209600.0, "fifoQueue": true})
		want(t, "queue", q, map[string]any{"name": s.t.Name("jobs") + ".fifo", "kmsMasterKeyId": s.keyArn,
			"visibilityTimeoutSeconds": 60.0, "contentBasedDeduplication": true})
		var redrive struct {
			DeadLetterTargetArn string
			MaxReceiveCount     int
		}
		if err := json.Unmarshal([]byte(q["redrivePolicy"].(string)), &redrive); err != nil ||
			redrive.DeadLetterTargetArn != "arn:aws:sqs:eu-west-1:111122223333:"+s.t.Name("jobs-dlq") || redrive.MaxReceiveCount != 3 {
			t.Errorf("redrive policy %v: %+v", err, redrive)
		}
	})
}

// TestTopic: encrypted with the stack's key.
func TestTopic(t *testing.T) {
	each(t, func(s res.Scope, key aws.Key) error {
		_, err := aws.NewTopic(s, key, spec.Topic{Name: "events"})
		return err
	}, func(t *testing.T, s stack) {
		want(t, "topic", s.in(t, rules.SNSTopic, "events"), map[string]any{"name": s.t.Name("events"), "kmsMasterKeyId": s.keyArn})
	})
}

// TestBucketIsPrivateEncryptedAndTLSOnly: the V2 bucket and its six
// configurations, each waiting for the one before.
func TestBucketIsPrivateEncryptedAndTLSOnly(t *testing.T) {
	each(t, func(s res.Scope, key aws.Key) error {
		_, err := aws.NewBucket(s, key, spec.Bucket{Name: "files", RetentionDays: 30})
		return err
	}, func(t *testing.T, s stack) {
		name := s.t.Name("files")
		want(t, "bucket", s.in(t, rules.S3Bucket, "files"), map[string]any{"bucket": name, "forceDestroy": !s.t.Production()})
		want(t, "ownership", s.in(t, rules.S3OwnershipControls, "files-ownership"), map[string]any{
			"bucket": name, "rule.objectOwnership": "BucketOwnerEnforced"})
		want(t, "public access block", s.in(t, rules.S3PublicAccessBlock, "files-public-access-block"), map[string]any{
			"blockPublicAcls": true, "blockPublicPolicy": true, "ignorePublicAcls": true, "restrictPublicBuckets": true})
		want(t, "encryption", s.in(t, rules.S3Encryption, "files-encryption"), map[string]any{
			"rules.0.applyServerSideEncryptionByDefault.sseAlgorithm":   "aws:kms",
			"rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId": s.keyArn,
			"rules.0.bucketKeyEnabled":                                  true})
		want(t, "versioning", s.in(t, rules.S3Versioning, "files-versioning"), map[string]any{
			"versioningConfiguration.status": byEnv(s.t, "Enabled", "Suspended")})
		want(t, "lifecycle", s.in(t, rules.S3Lifecycle, "files-lifecycle"), map[string]any{
			"rules.0.status": "Enabled", "rules.0.expiration.days": 30.0,
			"rules.0.noncurrentVersionExpiration.noncurrentDays":         byEnv(s.t, 90.0, 7.0),
			"rules.0.abortIncompleteMultipartUpload.daysAfterInitiation": 7.0})
		pol := s.in(t, rules.S3BucketPolicy, "files-tls-only")["policy"].(string)
		if !strings.Contains(pol, `"Effect":"Deny"`) || !strings.Contains(pol, `"aws:SecureTransport":"false"`) ||
			!strings.Contains(pol, `"arn:aws:s3:::`+name+`/*"`) {
			t.Errorf("bucket policy %s", pol)
		}
		// Each configuration waits for the previous one.
		byName := map[string]provisiontest.Registered{}
		for _, r := range s.m.Registered() {
			byName[r.Name] = r
		}
		order := []string{"ownership", "public-access-block", "encryption", "versioning", "lifecycle", "tls-only"}
		for i := 1; i < len(order); i++ {
			r, prev := byName[s.t.Name("files", order[i])], s.t.Name("files", order[i-1])
			if !slices.ContainsFunc(r.DependsOn, func(u string) bool { return strings.HasSuffix(u, "::"+prev) }) {
				t.Errorf("%s does not wait for %s: %v", r.Name, prev, r.DependsOn)
			}
		}
	})
}

// TestTableOnDemandEncryptedProtectedInProd.
func TestTableOnDemandEncryptedProtectedInProd(t *testing.T) {
	each(t, func(s res.Scope, key aws.Key) error {
		_, err := aws.NewTable(s, key, spec.Table{Name: "carts", HashKey: "cartId", RangeKey: "itemId"})
		return err
	}, func(t *testing.T, s stack) {
		want(t, "table", s.in(t, rules.DynamoDBTable, "carts"), map[string]any{
			"billingMode": "PAY_PER_REQUEST", "hashKey": "cartId", "rangeKey": "itemId",
			"attributes.0.name": "cartId", "serverSideEncryption.enabled": true, "serverSideEncryption.kmsKeyArn": s.keyArn,
			"pointInTimeRecovery.enabled": s.t.Production(), "deletionProtectionEnabled": s.t.Production()})
	})
}

// TestDatabasePrivateEncryptedSizedPerEnvironment: the security group
// admits only the pod network; the cluster is encrypted, IAM-authenticated,
// protected and backed up in production; production has a standby.
func TestDatabasePrivateEncryptedSizedPerEnvironment(t *testing.T) {
	each(t, func(s res.Scope, key aws.Key) error {
		_, err := aws.NewDatabase(s, key, spec.Database{Name: "main", Engine: "aurora-postgresql"})
		return err
	}, func(t *testing.T, s stack) {
		env := s.t.Environment
		want(t, "security group", s.in(t, rules.EC2SecurityGroup, "main-db"), map[string]any{
			"vpcId": env.VPCID, "ingress.0.cidrBlocks.0": env.ClusterCIDR, "ingress.0.fromPort": 5432.0, "ingress.0.toPort": 5432.0})
		c := s.in(t, rules.RDSCluster, "main")
		want(t, "cluster", c, map[string]any{
			"engine": "aurora-postgresql", "storageEncrypted": true, "kmsKeyId": s.keyArn, "masterUserSecretKmsKeyId": s.keyArn,
			"manageMasterUserPassword": true, "iamDatabaseAuthenticationEnabled": true, "dbSubnetGroupName": env.DBSubnetGroup,
			"vpcSecurityGroupIds.0": s.t.Name("main-db") + "-id", "deletionProtection": s.t.Production(),
			"skipFinalSnapshot": !s.t.Production(), "backupRetentionPeriod": byEnv(s.t, 14.0, 1.0),
			"finalSnapshotIdentifier": byEnv(s.t, s.t.Name("main-final"), nil)})
		n := 0
		for _, r := range s.rs {
			if r.Type == rules.RDSClusterInstance {
				n++
				want(t, r.Name, r.Inputs, map[string]any{"instanceClass": s.t.Size.DatabaseClasses[0],
					"publiclyAccessible": false, "clusterIdentifier": s.t.Name("main") + "-id"})
			}
		}
		if n != byEnv(s.t, 2, 1) {
			t.Errorf("%d instances", n)
		}
	})
}

// TestSecretAndRepository: KMS-encrypted, recoverable longer and never
// force-deleted in production; the repository is immutable and scanned.
func TestSecretAndRepository(t *testing.T) {
	each(t, func(s res.Scope, key aws.Key) error {
		if _, err := aws.NewSecret(s, key, spec.Secret{Name: "stripe"}); err != nil {
			return err
		}
		_, err := aws.NewRepository(s, key)
		return err
	}, func(t *testing.T, s stack) {
		want(t, "secret", s.in(t, rules.SecretsManagerSecret, "stripe"), map[string]any{
			"name": s.t.StackName() + "/stripe", "kmsKeyId": s.keyArn, "recoveryWindowInDays": byEnv(s.t, 30.0, 7.0)})
		repo := provisiontest.Only(t, s.rs, rules.ECRRepository, s.t.Name()).Inputs
		want(t, "repository", repo, map[string]any{
			"imageTagMutability": "IMMUTABLE", "imageScanningConfiguration.scanOnPush": true,
			"encryptionConfigurations.0.encryptionType": "KMS", "encryptionConfigurations.0.kmsKey": s.keyArn,
			"forceDelete": !s.t.Production()})
		want(t, "lifecycle", s.in(t, rules.ECRLifecyclePolicy, "lifecycle"), map[string]any{"repository": repo["name"]})
	})
}

// TestRoleTrustsOnlyTheServiceAccount: IRSA trust for the service's own
// service account, and a multi-tenant role's grants conditioned on the
// tenant tag.
func TestRoleTrustsOnlyTheServiceAccount(t *testing.T) {
	each(t, func(s res.Scope, key aws.Key) error {
		q, err := aws.NewQueue(s, key, spec.Queue{Name: "jobs", MaxReceiveCount: 5})
		if err != nil {
			return err
		}
		_, err = aws.NewRole(s, []aws.Grant{key.Grant(), q.Grant})
		return err
	}, func(t *testing.T, s stack) {
		trust := s.in(t, rules.IAMRole, "role")["assumeRolePolicy"].(string)
		if !strings.Contains(trust, `"system:serviceaccount:`+s.t.Namespace()+`:orders"`) {
			t.Errorf("trust %s", trust)
		}
		p := s.in(t, rules.IAMRolePolicy, "role-policy")
		pol := p["policy"].(string)
		tenantCond := strings.Contains(pol, `"aws:ResourceTag/tenant":"`+s.t.Tenant.Name+`"`)
		if p["role"] != s.t.Name("role") || !strings.Contains(pol, s.keyArn) || tenantCond != (s.t.Tenancy == platform.Multi) {
			t.Errorf("policy on %v: %s", p["role"], pol)
		}
	})
}
