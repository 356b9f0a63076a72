package rules

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/res"
)

// Resource is one registered resource as the engine saw it: plain values,
// every output resolved.
type Resource struct {
	Type    res.Type
	Name    string
	Inputs  map[string]any
	Outputs map[string]any
}

// Rule is a named check over all of a stack's resources.
type Rule struct {
	ID    string
	Title string
	Check func(t platform.Target, rs []Resource) []string
}

// All are the resource rules.
var All = []Rule{
	{EncryptionAtRest, "Encryption at rest everywhere, with KMS where the service has it", checkEncryption},
	{NoPublicS3, "No public S3 bucket", checkPublicS3},
	{TLSOnlyBucketPolicy, "Every bucket policy denies requests without TLS", checkTLSOnly},
	{NoPublicDatabase, "No public database", checkPublicDatabase},
	{LeastPrivilegeIAM, "IAM scoped to the service's own resources", checkLeastPrivilege},
	{DeletionProtection, "Deletion protection in production only", checkDeletionProtection},
	{Backups, "Backups in production only", checkBackups},
	{MultiAZ, "Multi-AZ in production only", checkMultiAZ},
	{SizeClass, "Smaller, cheaper sizes outside production", checkSizes},
	{OwnershipTags, "Cost and ownership tags on every resource", checkTags},
	{WorkloadHygiene, "Requests, limits and probes on every workload container", checkWorkloads},
	{NamespaceIsolation, "Every Kubernetes object in the target's namespace, with a network policy", checkNamespaces},
}

// Check runs every resource rule.
func Check(t platform.Target, rs []Resource) []Violation {
	var out []Violation
	for _, r := range All {
		for _, m := range r.Check(t, rs) {
			out = append(out, Violation{Rule: r.ID, Message: m})
		}
	}
	return out
}

