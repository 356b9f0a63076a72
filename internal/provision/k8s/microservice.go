// Package k8s holds the golden path's Kubernetes component: a microservice
// with its namespace (single-tenant), service account bound to its IAM
// role, workload (Deployment, StatefulSet or CronJob), Service, Ingress,
// autoscaler, an optional in-memory cache and network policies.
package k8s

import (
	"fmt"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/spec"
)

// CacheImage is the cache's image; pinned so every environment runs the
// same cache.
const CacheImage = "public.ecr.aws/docker/library/redis:7.4-alpine"

// Args describe the microservice beyond its model.
type Args struct {
	Workload spec.Workload
	Cache    bool
	// Image is the container image (the ECR repository's image, or the
	// platform's bootstrap image before the first push).
	Image pulumi.StringInput
	// RoleArn is the IRSA role the service account assumes.
	RoleArn pulumi.StringInput
	// Env are environment variables naming the service's resources.
	Env map[string]pulumi.StringInput
	// StorageClass is the encrypted storage class for StatefulSet volumes.
	StorageClass string
}

// Microservice is the deployed service.
type Microservice struct {
	pulumi.ResourceState
	Namespace string
	URL       string
}

// NewMicroservice registers the service's Kubernetes objects.
func NewMicroservice(s res.Scope, a Args) (*Microservice, error) {
	t := s.Target
	m := &Microservice{Namespace: t.Namespace()}
	s, err := s.Component("paved:k8s:Microservice", t.Name(), m)
	if err != nil {
		return nil, err
	}
	b := builder{s: s, t: t, a: a, ns: t.Namespace()}
	steps := []func() error{b.namespace, b.serviceAccount, b.workload, b.service, b.ingress, b.autoscaler, b.networkPolicy, b.cache}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("microservice %s: %w", t.StackName(), err)
		}
	}
	if b.exposed() {
		m.URL = "https://" + t.Host()
	}
	if err := s.Ctx.RegisterResourceOutputs(m, pulumi.Map{
		"namespace": pulumi.String(m.Namespace), "url": pulumi.String(m.URL),
	}); err != nil {
		return nil, fmt.Errorf("microservice %s outputs: %w", t.StackName(), err)
	}
	return m, nil
}

// builder registers the objects in order; deps makes later objects wait for
// the namespace, which a single-tenant service creates itself.
type builder struct {
	s    res.Scope
	t    platform.Target
	a    Args
	ns   string
	deps []pulumi.Resource
}

func (b *builder) register(t res.Type, suffix string, props pulumi.Map) (*res.Resource, error) {
	name := b.t.Name(suffix)
	if suffix == "" {
		name = b.t.Name()
	}
	return b.s.Register(t, name, props, pulumi.DependsOn(b.deps))
}

func (b *builder) exposed() bool { return b.a.Workload.Kind != spec.CronJob }

// namespace: a single-tenant service owns its namespace; a multi-tenant one
// runs in the tenant's namespace, which the platform team owns.
func (b *builder) namespace() error {
	if b.t.Tenancy != platform.Single {
		return nil
	}
	ns, err := b.register(res.K8sNamespace, "ns", pulumi.Map{"metadata": pulumi.Map{
		"name": pulumi.String(b.ns),
		// Restricted pod security: no root, no privilege escalation.
		"labels": pulumi.StringMap{"pod-security.kubernetes.io/enforce": pulumi.String("restricted")},
	}})
	if err != nil {
		return err
	}
	b.deps = []pulumi.Resource{ns}
	return nil
}

func (b *builder) serviceAccount() error {
	meta := res.Meta(b.t.ServiceAccount(), b.ns)
	meta["annotations"] = pulumi.StringMap{"eks.amazonaws.com/role-arn": b.a.RoleArn}
	_, err := b.register(res.K8sServiceAccount, "sa", pulumi.Map{"metadata": meta})
	return err
}

