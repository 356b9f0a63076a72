// Package audit holds the resource rules: named checks over everything a
// stack registered (type, name, inputs and outputs of every resource, as
// the engine received them from the typed SDKs). The tests run them over
// every component in every environment and tenancy under pulumi.WithMocks,
// which is how the golden path proves it keeps the rules; each rule's id is
// in package rules, with the request rules.
package audit

import (
	"slices"
	"strconv"
	"strings"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/rules"
)

// Rule is a named check over all of a stack's resources.
type Rule struct {
	ID    string
	Title string
	Check func(t platform.Target, rs []rules.Resource) []string
}

// All are the resource rules.
var All = []Rule{
	{rules.EncryptionAtRest, "Encryption at rest everywhere, with KMS where the service has it", checkEncryption},
	{rules.NoPublicS3, "No public S3 bucket", checkPublicS3},
	{rules.TLSOnlyBucketPolicy, "Every bucket policy denies requests without TLS", checkTLSOnly},
	{rules.NoPublicDatabase, "No public database", checkPublicDatabase},
	{rules.LeastPrivilegeIAM, "IAM scoped to the service's own resources", checkLeastPrivilege},
	{rules.DeletionProtection, "Deletion protection in production only", checkDeletionProtection},
	{rules.Backups, "Backups in production only", checkBackups},
	{rules.MultiAZ, "Multi-AZ, zone spread and disruption budgets in production only", checkMultiAZ},
	{rules.SizeClass, "Sizes, replicas, requests and limits from the environment's size class", checkSizes},
	{rules.OwnershipTags, "Cost and ownership tags on every resource", checkTags},
	{rules.WorkloadHygiene, "Requests, limits and probes on every workload container", checkWorkloads},
	{rules.NamespaceIsolation, "Every Kubernetes object in the target's namespace, with a network policy", checkNamespaces},
	{rules.RestrictedPods, "Pods run non-root, read-only, unprivileged, without capabilities, under seccomp", checkRestrictedPods},
	{rules.AutoscalerReplicas, "The autoscaler alone sets the replicas of the workload it scales", checkAutoscaled},
	{rules.HeadlessStatefulSet, "A StatefulSet's serviceName is a headless Service selecting its pods", checkHeadless},
	{rules.TenantTelemetry, "Pods carry tenant labels and OpenTelemetry resource attributes", checkTelemetry},
}

// Check runs every resource rule.
func Check(t platform.Target, rs []rules.Resource) []rules.Violation {
	var out []rules.Violation
	for _, r := range All {
		for _, m := range r.Check(t, rs) {
			out = append(out, rules.Violation{Rule: r.ID, Message: m})
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

func ofType(rs []rules.Resource, ts ...rules.Type) []rules.Resource {
	var out []rules.Resource
	for _, r := range rs {
		if slices.Contains(ts, r.Type) {
			out = append(out, r)
		}
	}
	return out
}
