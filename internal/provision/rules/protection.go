package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/res"
)

// checkLeastPrivilege demands that the service's role is assumable only by
// its own service account, and that its policy allows only named actions
// (no wildcards) on the stack's own resources: an ARN output of a resource
// in the stack, a path below one ("<bucket arn>/*", "<table arn>/index/*"),
// the rds-db:connect ARN of one of its clusters, or the stack's KMS key
// (the tenant's shared key for a multi-tenant service).
func checkLeastPrivilege(t platform.Target, rs []Resource) []string {
	var out []string
	own := map[string]bool{}
	for _, r := range rs {
		if a := str(r.Outputs, "arn"); a != "" {
			own[a] = true
		}
		if r.Type == res.RDSCluster {
			own[fmt.Sprintf("arn:aws:rds-db:%s:%s:dbuser:%s/%s", t.Region, t.AccountID,
				str(r.Outputs, "clusterResourceId"), strings.ReplaceAll(t.Service, "-", "_"))] = true
		}
	}
	owned := func(arn string) bool {
		if own[arn] {
			return true
		}
		for o := range own {
			if strings.HasPrefix(arn, o+"/") && !strings.Contains(o, "*") {
				return true
			}
		}
		return false
	}
	for _, role := range ofType(rs, res.IAMRole) {
		sub := t.Environment.OIDCIssuer + ":sub"
		for _, st := range statements(str(role.Inputs, "assumeRolePolicy")) {
			// Condition keys hold dots (the issuer), so no path lookup.
			want := "system:serviceaccount:" + t.Namespace() + ":" + t.ServiceAccount()
			cond, _ := get(st, "Condition.StringEquals").(map[string]any)
			if cond[sub] != want || !strings.HasSuffix(str(st, "Principal.Federated"), "oidc-provider/"+t.Environment.OIDCIssuer) {
				out = append(out, fmt.Sprintf("role %s: trust must be limited to %s through the cluster's OIDC provider", role.Name, want))
			}
		}
	}
	for _, p := range ofType(rs, res.IAMRolePolicy) {
		for _, st := range statements(str(p.Inputs, "policy")) {
			if st["Effect"] != "Allow" {
				continue
			}
			for _, a := range strs(st["Action"]) {
				if strings.Contains(a, "*") {
					out = append(out, fmt.Sprintf("policy %s: wildcard action %s", p.Name, a))
				}
			}
			for _, r := range strs(st["Resource"]) {
				if !owned(r) && !sharedKey(t, st, r) {
					out = append(out, fmt.Sprintf("policy %s: resource %s is not one of the stack's own", p.Name, r))
				}
			}
			if st["NotAction"] != nil || st["NotResource"] != nil {
				out = append(out, fmt.Sprintf("policy %s: NotAction/NotResource grant more than they name", p.Name))
			}
		}
	}
	return out
}

// sharedKey accepts the tenant's shared KMS key in a multi-tenant
// service's policy: a statement of KMS actions only, on a key ARN of the
// platform's account and region, that requires the tenant's tag.
func sharedKey(t platform.Target, st map[string]any, arn string) bool {
	if t.Tenancy != platform.Multi || !strings.HasPrefix(arn, fmt.Sprintf("arn:aws:kms:%s:%s:key/", t.Region, t.AccountID)) {
		return false
	}
	for _, a := range strs(st["Action"]) {
		if !strings.HasPrefix(a, "kms:") {
			return false
		}
	}
	cond, _ := get(st, "Condition.StringEquals").(map[string]any)
	return cond["aws:ResourceTag/"+platform.TagTenant] == t.Tenant.Name
}

