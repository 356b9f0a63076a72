// Package rules holds the platform's rules as named checks. Request rules
// judge a service model before anything is registered, so a request that
// asks for something forbidden fails with the rule's name and nothing
// changes. Resource rules (package audit) judge what the components
// registered; this package holds their ids and the vocabulary they judge
// in: the registered Resource and the provider type tokens.
package rules

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/spec"
)

// Rule ids; they appear in every message a rule produces and in the rules
// table of docs/golden-path.md.
const (
	KnownTenant         = "known-tenant"
	KnownEnvironment    = "known-environment"
	ValidModel          = "valid-model"
	EncryptionAtRest    = "encryption-at-rest"
	NoPublicS3          = "no-public-s3"
	NoPublicDatabase    = "no-public-database"
	TLSOnlyBucketPolicy = "tls-only-bucket-policy"
	LeastPrivilegeIAM   = "least-privilege-iam"
	DeletionProtection  = "deletion-protection-prod-only"
	Backups             = "backups-prod-only"
	MultiAZ             = "multi-az-prod-only"
	SizeClass           = "size-class"
	OwnershipTags       = "ownership-tags"
	WorkloadHygiene     = "workload-hygiene"
	NamespaceIsolation  = "namespace-isolation"
	RestrictedPods      = "restricted-pods"
	AutoscalerReplicas  = "autoscaler-owns-replicas"
	HeadlessStatefulSet = "statefulset-headless-service"
	TenantTelemetry     = "tenant-telemetry"
)

// Violation is one broken rule.
type Violation struct {
	Rule    string
	Message string
}

func (v Violation) Error() string { return "rule " + v.Rule + ": " + v.Message }

// names of resources inside a service: short, DNS- and S3-safe.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,23}$`)

// CheckModel judges a service model for its target before anything is
// registered. It returns every violation, joined, or nil.
func CheckModel(s *spec.Service, t platform.Target) error {
	var vs []error
	add := func(rule, format string, args ...any) {
		vs = append(vs, Violation{Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	if !nameRE.MatchString(s.Name) {
		add(ValidModel, "service name %q must match %s", s.Name, nameRE)
	}
	w := s.Workload
	switch w.Kind {
	case spec.Deployment, spec.StatefulSet:
		if w.Port < 1 || w.Port > 65535 || w.HealthPath == "" || w.HealthPath[0] != '/' {
			add(ValidModel, "a %s needs a port (1-65535) and a health path starting with /", w.Kind)
		}
	case spec.CronJob:
		if w.Schedule == "" {
			add(ValidModel, "a cronjob needs a schedule")
		}
	default:
		add(ValidModel, "workload %q is not deployment, statefulset or cronjob", w.Kind)
	}
	if w.Replicas < 0 || w.Replicas > t.Size.MaxReplicas {
		add(SizeClass, "%d replicas exceed %s's maximum of %d", w.Replicas, t.Environment.Name, t.Size.MaxReplicas)
	}
	if w.Kind == spec.StatefulSet && (w.StorageGi < 1 || w.StorageGi > 1000) {
		add(SizeClass, "storage of %d GiB is outside 1-1000", w.StorageGi)
	}
	names := map[string]bool{}
	unique := func(kind, name string) {
		if !nameRE.MatchString(name) {
			add(ValidModel, "%s name %q must match %s", kind, name, nameRE)
		}
		if names[name] {
			add(ValidModel, "name %q is used twice; names are unique across a service's resources", name)
		}
		names[name] = true
	}
	for _, b := range s.Buckets {
		unique("bucket", b.Name)
		if b.Public {
			add(NoPublicS3, "bucket %q asks for public access; buckets are always private (serve public files through a CDN)", b.Name)
		}
		if b.RetentionDays < 0 {
			add(ValidModel, "bucket %q: retentionDays must not be negative", b.Name)
		}
	}
	for _, q := range s.Queues {
		unique("queue", q.Name)
		if q.VisibilityTimeoutSeconds < 0 || q.VisibilityTimeoutSeconds > 43200 || q.MaxReceiveCount < 1 || q.MaxReceiveCount > 1000 {
			add(ValidModel, "queue %q: visibilityTimeoutSeconds must be 0-43200 and maxReceiveCount 1-1000", q.Name)
		}
	}
	for _, tp := range s.Topics {
		unique("topic", tp.Name)
	}
	for _, tb := range s.Tables {
		unique("table", tb.Name)
		if tb.HashKey == "" {
			add(ValidModel, "table %q needs a hashKey", tb.Name)
		}
	}
	for _, d := range s.Databases {
		unique("database", d.Name)
		if d.Public {
			add(NoPublicDatabase, "database %q asks for public access; databases are reachable from the cluster only", d.Name)
		}
		if d.Engine != "aurora-postgresql" && d.Engine != "aurora-mysql" {
			add(ValidModel, "database %q: engine %q is not aurora-postgresql or aurora-mysql", d.Name, d.Engine)
		}
		if d.InstanceClass != "" && !slices.Contains(t.Size.DatabaseClasses, d.InstanceClass) {
			add(SizeClass, "database %q: instance class %s is not allowed in %s (allowed: %v)",
				d.Name, d.InstanceClass, t.Environment.Name, t.Size.DatabaseClasses)
		}
	}
	for _, sc := range s.Secrets {
		unique("secret", sc.Name)
	}
	return errors.Join(vs...)
}