// get walks a path of map keys and array indexes ("rules.0.status").
func get(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

func str(m map[string]any, path string) string { s, _ := get(m, path).(string); return s }
func truth(m map[string]any, path string) bool { b, _ := get(m, path).(bool); return b }
func num(m map[string]any, path string) float64 {
	switch v := get(m, path).(type) {
	case float64:
		return v
	case int:
		return float64(v)
	}
	return 0
}

func ofType(rs []Resource, ts ...res.Type) []Resource {
	var out []Resource
	for _, r := range rs {
		if slices.Contains(ts, r.Type) {
			out = append(out, r)
		}
	}
	return out
}

// bucketOf finds the bucket a bucket sub-resource configures.
func bucketChildren(rs []Resource, t res.Type, bucket string) []Resource {
	var out []Resource
	for _, r := range ofType(rs, t) {
		if str(r.Inputs, "bucket") == bucket {
			out = append(out, r)
		}
	}
	return out
}

func checkEncryption(t platform.Target, rs []Resource) []string {
	var out []string
	need := func(r Resource, ok bool, what string) {
		if !ok {
			out = append(out, fmt.Sprintf("%s %s: %s", r.Type, r.Name, what))
		}
	}
	for _, r := range rs {
		in := r.Inputs
		switch r.Type {
		case res.KMSKey:
			need(r, truth(in, "enableKeyRotation"), "key rotation must be on")
		case res.SQSQueue, res.SNSTopic:
			need(r, str(in, "kmsMasterKeyId") != "", "kmsMasterKeyId must name a KMS key")
		case res.S3Bucket:
			enc := bucketChildren(rs, res.S3Encryption, str(r.Outputs, "bucket"))
			ok := len(enc) == 1 && str(enc[0].Inputs, "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm") == "aws:kms" &&
				str(enc[0].Inputs, "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId") != ""
			need(r, ok, "needs one SSE-KMS encryption configuration")
		case res.DynamoDBTable:
			need(r, truth(in, "serverSideEncryption.enabled") && str(in, "serverSideEncryption.kmsKeyArn") != "", "needs serverSideEncryption with a KMS key")
		case res.RDSCluster:
			need(r, truth(in, "storageEncrypted") && str(in, "kmsKeyId") != "", "needs storageEncrypted with kmsKeyId")
			need(r, !truth(in, "manageMasterUserPassword") || str(in, "masterUserSecretKmsKeyId") != "", "the master secret needs a KMS key")
		case res.SecretsManagerSecret:
			need(r, str(in, "kmsKeyId") != "", "kmsKeyId must name a KMS key")
		case res.ECRRepository:
			need(r, str(in, "encryptionConfigurations.0.encryptionType") == "KMS" && str(in, "encryptionConfigurations.0.kmsKey") != "", "needs KMS encryption")
		case res.K8sStatefulSet:
			for i := range len(asList(get(in, "spec.volumeClaimTemplates"))) {
				sc := str(in, fmt.Sprintf("spec.volumeClaimTemplates.%d.spec.storageClassName", i))
				need(r, sc == t.Environment.StorageClass, "volumes must use the encrypted storage class "+t.Environment.StorageClass)
			}
		}
	}
	return out
}

func asList(v any) []any { l, _ := v.([]any); return l }

func checkPublicS3(_ platform.Target, rs []Resource) []string {
	var out []string
	for _, b := range ofType(rs, res.S3Bucket) {
		name := str(b.Outputs, "bucket")
		if b.Inputs["acl"] != nil && b.Inputs["acl"] != "private" {
			out = append(out, fmt.Sprintf("bucket %s: acl %v", name, b.Inputs["acl"]))
		}
		pab := bucketChildren(rs, res.S3PublicAccessBlock, name)
		if len(pab) != 1 || !truth(pab[0].Inputs, "blockPublicAcls") || !truth(pab[0].Inputs, "blockPublicPolicy") ||
			!truth(pab[0].Inputs, "ignorePublicAcls") || !truth(pab[0].Inputs, "restrictPublicBuckets") {
			out = append(out, fmt.Sprintf("bucket %s: needs a public access block with all four settings on", name))
		}
		own := bucketChildren(rs, res.S3OwnershipControls, name)
		if len(own) != 1 || str(own[0].Inputs, "rule.objectOwnership") != "BucketOwnerEnforced" {
			out = append(out, fmt.Sprintf("bucket %s: ACLs must be disabled (BucketOwnerEnforced)", name))
		}
	}
	for _, p := range ofType(rs, res.S3BucketPolicy) {
		for _, st := range statements(str(p.Inputs, "policy")) {
			if st["Effect"] == "Allow" && (st["Principal"] == "*" || get(st, "Principal.AWS") == "*") {
				out = append(out, fmt.Sprintf("bucket policy %s allows everyone", p.Name))
			}
		}
	}
	return out
}

// statements decodes a policy document's statements.
func statements(doc string) []map[string]any {
	var p struct {
		Statement []map[string]any
	}
	if json.Unmarshal([]byte(doc), &p) != nil {
		return nil
	}
	return p.Statement
}

func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func checkTLSOnly(_ platform.Target, rs []Resource) []string {
	var out []string
	for _, b := range ofType(rs, res.S3Bucket) {
		name, arn := str(b.Outputs, "bucket"), str(b.Outputs, "arn")
		ok := false
		for _, p := range bucketChildren(rs, res.S3BucketPolicy, name) {
			for _, st := range statements(str(p.Inputs, "policy")) {
				if st["Effect"] == "Deny" && st["Principal"] == "*" && slices.Contains(strs(st["Action"]), "s3:*") &&
					slices.Contains(strs(st["Resource"]), arn) && slices.Contains(strs(st["Resource"]), arn+"/*") &&
					get(st, "Condition.Bool.aws:SecureTransport") == "false" {
					ok = true
				}
			}
		}
		if !ok {
			out = append(out, fmt.Sprintf("bucket %s: needs a policy denying s3:* on the bucket and its objects when aws:SecureTransport is false", name))
		}
	}
	return out
}

func checkPublicDatabase(t platform.Target, rs []Resource) []string {
	var out []string
	for _, r := range ofType(rs, res.RDSClusterInstance) {
		if v, ok := r.Inputs["publiclyAccessible"].(bool); !ok || v {
			out = append(out, fmt.Sprintf("instance %s: publiclyAccessible must be false", r.Name))
		}
	}
	for _, r := range ofType(rs, res.EC2SecurityGroup) {
		for _, rule := range asList(r.Inputs["ingress"]) {
			m, _ := rule.(map[string]any)
			for _, c := range append(strs(m["cidrBlocks"]), strs(m["ipv6CidrBlocks"])...) {
				if c != t.Environment.ClusterCIDR {
					out = append(out, fmt.Sprintf("security group %s admits %s; only the pod network %s may connect", r.Name, c, t.Environment.ClusterCIDR))
				}
			}
		}
	}
	return out
}
