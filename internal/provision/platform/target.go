package platform

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
)

// The cost and ownership tag keys every resource carries (AWS tags and
// Kubernetes labels alike), so billing and ownership reports need no
// per-kind mapping.
const (
	TagTenant      = "tenant"
	TagEnvironment = "environment"
	TagService     = "service"
	TagTeam        = "team"
	TagCostCenter  = "cost-center"
	TagManagedBy   = "managed-by"
)

// RequiredTags are the keys the ownership-tags rule demands.
var RequiredTags = []string{TagTenant, TagEnvironment, TagService, TagTeam, TagCostCenter}

// Target is one service in one environment for one tenant: the unit a
// Pulumi stack deploys. The service is modelled once; the target decides
// names, sizes and protections.
type Target struct {
	Tenant      Tenant
	Environment Environment
	Size        SizeClass
	Service     string
	Team        string
	Tenancy     Tenancy
	Region      string
	AccountID   string
}

// Resolve builds the target for a service, refusing unknown tenants and
// environments and environments the tenant may not use. The errors name the
// rule (known-tenant, known-environment) because they are what a portal user
// sees when a request is refused.
func (c *Config) Resolve(tenant, env, service, team string, tenancy Tenancy) (Target, error) {
	t, ok := c.Tenant(tenant)
	if !ok {
		return Target{}, fmt.Errorf("rule known-tenant: tenant %q is not in the platform's tenant set", tenant)
	}
	e, ok := c.Environment(env)
	if !ok {
		return Target{}, fmt.Errorf("rule known-environment: environment %q is not in the platform's environment set", env)
	}
	if !t.Allows(env) {
		return Target{}, fmt.Errorf("rule known-environment: tenant %q may not deploy to environment %q", tenant, env)
	}
	if tenancy == "" {
		tenancy = t.Tenancy
	}
	if !tenancy.Valid() {
		return Target{}, fmt.Errorf("rule tenancy: tenancy %q is neither single nor multi", tenancy)
	}
	return Target{
		Tenant: t, Environment: e, Size: c.SizeClasses[e.Size], Service: service, Team: team,
		Tenancy: tenancy, Region: c.Region, AccountID: c.AccountID,
	}, nil
}

// Production reports whether the target gets production protections.
func (t Target) Production() bool { return t.Environment.Production }

// StackName is the Pulumi stack: <tenant>-<environment>-<service>.
func (t Target) StackName() string {
	return t.Tenant.Name + "-" + t.Environment.Name + "-" + t.Service
}

// maxName fits the strictest limit of the kinds we name (S3 buckets, RDS
// cluster identifiers and Kubernetes DNS labels all stop at 63).
const maxName = 63

// Name is a resource's physical name: the stack name and the parts, joined
// with "-". Too long a name keeps its start and gets a short hash of the
// whole, so two long names never collide after truncation.
func (t Target) Name(parts ...string) string {
	n := strings.Join(append([]string{t.StackName()}, parts...), "-")
	if len(n) <= maxName {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return strings.TrimRight(n[:maxName-9], "-") + "-" + hex.EncodeToString(sum[:4])
}

// Namespace is where the service's workloads run: its own namespace when
// single-tenant, the tenant's shared one (<tenant>-<environment>) when
// multi-tenant.
func (t Target) Namespace() string {
	if t.Tenancy == Multi {
		return t.Tenant.Name + "-" + t.Environment.Name
	}
	return t.StackName()
}

// SharedKeyAlias is the tenant's KMS key multi-tenant services encrypt with.
func (t Target) SharedKeyAlias() string {
	if t.Tenant.SharedKeyAlias != "" {
		return t.Tenant.SharedKeyAlias
	}
	return "alias/" + t.Tenant.Name + "-" + t.Environment.Name
}

// Tags are the cost and ownership tags.
func (t Target) Tags() map[string]string {
	return map[string]string{
		TagTenant:      t.Tenant.Name,
		TagEnvironment: t.Environment.Name,
		TagService:     t.Service,
		TagTeam:        t.Team,
		TagCostCenter:  t.Tenant.CostCenter,
		TagManagedBy:   "paved",
	}
}

// Labels are the Kubernetes labels: the tags plus the recommended
// app.kubernetes.io labels, which dashboards and log pipelines group by, so
// a shared namespace still splits cleanly per service and tenant.
func (t Target) Labels() map[string]string {
	l := t.Tags()
	maps.Copy(l, t.SelectorLabels())
	l["app.kubernetes.io/part-of"] = t.Tenant.Name
	l["app.kubernetes.io/managed-by"] = "paved"
	l["app.kubernetes.io/instance"] = t.StackName()
	return l
}

// SelectorLabels select the service's pods; they never change over the
// service's life, because a Deployment's selector is immutable.
func (t Target) SelectorLabels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": t.Service, TagTenant: t.Tenant.Name}
}

// ServiceAccount is the Kubernetes service account the workload runs as
// and the IRSA role trusts.
func (t Target) ServiceAccount() string { return t.Service }

// Host is the service's public hostname.
func (t Target) Host() string {
	return t.Service + "." + t.Tenant.Name + "." + t.Environment.IngressDomain
}
