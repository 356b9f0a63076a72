package audit

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/rules"
)

// bucketChildren finds the sub-resources that configure a bucket.
func bucketChildren(rs []rules.Resource, t rules.Type, bucket string) []rules.Resource {
	var out []rules.Resource
	for _, r := range ofType(rs, t) {
		if str(r.Inputs, "bucket") == bucket {
			out = append(out, r)
		}
	}
	return out
}

func checkEncryption(t platform.Target, rs []rules.Resource) []string {
	var out []string
	need := func(r rules.Resource, ok bool, what string) {
		if !ok {
			out = append(out, fmt.Sprintf("%s %s: %s", r.Type, r.Name, what))
		}
	}
	for _, r := range rs {
		in := r.Inputs
		switch r.Type {
		case rules.KMSKey:
			need(r, truth(in, "enableKeyRotation"), "key rotation must be on")
		case rules.SQSQueue, rules.SNSTopic:
			need(r, str(in, "kmsMasterKeyId") != "", "kmsMasterKeyId must name a KMS key")
		case rules.S3Bucket:
			enc := bucketChildren(rs, rules.S3Encryption, str(r.Outputs, "bucket"))
			ok := len(enc) == 1 && str(enc[0].Inputs, "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm") == "aws:kms" &&
				str(enc[0].Inputs, "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId") != ""
			need(r, ok, "needs one SSE-KMS encryption configuration")
		case rules.DynamoDBTable:
			need(r, truth(in, "serverSideEncryption.enabled") && str(in, "serverSideEncryption.kmsKeyArn") != "", "needs serverSideEncryption with a KMS key")
		case rules.RDSCluster:
			need(r, truth(in, "storageEncrypted") && str(in, "kmsKeyId") != "", "needs storageEncrypted with kmsKeyId")
			need(r, !truth(in, "manageMasterUserPassword") || str(in, "masterUserSecretKmsKeyId") != "", "the master secret needs a KMS key")
		case rules.SecretsManagerSecret:
			need(r, str(in, "kmsKeyId") != "", "kmsKeyId must name a KMS key")
		case rules.ECRRepository:
			need(r, str(in, "encryptionConfigurations.0.encryptionType") == "KMS" && str(in, "encryptionConfigurations.0.kmsKey") != "", "needs KMS encryption")
		case rules.K8sStatefulSet:
			for i := range len(asList(get(in, "spec.volumeClaimTemplates"))) {
				sc := str(in, fmt.Sprintf("spec.volumeClaimTemplates.%d.spec.storageClassName", i))
				need(r, sc == t.Environment.StorageClass, "volumes must use the encrypted storage class "+t.Environment.StorageClass)
			}
		}
	}
	return out
}

func asList(v any) []any { l, _ := v.([]any); return l }

func checkPublicS3(_ platform.Target, rs []rules.Resource) []string {
	var out []string
	for _, b := range ofType(rs, rules.S3Bucket) {
		name := str(b.Outputs, "bucket")
		if b.Inputs["acl"] != nil && b.Inputs["acl"] != "private" {
			out = append(out, fmt.Sprintf("bucket %s: acl %v", name, b.Inputs["acl"]))
		}
		pab := bucketChildren(rs, rules.S3PublicAccessBlock, name)
		if len(pab) != 1 || !truth(pab[0].Inputs, "blockPublicAcls") || !truth(pab[0].Inputs, "blockPublicPolicy") ||
			!truth(pab[0].Inputs, "ignorePublicAcls") || !truth(pab[0].Inputs, "restrictPublicBuckets") {
			out = append(out, fmt.Sprintf("bucket %s: needs a public access block with all four settings on", name))
		}
		own := bucketChildren(rs, rules.S3OwnershipControls, name)
		if len(own) != 1 || str(own[0].Inputs, "rule.objectOwnership") != "BucketOwnerEnforced" {
			out = append(out, fmt.Sprintf("bucket %s: ACLs must be disabled (BucketOwnerEnforced)", name))
		}
	}
	for _, p := range ofType(rs, rules.S3BucketPolicy) {
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

func checkTLSOnly(_ platform.Target, rs []rules.Resource) []string {
	var out []string
	for _, b := range ofType(rs, rules.S3Bucket) {
		name, arn := str(b.Outputs, "bucket"), str(b.Outputs, "arn")
		ok := false
		for _, p := range bucketChildren(rs, rules.S3BucketPolicy, name) {
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

func checkPublicDatabase(t platform.Target, rs []rules.Resource) []string {
	var out []string
	for _, r := range ofType(rs, rules.RDSClusterInstance) {
		if v, ok := r.Inputs["publiclyAccessible"].(bool); !ok || v {
			out = append(out, fmt.Sprintf("instance %s: publiclyAccessible must be false", r.Name))
		}
	}
	for _, r := range ofType(rs, rules.EC2SecurityGroup) {
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