func checkDeletionProtection(t platform.Target, rs []Resource) []string {
	var out []string
	prod := t.Production()
	want := func(r Resource, path string, v bool) {
		if truth(r.Inputs, path) != v {
			out = append(out, fmt.Sprintf("%s %s: %s must be %v in %s", r.Type, r.Name, path, v, t.Environment.Name))
		}
	}
	for _, r := range rs {
		switch r.Type {
		case res.RDSCluster:
			want(r, "deletionProtection", prod)
			want(r, "skipFinalSnapshot", !prod)
		case res.DynamoDBTable:
			want(r, "deletionProtectionEnabled", prod)
		case res.S3Bucket:
			want(r, "forceDestroy", !prod)
		case res.ECRRepository:
			want(r, "forceDelete", !prod)
		}
	}
	return out
}

func checkBackups(t platform.Target, rs []Resource) []string {
	var out []string
	prod := t.Production()
	for _, r := range rs {
		switch r.Type {
		case res.RDSCluster:
			days := num(r.Inputs, "backupRetentionPeriod")
			if prod && days < 7 || !prod && days != 1 {
				out = append(out, fmt.Sprintf("cluster %s: %v days of backups (production at least 7, elsewhere 1)", r.Name, days))
			}
		case res.DynamoDBTable:
			if truth(r.Inputs, "pointInTimeRecovery.enabled") != prod {
				out = append(out, fmt.Sprintf("table %s: point-in-time recovery must be %v", r.Name, prod))
			}
		case res.S3Versioning:
			if prod && str(r.Inputs, "versioningConfiguration.status") != "Enabled" {
				out = append(out, fmt.Sprintf("%s: production buckets keep versions", r.Name))
			}
		}
	}
	return out
}

func checkMultiAZ(t platform.Target, rs []Resource) []string {
	var out []string
	want := 1
	if t.Production() {
		want = 2
	}
	for _, c := range ofType(rs, res.RDSCluster) {
		n := 0
		for _, i := range ofType(rs, res.RDSClusterInstance) {
			if str(i.Inputs, "clusterIdentifier") == str(c.Outputs, "id") || str(i.Inputs, "clusterIdentifier") == str(c.Inputs, "clusterIdentifier") {
				n++
			}
		}
		if n != want {
			out = append(out, fmt.Sprintf("cluster %s: %d instances, %s wants %d", c.Name, n, t.Environment.Name, want))
		}
	}
	for _, d := range ofType(rs, res.K8sDeployment, res.K8sStatefulSet) {
		spread := get(d.Inputs, "spec.template.spec.topologySpreadConstraints.0.topologyKey") == "topology.kubernetes.io/zone"
		if strings.HasSuffix(d.Name, "-cache") {
			continue // the cache is disposable and single by design
		}
		if spread != t.Production() {
			out = append(out, fmt.Sprintf("%s %s: zone spread must be %v", d.Type, d.Name, t.Production()))
		}
	}
	return out
}

func checkSizes(t platform.Target, rs []Resource) []string {
	var out []string
	for _, r := range rs {
		switch r.Type {
		case res.RDSClusterInstance:
			if c := str(r.Inputs, "instanceClass"); !slices.Contains(t.Size.DatabaseClasses, c) {
				out = append(out, fmt.Sprintf("instance %s: class %s is not in %s's size class %v", r.Name, c, t.Environment.Name, t.Size.DatabaseClasses))
			}
		case res.K8sDeployment, res.K8sStatefulSet:
			if n := num(r.Inputs, "spec.replicas"); n > float64(t.Size.MaxReplicas) {
				out = append(out, fmt.Sprintf("%s: %v replicas exceed %d", r.Name, n, t.Size.MaxReplicas))
			}
		case res.K8sHPA:
			if n := num(r.Inputs, "spec.maxReplicas"); n > float64(t.Size.MaxReplicas) {
				out = append(out, fmt.Sprintf("%s: autoscaler maximum %v exceeds %d", r.Name, n, t.Size.MaxReplicas))
			}
		case res.DynamoDBTable:
			if str(r.Inputs, "billingMode") != "PAY_PER_REQUEST" {
				out = append(out, fmt.Sprintf("table %s: tables are on-demand", r.Name))
			}
		}
		for _, c := range containers(r) {
			if c["image"] == nil || get(c, "resources.limits.cpu") == nil {
				continue // checked by workload-hygiene
			}
			if c["name"] != "redis" && (get(c, "resources.limits.cpu") != t.Size.CPULimit || get(c, "resources.limits.memory") != t.Size.MemoryLimit) {
				out = append(out, fmt.Sprintf("%s: container limits must be the size class's %s/%s", r.Name, t.Size.CPULimit, t.Size.MemoryLimit))
			}
		}
	}
	return out
}