func (b *builder) workload() error {
	w, t := b.a.Workload, b.t
	replicas := w.Replicas
	if replicas == 0 {
		replicas = t.Size.Replicas
	}
	pod := b.podTemplate(w.Kind != spec.CronJob)
	selector := pulumi.Map{"matchLabels": pulumi.ToStringMap(t.SelectorLabels())}
	switch w.Kind {
	case spec.CronJob:
		_, err := b.register(res.K8sCronJob, "", pulumi.Map{
			"metadata": res.Meta(t.Service, b.ns),
			"spec": pulumi.Map{
				"schedule":          pulumi.String(w.Schedule),
				"concurrencyPolicy": pulumi.String("Forbid"),
				"jobTemplate": pulumi.Map{"spec": pulumi.Map{
					"backoffLimit": pulumi.Int(2),
					"template":     withRestart(pod, "OnFailure"),
				}},
			},
		})
		return err
	case spec.StatefulSet:
		_, err := b.register(res.K8sStatefulSet, "", pulumi.Map{
			"metadata": res.Meta(t.Service, b.ns),
			"spec": pulumi.Map{
				"replicas": pulumi.Int(replicas), "selector": selector, "serviceName": pulumi.String(t.Service),
				"template": pod,
				"volumeClaimTemplates": pulumi.Array{pulumi.Map{
					"metadata": pulumi.Map{"name": pulumi.String("data")},
					"spec": pulumi.Map{
						"accessModes":      pulumi.ToStringArray([]string{"ReadWriteOnce"}),
						"storageClassName": pulumi.String(b.a.StorageClass),
						"resources": pulumi.Map{"requests": pulumi.StringMap{
							"storage": pulumi.Sprintf("%dGi", w.StorageGi),
						}},
					},
				}},
			},
		})
		return err
	default:
		_, err := b.register(res.K8sDeployment, "", pulumi.Map{
			"metadata": res.Meta(t.Service, b.ns),
			"spec": pulumi.Map{
				"replicas": pulumi.Int(replicas), "selector": selector, "template": pod,
				"strategy": pulumi.Map{"type": pulumi.String("RollingUpdate"), "rollingUpdate": pulumi.Map{
					"maxUnavailable": pulumi.Int(0), "maxSurge": pulumi.Int(1),
				}},
			},
		})
		return err
	}
}

// podTemplate is the service's pod: its service account, a restricted
// security context, requests and limits from the environment's size class,
// probes for long-running workloads and, in production, a spread over
// availability zones.
func (b *builder) podTemplate(probes bool) pulumi.Map {
	t, w := b.t, b.a.Workload
	env := pulumi.Array{}
	keys := make([]string, 0, len(b.a.Env))
	for k := range b.a.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable order, or every run would show a diff
	for _, k := range keys {
		env = append(env, pulumi.Map{"name": pulumi.String(k), "value": b.a.Env[k]})
	}
	c := container(t.Service, b.a.Image, t.Size.CPURequest, t.Size.MemoryRequest, t.Size.CPULimit, t.Size.MemoryLimit)
	c["env"] = env
	if probes {
		c["ports"] = pulumi.Array{pulumi.Map{"name": pulumi.String("http"), "containerPort": pulumi.Int(w.Port)}}
		probe := pulumi.Map{"httpGet": pulumi.Map{"path": pulumi.String(w.HealthPath), "port": pulumi.String("http")}}
		c["readinessProbe"] = merge(probe, pulumi.Map{"periodSeconds": pulumi.Int(5)})
		c["livenessProbe"] = merge(probe, pulumi.Map{"periodSeconds": pulumi.Int(10), "initialDelaySeconds": pulumi.Int(10)})
	}
	if w.Kind == spec.StatefulSet {
		c["volumeMounts"] = pulumi.Array{pulumi.Map{"name": pulumi.String("data"), "mountPath": pulumi.String("/data")}}
	}
	podSpec := pulumi.Map{
		"serviceAccountName": pulumi.String(t.ServiceAccount()),
		"securityContext": pulumi.Map{
			"runAsNonRoot":   pulumi.Bool(true),
			"seccompProfile": pulumi.Map{"type": pulumi.String("RuntimeDefault")},
		},
		"containers": pulumi.Array{c},
	}
	if t.Production() && probes {
		podSpec["topologySpreadConstraints"] = pulumi.Array{pulumi.Map{
			"maxSkew": pulumi.Int(1), "topologyKey": pulumi.String("topology.kubernetes.io/zone"),
			"whenUnsatisfiable": pulumi.String("ScheduleAnyway"),
			"labelSelector":     pulumi.Map{"matchLabels": pulumi.ToStringMap(t.SelectorLabels())},
		}}
	}
	return pulumi.Map{
		"metadata": pulumi.Map{"labels": pulumi.ToStringMap(t.Labels())},
		"spec":     podSpec,
	}
}

// container is a container with requests, limits and a locked-down
// security context.
func container(name string, image pulumi.StringInput, cpuReq, memReq, cpuLim, memLim string) pulumi.Map {
	return pulumi.Map{
		"name":  pulumi.String(name),
		"image": image,
		"resources": pulumi.Map{
			"requests": pulumi.StringMap{"cpu": pulumi.String(cpuReq), "memory": pulumi.String(memReq)},
			"limits":   pulumi.StringMap{"cpu": pulumi.String(cpuLim), "memory": pulumi.String(memLim)},
		},
		"securityContext": pulumi.Map{
			"allowPrivilegeEscalation": pulumi.Bool(false),
			"readOnlyRootFilesystem":   pulumi.Bool(true),
			"capabilities":             pulumi.Map{"drop": pulumi.ToStringArray([]string{"ALL"})},
		},
	}
}

func withRestart(pod pulumi.Map, policy string) pulumi.Map {
	spec := merge(pod["spec"].(pulumi.Map), pulumi.Map{"restartPolicy": pulumi.String(policy)})
	return pulumi.Map{"metadata": pod["metadata"], "spec": spec}
}

func merge(a, b pulumi.Map) pulumi.Map {
	out := pulumi.Map{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
