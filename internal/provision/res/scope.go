// Package res is the one place where the platform's rules for every
// resource are applied. Components register resources through the typed
// provider SDKs (pulumi-aws v6, pulumi-kubernetes v4), always by New, which
// names nothing itself but, for every resource, adds the cost and ownership
// tags (AWS Tags) or labels (Kubernetes metadata.labels), parents it to its
// component and pins the provider plugin version from the platform file. A
// component cannot forget any of them: it never writes them.
package res

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"runtime/debug"
	"strings"

	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
)

// The provider SDK modules, by Go module path; New tells the provider of a
// resource by the package of its args type.
const (
	AWSModule        = "github.com/pulumi/pulumi-aws/sdk/v6"
	KubernetesModule = "github.com/pulumi/pulumi-kubernetes/sdk/v4"
)

// Scope registers the resources of one component of one target.
type Scope struct {
	Ctx       *pulumi.Context
	Target    platform.Target
	Providers platform.Providers
	// Parent is the component the scope's resources belong to; nil only
	// at the top, where components register.
	Parent pulumi.Resource
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

// New registers one resource through its typed SDK constructor (s3.NewBucketV2,
// appsv1.NewDeployment, …). The args are the SDK's typed args; New works on
// a copy, merges the platform's tags or labels into it, and appends the
// parent and the pinned provider version after the caller's options, so the
// platform's choices win.
func New[A any, R pulumi.Resource](s Scope,
	ctor func(*pulumi.Context, string, *A, ...pulumi.ResourceOption) (R, error),
	name string, args *A, opts ...pulumi.ResourceOption,
) (R, error) {
	var zero R
	typ := reflect.TypeFor[A]()
	if s.Parent == nil {
		return zero, fmt.Errorf("register %s %q: outside a component", typ, name)
	}
	version, err := s.version(typ)
	if err != nil {
		return zero, fmt.Errorf("register %q: %w", name, err)
	}
	stamped, err := stamp(args, s.Target)
	if err != nil {
		return zero, fmt.Errorf("register %s %q: %w", typ, name, err)
	}
	all := append(append([]pulumi.ResourceOption{}, opts...), pulumi.Parent(s.Parent))
	if version != "" {
		// Without it the SDK pins its own version, the one it was
		// generated from.
		all = append(all, pulumi.Version(version))
	}
	r, err := ctor(s.Ctx, name, stamped, all...)
	if err != nil {
		return zero, fmt.Errorf("register %s %q: %w", typ, name, err)
	}
	return r, nil
}

// InvokeOpts parents and pins an invoke (a data source lookup) of the AWS
// provider as New does a resource.
func (s Scope) InvokeOpts() []pulumi.InvokeOption {
	opts := []pulumi.InvokeOption{}
	if s.Parent != nil {
		opts = append(opts, pulumi.Parent(s.Parent))
	}
	if s.Providers.AWS != "" {
		opts = append(opts, pulumi.Version(s.Providers.AWS))
	}
	return opts
}

// version is the pinned plugin version of the provider whose SDK declares
// the args type.
func (s Scope) version(args reflect.Type) (string, error) {
	switch p := args.PkgPath(); {
	case strings.HasPrefix(p, AWSModule+"/"):
		return s.Providers.AWS, nil
	case strings.HasPrefix(p, KubernetesModule+"/"):
		return s.Providers.Kubernetes, nil
	default:
		return "", fmt.Errorf("%s is not from a provider SDK the platform pins", args)
	}
}

// stamp returns a copy of args with the target's tags in an AWS Tags field
// and its labels in a Kubernetes Metadata field. Every AWS args type that
// has Tags and every Kubernetes kind has one of the two, so whether a
// resource is tagged is the SDK's answer, not a list kept here.
func stamp[A any](args *A, t platform.Target) (*A, error) {
	cp := new(A)
	if args != nil {
		*cp = *args // shallow: the caller's args stay as written
	}
	v := reflect.ValueOf(cp).Elem()
	if f := v.FieldByName("Tags"); f.IsValid() {
		own, ok := f.Interface().(pulumi.StringMap)
		if !ok && !f.IsNil() {
			return nil, errors.New("the Tags field must be a pulumi.StringMap, so the platform's tags can be merged in")
		}
		// The ownership tags win over anything the component set.
		tags := pulumi.StringMap{}
		maps.Copy(tags, own)
		maps.Copy(tags, pulumi.ToStringMap(t.Tags()))
		f.Set(reflect.ValueOf(tags))
	}
	if f := v.FieldByName("Metadata"); f.IsValid() {
		meta, ok := f.Interface().(*metav1.ObjectMetaArgs)
		if !ok && !f.IsNil() {
			return nil, errors.New("the Metadata field must be a *metav1.ObjectMetaArgs, so the platform's labels can be merged in")
		}
		m := metav1.ObjectMetaArgs{}
		if meta != nil {
			m = *meta
		}
		labels, err := Labels(t, m.Labels)
		if err != nil {
			return nil, err
		}
		m.Labels = labels
		f.Set(reflect.ValueOf(&m))
	}
	return cp, nil
}

// Labels merges a Kubernetes object's own labels with the target's: the
// recommended app.kubernetes.io labels are defaults an object may refine
// (the cache names itself), the ownership tags always win.
func Labels(t platform.Target, own pulumi.StringMapInput) (pulumi.StringMap, error) {
	m, ok := own.(pulumi.StringMap)
	if !ok && own != nil {
		return nil, errors.New("labels must be a pulumi.StringMap, so the platform's labels can be merged in")
	}
	labels := pulumi.ToStringMap(t.Labels())
	maps.Copy(labels, m)
	maps.Copy(labels, pulumi.ToStringMap(t.Tags()))
	return labels, nil
}

// Meta is the metadata of a Kubernetes object in the target's namespace;
// New adds the labels.
func (s Scope) Meta(name string) *metav1.ObjectMetaArgs {
	return &metav1.ObjectMetaArgs{Name: pulumi.String(name), Namespace: pulumi.String(s.Target.Namespace())}
}

// PinMismatches names the providers whose pinned plugin version differs
// from the SDK version the program was built with: the typed args follow
// the SDK's schema, so the plugin should be the same release. A test
// binary records no dependencies, so it finds none.
func PinMismatches(p platform.Providers) []string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return pinMismatches(p, info.Deps)
}

func pinMismatches(p platform.Providers, deps []*debug.Module) []string {
	pins := map[string]string{AWSModule: p.AWS, KubernetesModule: p.Kubernetes}
	var out []string
	for _, d := range deps {
		if pin := pins[d.Path]; pin != "" && "v"+pin != d.Version {
			out = append(out, fmt.Sprintf("%s is built at %s but the platform pins plugin %s", d.Path, d.Version, pin))
		}
	}
	return out
}
