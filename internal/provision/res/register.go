package res

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
)

// Resource is a registered provider resource. It declares the union of the
// outputs the components read; an output a type does not have resolves to
// its zero value, which no component reads.
type Resource struct {
	pulumi.CustomResourceState

	Arn            pulumi.StringOutput `pulumi:"arn"`
	Name           pulumi.StringOutput `pulumi:"name"`
	URL            pulumi.StringOutput `pulumi:"url"`
	Bucket         pulumi.StringOutput `pulumi:"bucket"`
	Endpoint       pulumi.StringOutput `pulumi:"endpoint"`
	ReaderEndpoint pulumi.StringOutput `pulumi:"readerEndpoint"`
	Port           pulumi.IntOutput    `pulumi:"port"`
	RepositoryURL  pulumi.StringOutput `pulumi:"repositoryUrl"`
	KeyID          pulumi.StringOutput `pulumi:"keyId"`
	// ClusterResourceID names an Aurora cluster in rds-db:connect ARNs.
	ClusterResourceID pulumi.StringOutput `pulumi:"clusterResourceId"`
}

// Scope registers the resources of one component of one target: it names
// them, tags them, parents them to the component and pins the provider
// plugin versions.
type Scope struct {
	Ctx       *pulumi.Context
	Target    platform.Target
	Providers platform.Providers
	Parent    pulumi.Resource
}

// Component registers a component resource (type paved:<module>:<Kind>) and
// returns a scope whose resources are its children.
func (s Scope) Component(typ, name string, comp pulumi.ComponentResource) (Scope, error) {
	var opts []pulumi.ResourceOption
	if s.Parent != nil {
		opts = append(opts, pulumi.Parent(s.Parent))
	}
	if err := s.Ctx.RegisterComponentResource(typ, name, comp, opts...); err != nil {
		return Scope{}, fmt.Errorf("register component %s %q: %w", typ, name, err)
	}
	child := s
	child.Parent = comp
	return child, nil
}

// Register registers one provider resource under the given logical name.
// The cost and ownership tags are added here, once for every resource, so
// no component can forget them: AWS types get "tags" (merged over any the
// caller set), Kubernetes types get "metadata.labels".
func (s Scope) Register(t Type, name string, props pulumi.Map, opts ...pulumi.ResourceOption) (*Resource, error) {
	props = maps.Clone(props)
	tg, ok := TaggingOf(t)
	if !ok {
		return nil, fmt.Errorf("register %s %q: type unknown to the typed layer", t, name)
	}
	switch tg {
	case AWSTags:
		props["tags"] = pulumi.ToStringMap(s.Target.Tags())
	case K8sLabels:
		meta, _ := props["metadata"].(pulumi.Map)
		meta = maps.Clone(meta)
		if meta == nil {
			meta = pulumi.Map{}
		}
		labels := pulumi.StringMap{}
		if own, ok := meta["labels"].(pulumi.StringMap); ok {
			maps.Copy(labels, own)
		}
		maps.Copy(labels, pulumi.ToStringMap(s.Target.Labels()))
		meta["labels"] = labels
		props["metadata"] = meta
	}
	all := make([]pulumi.ResourceOption, 0, len(opts)+2)
	if s.Parent != nil {
		all = append(all, pulumi.Parent(s.Parent))
	}
	if v := s.version(t); v != "" {
		all = append(all, pulumi.Version(v))
	}
	all = append(all, opts...)
	var r Resource
	if err := s.Ctx.RegisterResource(string(t), name, props, &r, all...); err != nil {
		return nil, fmt.Errorf("register %s %q: %w", t, name, err)
	}
	return &r, nil
}

func (s Scope) version(t Type) string {
	if strings.HasPrefix(string(t), "kubernetes:") {
		return s.Providers.Kubernetes
	}
	return s.Providers.AWS
}

// Meta is Kubernetes object metadata; Register adds the labels.
func Meta(name, namespace string) pulumi.Map {
	m := pulumi.Map{"name": pulumi.String(name)}
	if namespace != "" {
		m["namespace"] = pulumi.String(namespace)
	}
	return m
}

// JSON renders a document that needs the values of some outputs (ARNs,
// URLs) once they are known. The build function gets the resolved values
// in order. It is used instead of pulumi.JSONMarshal because that cannot
// marshal unknowns nested in a document during a preview.
func JSON(build func(v []string) any, outs ...pulumi.StringInput) pulumi.StringOutput {
	ins := make([]any, len(outs))
	for i, o := range outs {
		ins[i] = o
	}
	return pulumi.All(ins...).ApplyT(func(vs []any) (string, error) {
		strs := make([]string, len(vs))
		for i, v := range vs {
			strs[i], _ = v.(string)
		}
		b, err := json.Marshal(build(strs))
		if err != nil {
			return "", fmt.Errorf("render JSON document: %w", err)
		}
		return string(b), nil
	}).(pulumi.StringOutput)
}

// Statement is one IAM policy statement; Policy wraps statements in the
// 2012-10-17 policy language envelope.
type Statement struct {
	Sid       string         `json:"Sid,omitempty"`
	Effect    string         `json:"Effect"`
	Principal any            `json:"Principal,omitempty"`
	Action    []string       `json:"Action"`
	Resource  []string       `json:"Resource,omitempty"`
	Condition map[string]any `json:"Condition,omitempty"`
}

// Policy is an IAM policy document.
func Policy(st ...Statement) map[string]any {
	return map[string]any{"Version": "2012-10-17", "Statement": st}
}
