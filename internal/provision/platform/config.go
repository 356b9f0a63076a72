// Package platform describes where the golden path deploys: the environment
// set, the tenant set and the size classes, read from one YAML file
// (deploy/pulumi/platform.yaml), and the naming, tags and labels every
// resource of a service gets. It knows nothing of Pulumi.
package platform

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"

	"gopkg.in/yaml.v3"
)

// DefaultPath is where the provisioning program looks for the platform file
// when PAVED_PLATFORM_CONFIG is not set; relative to deploy/pulumi, the
// Pulumi project directory the pipeline runs in.
const DefaultPath = "platform.yaml"

// Tenancy says whether a service gets resources of its own or shares the
// tenant's.
type Tenancy string

// The two tenancy models.
const (
	// Single gives the service a dedicated namespace and a dedicated KMS key.
	Single Tenancy = "single"
	// Multi puts the service in its tenant's shared namespace, encrypts with
	// the tenant's shared key and isolates by namespace, IAM conditions on
	// the tenant tag, tags and observability labels.
	Multi Tenancy = "multi"
)

// Valid reports whether t is one of the two models.
func (t Tenancy) Valid() bool { return t == Single || t == Multi }

// Config is the platform file.
type Config struct {
	// Region and AccountID place the AWS resources; AccountID also builds
	// the ARNs of platform-owned things (the cluster's OIDC provider).
	Region    string `yaml:"region"`
	AccountID string `yaml:"accountId"`
	// Providers pins the provider plugin versions every resource asks for;
	// they should be the releases of the typed SDKs the program is built
	// with, whose schemas the args follow.
	Providers Providers `yaml:"providers"`
	// BootstrapImage runs until the service's first image is pushed to its
	// ECR repository.
	BootstrapImage string               `yaml:"bootstrapImage"`
	SizeClasses    map[string]SizeClass `yaml:"sizeClasses"`
	Environments   []Environment        `yaml:"environments"`
	Tenants        []Tenant             `yaml:"tenants"`
}

// Providers holds plugin versions; empty means "whatever is installed".
type Providers struct {
	AWS        string `yaml:"aws"`
	Kubernetes string `yaml:"kubernetes"`
}

// SizeClass bounds what a service may ask for in an environment: the
// defaults it gets and the maximums the size-class rule enforces.
type SizeClass struct {
	// Replicas is the default, MaxReplicas the ceiling for replicas and
	// for the autoscaler.
	Replicas    int `yaml:"replicas"`
	MaxReplicas int `yaml:"maxReplicas"`
	// Container requests and limits (Kubernetes quantities).
	CPURequest    string `yaml:"cpuRequest"`
	MemoryRequest string `yaml:"memoryRequest"`
	CPULimit      string `yaml:"cpuLimit"`
	MemoryLimit   string `yaml:"memoryLimit"`
	// DatabaseClasses are the Aurora instance classes allowed, the first
	// one being the default.
	DatabaseClasses []string `yaml:"databaseClasses"`
	// CacheMemory is the cache container's memory limit.
	CacheMemory string `yaml:"cacheMemory"`
}

// Environment is one deployment target (dev, staging, prod).
type Environment struct {
	Name       string `yaml:"name"`
	Production bool   `yaml:"production"`
	Size       string `yaml:"size"`
	// Network the data stores live in.
	VPCID         string `yaml:"vpcId"`
	DBSubnetGroup string `yaml:"dbSubnetGroup"`
	// ClusterCIDR is the pod network; the database accepts only it.
	ClusterCIDR string `yaml:"clusterCidr"`
	// OIDCIssuer is the EKS cluster's issuer without scheme
	// (oidc.eks.<region>.amazonaws.com/id/<ID>), for IRSA trust policies.
	OIDCIssuer string `yaml:"oidcIssuer"`
	// IngressDomain and IngressClass expose services as
	// <service>.<tenant>.<IngressDomain>; IngressNamespace is where the
	// controller runs, the only namespace the network policy admits.
	IngressDomain    string `yaml:"ingressDomain"`
	IngressClass     string `yaml:"ingressClass"`
	IngressNamespace string `yaml:"ingressNamespace"`
	// StorageClass is an encrypted storage class for StatefulSet volumes.
	StorageClass string `yaml:"storageClass"`
}