// containers returns a workload's containers.
func containers(r Resource) []map[string]any {
	var path string
	switch r.Type {
	case res.K8sDeployment, res.K8sStatefulSet:
		path = "spec.template.spec.containers"
	case res.K8sCronJob:
		path = "spec.jobTemplate.spec.template.spec.containers"
	default:
		return nil
	}
	var out []map[string]any
	for _, c := range asList(get(r.Inputs, path)) {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func checkTags(t platform.Target, rs []Resource) []string {
	var out []string
	want := t.Tags()
	for _, r := range rs {
		tg, ok := res.TaggingOf(r.Type)
		if !ok {
			out = append(out, fmt.Sprintf("%s %s: type unknown to the rules; decide how it is tagged", r.Type, r.Name))
			continue
		}
		var got map[string]any
		switch tg {
		case res.Untagged:
			continue
		case res.AWSTags:
			got, _ = r.Inputs["tags"].(map[string]any)
		case res.K8sLabels:
			got, _ = get(r.Inputs, "metadata.labels").(map[string]any)
		}
		for _, k := range platform.RequiredTags {
			if got[k] != want[k] || want[k] == "" {
				out = append(out, fmt.Sprintf("%s %s: tag %s is %v, want %q", r.Type, r.Name, k, got[k], want[k]))
			}
		}
	}
	return out
}

func checkWorkloads(_ platform.Target, rs []Resource) []string {
	var out []string
	for _, r := range rs {
		for _, c := range containers(r) {
			for _, p := range []string{"resources.requests.cpu", "resources.requests.memory", "resources.limits.cpu", "resources.limits.memory"} {
				if get(c, p) == nil {
					out = append(out, fmt.Sprintf("%s %s: container %v has no %s", r.Type, r.Name, c["name"], p))
				}
			}
			if r.Type != res.K8sCronJob && (c["readinessProbe"] == nil || c["livenessProbe"] == nil) {
				out = append(out, fmt.Sprintf("%s %s: container %v needs readiness and liveness probes", r.Type, r.Name, c["name"]))
			}
			if get(c, "securityContext.allowPrivilegeEscalation") != false {
				out = append(out, fmt.Sprintf("%s %s: container %v must not escalate privileges", r.Type, r.Name, c["name"]))
			}
		}
	}
	return out
}

func checkNamespaces(t platform.Target, rs []Resource) []string {
	var out []string
	policies := 0
	for _, r := range rs {
		if tg, _ := res.TaggingOf(r.Type); tg != res.K8sLabels || r.Type == res.K8sNamespace {
			continue
		}
		if ns := str(r.Inputs, "metadata.namespace"); ns != t.Namespace() {
			out = append(out, fmt.Sprintf("%s %s: namespace %q, want %q", r.Type, r.Name, ns, t.Namespace()))
		}
		if r.Type == res.K8sNetworkPolicy {
			policies++
		}
	}
	if len(ofType(rs, res.K8sDeployment, res.K8sStatefulSet, res.K8sCronJob)) > 0 && policies == 0 {
		out = append(out, "workloads without a network policy")
	}
	for _, ns := range ofType(rs, res.K8sNamespace) {
		if t.Tenancy == platform.Multi {
			out = append(out, fmt.Sprintf("namespace %s: a multi-tenant service uses the tenant's namespace", ns.Name))
		}
	}
	return out
}
