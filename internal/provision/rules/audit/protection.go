package audit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/rules"
)

// checkLeastPrivilege demands that the service's role is assumable only by
// its own service account, and that its policy allows only named actions
// (no wildcards) on the stack's own resources: an ARN output of a resource
// in the stack, a path below one ("<bucket arn>/*", "<table arn>/index/*"),
// the rds-db:connect ARN of one of its clusters, or the stack's KMS key
// (the tenant's shared key for a multi-tenant service).
func checkLeastPrivilege(t platform.Target, rs []rules.Resource) []string {
	var out []string
	own := map[string]bool{}
	for _, r := range rs {
		if a := str(r.Outputs, "arn"); a != "" {
			own[a] = true
		}
		if r.Type == rules.RDSCluster {
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
	for _, role := range ofType(rs, rules.IAMRole) {
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
	for _, p := range ofType(rs, rules.IAMRolePolicy) {
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

func checkDeletionProtection(t platform.Target, rs []rules.Resource) []string {
	var out []string
	prod := t.Production()
	want := func(r rules.Resource, path string, v bool) {
		if truth(r.Inputs, path) != v {
			out = append(out, fmt.Sprintf("%s %s: %s must be %v in %s", r.Type, r.Name, path, v, t.Environment.Name))
		}
	}
	for _, r := range rs {
		switch r.Type {
		case rules.RDSCluster:
			want(r, "deletionProtection", prod)
			want(r, "skipFinalSnapshot", !prod)
		case rules.DynamoDBTable:
			want(r, "deletionProtectionEnabled", prod)
		case rules.S3Bucket:
			want(r, "forceDestroy", !prod)
		case rules.ECRRepository:
			want(r, "forceDelete", !prod)
		}
	}
	return out
}

func checkBackups(t platform.Target, rs []rules.Resource) []string {
	var out []string
	prod := t.Production()
	for _, r := range rs {
		switch r.Type {
		case rules.RDSCluster:
			days := num(r.Inputs, "backupRetentionPeriod")
			if prod && days < 7 || !prod && days != 1 {
				out = append(out, fmt.Sprintf("cluster %s: %v days of backups (production at least 7, elsewhere 1)", r.Name, days))
			}
		case rules.DynamoDBTable:
			if truth(r.Inputs, "pointInTimeRecovery.enabled") != prod {
				out = append(out, fmt.Sprintf("table %s: point-in-time recovery must be %v", r.Name, prod))
			}
		case rules.S3Versioning:
			if prod && str(r.Inputs, "versioningConfiguration.status") != "Enabled" {
				out = append(out, fmt.Sprintf("%s: production buckets keep versions", r.Name))
			}
		}
	}
	return out
}

func checkMultiAZ(t platform.Target, rs []rules.Resource) []string {
	var out []string
	want := 1
	if t.Production() {
		want = 2
	}
	for _, c := range ofType(rs, rules.RDSCluster) {
		n := 0
		for _, i := range ofType(rs, rules.RDSClusterInstance) {
			if str(i.Inputs, "clusterIdentifier") == str(c.Outputs, "id") || str(i.Inputs, "clusterIdentifier") == str(c.Inputs, "clusterIdentifier") {
				n++
			}
		}
		if n != want {
			out = append(out, fmt.Sprintf("cluster %s: %d instances, %s wants %d", c.Name, n, t.Environment.Name, want))
		}
	}
	return append(out, zoneSpread(t, rs)...)
}

func checkSizes(t platform.Target, rs []rules.Resource) []string {
	var out []string
	for _, r := range rs {
		switch r.Type {
		case rules.RDSClusterInstance:
			if c := str(r.Inputs, "instanceClass"); !slices.Contains(t.Size.DatabaseClasses, c) {
				out = append(out, fmt.Sprintf("instance %s: class %s is not in %s's size class %v", r.Name, c, t.Environment.Name, t.Size.DatabaseClasses))
			}
		case rules.K8sHPA:
			if lo, hi := num(r.Inputs, "spec.minReplicas"), num(r.Inputs, "spec.maxReplicas"); hi > float64(t.Size.MaxReplicas) || lo < 1 || lo > hi {
				out = append(out, fmt.Sprintf("%s: autoscaler range %v-%v is not within 1-%d", r.Name, lo, hi, t.Size.MaxReplicas))
			}
		case rules.DynamoDBTable:
			if str(r.Inputs, "billingMode") != "PAY_PER_REQUEST" {
				out = append(out, fmt.Sprintf("table %s: tables are on-demand", r.Name))
			}
		}
	}
	return append(out, containerSizes(t, rs)...)
}

func checkTags(t platform.Target, rs []rules.Resource) []string {
	var out []string
	want := t.Tags()
	for _, r := range rs {
		tg, ok := rules.TaggingOf(r.Type)
		if !ok {
			out = append(out, fmt.Sprintf("%s %s: type unknown to the rules; decide how it is tagged", r.Type, r.Name))
			continue
		}
		var got map[string]any
		switch tg {
		case rules.Untagged:
			// res.New tags whatever the SDK lets carry tags: a tagged
			// "untagged" type means the table here is wrong.
			if r.Inputs["tags"] != nil {
				out = append(out, fmt.Sprintf("%s %s: carries tags, but the rules list the type as untagged", r.Type, r.Name))
			}
			continue
		case rules.AWSTags:
			got, _ = r.Inputs["tags"].(map[string]any)
		case rules.K8sLabels:
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