// Tenant is a customer or business unit the platform hosts.
type Tenant struct {
	Name       string `yaml:"name"`
	CostCenter string `yaml:"costCenter"`
	// Tenancy is the default model for the tenant's services.
	Tenancy Tenancy `yaml:"tenancy"`
	// Environments the tenant may deploy to; empty means all.
	Environments []string `yaml:"environments"`
	// SharedKeyAlias is the tenant's KMS key (per environment the alias
	// alias/<name>-<environment> is used when this is empty) for
	// multi-tenant services.
	SharedKeyAlias string `yaml:"sharedKeyAlias"`
}

// Load reads and validates the platform file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read platform config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("platform config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a platform file's bytes. Unknown keys are
// errors, so a typo cannot silently drop a setting.
func Parse(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Names of tenants and environments are short and DNS-safe because they
// prefix every resource name.
var (
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)
	accountRE = regexp.MustCompile(`^\d{12}$`)
)

// Validate checks that the file is complete and consistent; every problem
// is reported, not just the first.
func (c *Config) Validate() error {
	var errs []error
	if c.Region == "" || !accountRE.MatchString(c.AccountID) {
		errs = append(errs, errors.New("region and a 12-digit accountId are required"))
	}
	if c.BootstrapImage == "" {
		errs = append(errs, errors.New("bootstrapImage is required"))
	}
	for name, s := range c.SizeClasses {
		if s.Replicas < 1 || s.MaxReplicas < s.Replicas || len(s.DatabaseClasses) == 0 ||
			s.CPURequest == "" || s.MemoryRequest == "" || s.CPULimit == "" || s.MemoryLimit == "" {
			errs = append(errs, fmt.Errorf("size class %q: replicas, maxReplicas >= replicas, requests, limits and databaseClasses are required", name))
		}
	}
	seen := map[string]bool{}
	for _, e := range c.Environments {
		if !nameRE.MatchString(e.Name) || seen["env/"+e.Name] {
			errs = append(errs, fmt.Errorf("environment %q: name must be unique and match %s", e.Name, nameRE))
		}
		seen["env/"+e.Name] = true
		if _, ok := c.SizeClasses[e.Size]; !ok {
			errs = append(errs, fmt.Errorf("environment %q: unknown size class %q", e.Name, e.Size))
		}
		if e.VPCID == "" || e.DBSubnetGroup == "" || e.ClusterCIDR == "" || e.OIDCIssuer == "" ||
			e.IngressDomain == "" || e.IngressClass == "" || e.IngressNamespace == "" || e.StorageClass == "" {
			errs = append(errs, fmt.Errorf("environment %q: vpcId, dbSubnetGroup, clusterCidr, oidcIssuer, storageClass and ingress settings are required", e.Name))
		}
	}
	for _, t := range c.Tenants {
		if !nameRE.MatchString(t.Name) || seen["tenant/"+t.Name] {
			errs = append(errs, fmt.Errorf("tenant %q: name must be unique and match %s", t.Name, nameRE))
		}
		seen["tenant/"+t.Name] = true
		if t.CostCenter == "" || !t.Tenancy.Valid() {
			errs = append(errs, fmt.Errorf("tenant %q: costCenter and tenancy (single|multi) are required", t.Name))
		}
		for _, e := range t.Environments {
			if !seen["env/"+e] {
				errs = append(errs, fmt.Errorf("tenant %q: unknown environment %q", t.Name, e))
			}
		}
	}
	if len(c.Environments) == 0 || len(c.Tenants) == 0 {
		errs = append(errs, errors.New("at least one environment and one tenant are required"))
	}
	return errors.Join(errs...)
}

// Environment finds an environment by name.
func (c *Config) Environment(name string) (Environment, bool) {
	i := slices.IndexFunc(c.Environments, func(e Environment) bool { return e.Name == name })
	if i < 0 {
		return Environment{}, false
	}
	return c.Environments[i], true
}

// Tenant finds a tenant by name.
func (c *Config) Tenant(name string) (Tenant, bool) {
	i := slices.IndexFunc(c.Tenants, func(t Tenant) bool { return t.Name == name })
	if i < 0 {
		return Tenant{}, false
	}
	return c.Tenants[i], true
}

// Allows reports whether the tenant may deploy to the environment.
func (t Tenant) Allows(env string) bool {
	return len(t.Environments) == 0 || slices.Contains(t.Environments, env)
}
