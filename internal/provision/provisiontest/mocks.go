// Package provisiontest runs golden-path programs against Pulumi's mock
// engine and records every resource registered, so tests assert on types,
// names and inputs and run the rules over them.
package provisiontest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/rules"
)

// Mocks implements pulumi.MockResourceMonitor. Outputs are the inputs plus
// the computed properties the components read (arn, url, endpoints), made
// up from the resource's name the way AWS would.
type Mocks struct {
	Region, Account string

	mu         sync.Mutex
	resources  []rules.Resource
	components []string
	invokes    []string
}

// NewResource records the resource and returns its state.
func (m *Mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	out := args.Inputs.Copy()
	id := args.Name + "-id"
	svc := strings.SplitN(strings.TrimPrefix(args.TypeToken, "aws:"), "/", 2)[0]
	arn := fmt.Sprintf("arn:aws:%s:%s:%s:%s", svc, m.Region, m.Account, args.Name)
	switch res.Type(args.TypeToken) {
	case res.SQSQueue:
		id = fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", m.Region, m.Account, args.Inputs["name"].StringValue())
		out["url"] = resource.NewProperty(id)
	case res.S3Bucket:
		arn = "arn:aws:s3:::" + args.Inputs["bucket"].StringValue()
	case res.RDSCluster:
		out["endpoint"] = resource.NewProperty(args.Name + ".cluster.rds.example")
		out["readerEndpoint"] = resource.NewProperty(args.Name + ".cluster-ro.rds.example")
		out["clusterResourceId"] = resource.NewProperty("cluster-" + strings.ToUpper(args.Name))
	case res.ECRRepository:
		out["repositoryUrl"] = resource.NewProperty(m.Account + ".dkr.ecr." + m.Region + ".amazonaws.com/" + args.Inputs["name"].StringValue())
	case res.KMSKey:
		out["keyId"] = resource.NewProperty(args.Name + "-key-id")
	}
	if strings.HasPrefix(args.TypeToken, "aws:") {
		out["arn"] = resource.NewProperty(arn)
		if _, ok := out["name"]; !ok {
			out["name"] = resource.NewProperty(args.Name)
		}
	}
	out["id"] = resource.NewProperty(id)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !args.Custom {
		m.components = append(m.components, args.TypeToken+" "+args.Name)
		return id, out, nil
	}
	m.resources = append(m.resources, rules.Resource{
		Type: res.Type(args.TypeToken), Name: args.Name,
		Inputs: args.Inputs.Mappable(), Outputs: out.Mappable(),
	})
	return id, out, nil
}

// Call answers invokes: the tenant key lookup.
func (m *Mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	m.mu.Lock()
	m.invokes = append(m.invokes, args.Token)
	m.mu.Unlock()
	if args.Token == "aws:kms/getAlias:getAlias" {
		name := args.Args["name"].StringValue()
		return resource.PropertyMap{
			"arn":          resource.NewProperty(fmt.Sprintf("arn:aws:kms:%s:%s:%s", m.Region, m.Account, name)),
			"targetKeyArn": resource.NewProperty(fmt.Sprintf("arn:aws:kms:%s:%s:key/shared-%s", m.Region, m.Account, strings.TrimPrefix(name, "alias/"))),
		}, nil
	}
	return nil, fmt.Errorf("unexpected invoke %s", args.Token)
}

// Resources returns what was registered, in registration order.
func (m *Mocks) Resources() []rules.Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]rules.Resource(nil), m.resources...)
}

// Components returns the component resources as "type name".
func (m *Mocks) Components() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.components...)
}

// Invokes returns the invoke tokens called.
func (m *Mocks) Invokes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.invokes...)
}

// Run runs program against fresh mocks for the stack and returns them.
func Run(t testing.TB, stack string, program pulumi.RunFunc) (*Mocks, error) {
	t.Helper()
	m := &Mocks{Region: "eu-west-1", Account: "111122223333"}
	err := pulumi.RunErr(program, pulumi.WithMocks("paved-provision", stack, m))
	return m, err
}

// Config is a platform with every combination the tests need: dev and
// staging (small, medium) and prod, a single-tenant and a multi-tenant
// tenant.
func Config(t testing.TB) *platform.Config {
	t.Helper()
	c, err := platform.Parse([]byte(configYAML))
	if err != nil {
		t.Fatalf("test platform config: %v", err)
	}
	return c
}

// Target resolves a target in Config.
func Target(t testing.TB, tenant, env, service string, tenancy platform.Tenancy) platform.Target {
	t.Helper()
	tg, err := Config(t).Resolve(tenant, env, service, "payments", tenancy)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// Environments and Tenancies are the combinations every component is
// tested in.
var (
	Environments = []string{"dev", "staging", "prod"}
	Tenancies    = []platform.Tenancy{platform.Single, platform.Multi}
)

const configYAML = `
region: eu-west-1
accountId: "111122223333"
providers: {aws: 6.83.1, kubernetes: 4.23.0}
bootstrapImage: public.ecr.aws/nginx/nginx-unprivileged:stable-alpine
sizeClasses:
  small: {replicas: 1, maxReplicas: 3, cpuRequest: 100m, memoryRequest: 128Mi, cpuLimit: 500m, memoryLimit: 256Mi, databaseClasses: [db.t4g.medium], cacheMemory: 128Mi}
  medium: {replicas: 2, maxReplicas: 6, cpuRequest: 250m, memoryRequest: 256Mi, cpuLimit: "1", memoryLimit: 512Mi, databaseClasses: [db.t4g.large], cacheMemory: 256Mi}
  large: {replicas: 3, maxReplicas: 20, cpuRequest: 500m, memoryRequest: 512Mi, cpuLimit: "2", memoryLimit: 1Gi, databaseClasses: [db.r7g.large, db.r7g.xlarge], cacheMemory: 1Gi}
environments:
  - {name: dev, production: false, size: small, vpcId: vpc-dev, dbSubnetGroup: dev-data, clusterCidr: 10.10.0.0/16, oidcIssuer: oidc.eks.eu-west-1.amazonaws.com/id/DEV, ingressDomain: dev.example.com, ingressClass: nginx, ingressNamespace: ingress-nginx, storageClass: gp3-encrypted}
  - {name: staging, production: false, size: medium, vpcId: vpc-stg, dbSubnetGroup: stg-data, clusterCidr: 10.20.0.0/16, oidcIssuer: oidc.eks.eu-west-1.amazonaws.com/id/STG, ingressDomain: stg.example.com, ingressClass: nginx, ingressNamespace: ingress-nginx, storageClass: gp3-encrypted}
  - {name: prod, production: true, size: large, vpcId: vpc-prd, dbSubnetGroup: prd-data, clusterCidr: 10.30.0.0/16, oidcIssuer: oidc.eks.eu-west-1.amazonaws.com/id/PRD, ingressDomain: example.com, ingressClass: nginx, ingressNamespace: ingress-nginx, storageClass: gp3-encrypted}
tenants:
  - {name: acme, costCenter: cc-1001, tenancy: single}
  - {name: globex, costCenter: cc-2002, tenancy: multi}
  - {name: initech, costCenter: cc-3003, tenancy: multi, environments: [dev]}
`
