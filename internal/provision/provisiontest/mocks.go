// Package provisiontest runs golden-path programs against Pulumi's mock
// engine and records every resource registered as the engine receives it
// from the typed SDKs: type token, name, inputs, and the options the
// platform stamps (parent, provider version, provider), so tests assert on
// them and run the rules over them.
package provisiontest

import (
	"fmt"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/rules"
)

// Registered is one resource as the mock monitor received it.
type Registered struct {
	rules.Resource
	// Parent is the URN of the parent resource ("" for the stack).
	Parent string
	// Version is the provider plugin version the resource asked for.
	Version string
	// Provider is the explicit provider reference, "" for the default.
	Provider string
	// DependsOn are the URNs of the explicit dependencies.
	DependsOn []string
}

// ParentType is the type of the parent resource, read from its URN
// (urn:pulumi:<stack>::<project>::<type chain>::<name>).
func (r Registered) ParentType() string {
	parts := strings.Split(r.Parent, "::")
	if len(parts) < 4 {
		return ""
	}
	chain := strings.Split(parts[2], "$")
	return chain[len(chain)-1]
}

// ParentName is the logical name of the parent resource.
func (r Registered) ParentName() string {
	parts := strings.Split(r.Parent, "::")
	return parts[len(parts)-1]
}

// Mocks implements pulumi.MockResourceMonitor. Outputs are the inputs plus
// the computed properties the components read (arn, url, endpoints), made
// up from the resource's name the way AWS would. It imports no testing
// package, so the provision binary's mock mode can use it.
type Mocks struct {
	Region, Account string

	mu         sync.Mutex
	resources  []Registered
	components []Registered
	invokes    []string
}

// NewMocks returns mocks for the platform's test account.
func NewMocks() *Mocks { return &Mocks{Region: "eu-west-1", Account: "111122223333"} }

// NewResource records the resource and returns its state.
func (m *Mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	out := args.Inputs.Copy()
	id := args.Name + "-id"
	str := func(k resource.PropertyKey) string {
		if v, ok := args.Inputs[k]; ok && v.IsString() {
			return v.StringValue()
		}
		return args.Name
	}
	svc := strings.SplitN(strings.TrimPrefix(args.TypeToken, "aws:"), "/", 2)[0]
	arn := fmt.Sprintf("arn:aws:%s:%s:%s:%s", svc, m.Region, m.Account, args.Name)
	switch rules.Type(args.TypeToken) {
	case rules.SQSQueue:
		id = fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", m.Region, m.Account, str("name"))
		out["url"] = resource.NewProperty(id)
	case rules.S3Bucket:
		arn = "arn:aws:s3:::" + str("bucket")
	case rules.RDSCluster:
		out["endpoint"] = resource.NewProperty(args.Name + ".cluster.rds.example")
		out["readerEndpoint"] = resource.NewProperty(args.Name + ".cluster-ro.rds.example")
		out["clusterResourceId"] = resource.NewProperty("cluster-" + strings.ToUpper(args.Name))
	case rules.ECRRepository:
		out["repositoryUrl"] = resource.NewProperty(m.Account + ".dkr.ecr." + m.Region + ".amazonaws.com/" + str("name"))
	case rules.KMSKey:
		out["keyId"] = resource.NewProperty(args.Name + "-key-id")
	}
	if strings.HasPrefix(args.TypeToken, "aws:") {
		out["arn"] = resource.NewProperty(arn)
		if _, ok := out["name"]; !ok {
			out["name"] = resource.NewProperty(args.Name)
		}
	}
	out["id"] = resource.NewProperty(id)
	r := Registered{
		Resource: rules.Resource{Type: rules.Type(args.TypeToken), Name: args.Name,
			Inputs: args.Inputs.Mappable(), Outputs: out.Mappable()},
		Provider: args.Provider,
	}
	if rpc := args.RegisterRPC; rpc != nil {
		r.Parent, r.Version, r.DependsOn = rpc.GetParent(), rpc.GetVersion(), rpc.GetDependencies()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !args.Custom {
		m.components = append(m.components, r)
		return id, out, nil
	}
	m.resources = append(m.resources, r)
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

// Resources returns the provider resources registered, in registration
// order, as the rules judge them.
func (m *Mocks) Resources() []rules.Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]rules.Resource, len(m.resources))
	for i, r := range m.resources {
		out[i] = r.Resource
	}
	return out
}

// Registered returns the provider resources with their options.
func (m *Mocks) Registered() []Registered {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Registered(nil), m.resources...)
}

// Components returns the component resources registered.
func (m *Mocks) Components() []Registered {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Registered(nil), m.components...)
}

// Invokes returns the invoke tokens called.
func (m *Mocks) Invokes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.invokes...)
}

// RunMocked runs program against fresh mocks for the stack and returns
// them.
func RunMocked(project, stack string, program pulumi.RunFunc) (*Mocks, error) {
	m := NewMocks()
	err := pulumi.RunErr(program, pulumi.WithMocks(project, stack, m))
	return m, err
}
