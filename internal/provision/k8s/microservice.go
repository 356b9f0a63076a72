// Package k8s holds the golden path's Kubernetes component: a microservice
// with its namespace (single-tenant), service account bound to its IAM
// role, workload (Deployment, StatefulSet or CronJob), Services, Ingress,
// autoscaler, disruption budget, an optional in-memory cache and network
// policies, all through the typed pulumi-kubernetes SDK.
package k8s

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/spec"
)

// CacheImage is the cache's image; pinned so every environment runs the
// same cache.
const CacheImage = "public.ecr.aws/docker/library/redis:7.4-alpine"

// ZoneKey is the node label pods are spread over in production.
const ZoneKey = "topology.kubernetes.io/zone"

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
	b := builder{s: s, t: t, a: a}
	steps := []func() error{b.namespace, b.serviceAccount, b.workload, b.services, b.ingress,
		b.autoscaler, b.disruptionBudget, b.networkPolicy, b.cache}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("microservice %s: %w", t.StackName(), err)
		}
	}
	if b.longRunning() {
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
	deps []pulumi.Resource
}

// add registers one object of the service, named <stack>-<suffix>.
func add[A any, R pulumi.Resource](b *builder, ctor func(*pulumi.Context, string, *A, ...pulumi.ResourceOption) (R, error),
	suffix string, args *A,
) (R, error) {
	name := b.t.Name(suffix)
	if suffix == "" {
		name = b.t.Name()
	}
	return res.New(b.s, ctor, name, args, pulumi.DependsOn(b.deps))
}

// longRunning workloads are exposed, probed, autoscaled and spread; a
// CronJob is none of these.
func (b *builder) longRunning() bool { return b.a.Workload.Kind != spec.CronJob }

// headless names the StatefulSet's governing Service, which gives each
// replica its stable DNS name.
func (b *builder) headless() string { return b.t.Service + "-headless" }

func (b *builder) selector() *metav1.LabelSelectorArgs {
	return &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(b.t.SelectorLabels())}
}

// namespace: a single-tenant service owns its namespace; a multi-tenant one
// runs in the tenant's namespace, which the platform team owns.
func (b *builder) namespace() error {
	if b.t.Tenancy != platform.Single {
		return nil
	}
	ns, err := add(b, corev1.NewNamespace, "ns", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{
		Name: pulumi.String(b.t.Namespace()),
		// Restricted pod security: the admission controller refuses any
		// pod that the securityContext below would not already forbid.
		Labels: pulumi.StringMap{"pod-security.kubernetes.io/enforce": pulumi.String("restricted")},
	}})
	if err != nil {
		return err
	}
	b.deps = []pulumi.Resource{ns}
	return nil
}

func (b *builder) serviceAccount() error {
	meta := b.s.Meta(b.t.ServiceAccount())
	meta.Annotations = pulumi.StringMap{"eks.amazonaws.com/role-arn": b.a.RoleArn}
	_, err := add(b, corev1.NewServiceAccount, "sa", &corev1.ServiceAccountArgs{Metadata: meta})
	return err
}

// workload registers the Deployment, StatefulSet or CronJob. Long-running
// workloads leave spec.replicas unset: the autoscaler owns the replica
// count, and a set value would reset the scale on every `pulumi up`.
func (b *builder) workload() error {
	w, t := b.a.Workload, b.t
	pod := b.podTemplate()
	var err error
	switch w.Kind {
	case spec.CronJob:
		pod.Spec.(*corev1.PodSpecArgs).RestartPolicy = pulumi.String("OnFailure")
		_, err = add(b, batchv1.NewCronJob, "", &batchv1.CronJobArgs{
			Metadata: b.s.Meta(t.Service),
			Spec: &batchv1.CronJobSpecArgs{
				Schedule:          pulumi.String(w.Schedule),
				ConcurrencyPolicy: pulumi.String("Forbid"),
				JobTemplate: &batchv1.JobTemplateSpecArgs{Spec: &batchv1.JobSpecArgs{
					BackoffLimit: pulumi.Int(2), Template: pod,
				}},
			},
		})
	case spec.StatefulSet:
		_, err = add(b, appsv1.NewStatefulSet, "", &appsv1.StatefulSetArgs{
			Metadata: b.s.Meta(t.Service),
			Spec: &appsv1.StatefulSetSpecArgs{
				Selector: b.selector(), ServiceName: pulumi.String(b.headless()), Template: pod,
				VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{&corev1.PersistentVolumeClaimTypeArgs{
					Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("data")},
					Spec: &corev1.PersistentVolumeClaimSpecArgs{
						AccessModes:      pulumi.ToStringArray([]string{"ReadWriteOnce"}),
						StorageClassName: pulumi.String(b.a.StorageClass),
						Resources: &corev1.VolumeResourceRequirementsArgs{Requests: pulumi.StringMap{
							"storage": pulumi.Sprintf("%dGi", w.StorageGi),
						}},
					},
				}},
			},
		})
	default:
		_, err = add(b, appsv1.NewDeployment, "", &appsv1.DeploymentArgs{
			Metadata: b.s.Meta(t.Service),
			Spec: &appsv1.DeploymentSpecArgs{
				Selector: b.selector(), Template: pod,
				Strategy: &appsv1.DeploymentStrategyArgs{Type: pulumi.String("RollingUpdate"),
					RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{MaxUnavailable: pulumi.Int(0), MaxSurge: pulumi.Int(1)}},
			},
		})
	}
	return err
}

// podTemplate is the service's pod: its service account, the platform's
// labels (tenant, environment, service: what dashboards split by), the
// OpenTelemetry resource attributes, a restricted security context,
// requests and limits from the environment's size class, probes for
// long-running workloads and, in production, a spread over zones.
func (b *builder) podTemplate() *corev1.PodTemplateSpecArgs {
	t, w := b.t, b.a.Workload
	c := container(t.Service, b.a.Image, t.Size.CPURequest, t.Size.MemoryRequest, t.Size.CPULimit, t.Size.MemoryLimit)
	c.Env = b.env()
	if b.longRunning() {
		c.Ports = corev1.ContainerPortArray{&corev1.ContainerPortArgs{Name: pulumi.String("http"), ContainerPort: pulumi.Int(w.Port)}}
		get := &corev1.HTTPGetActionArgs{Path: pulumi.String(w.HealthPath), Port: pulumi.String("http")}
		c.ReadinessProbe = &corev1.ProbeArgs{HttpGet: get, PeriodSeconds: pulumi.Int(5)}
		c.LivenessProbe = &corev1.ProbeArgs{HttpGet: get, PeriodSeconds: pulumi.Int(10), InitialDelaySeconds: pulumi.Int(10)}
	}
	podSec := podSecurity()
	if w.Kind == spec.StatefulSet {
		c.VolumeMounts = append(c.VolumeMounts.(corev1.VolumeMountArray),
			&corev1.VolumeMountArgs{Name: pulumi.String("data"), MountPath: pulumi.String("/data")})
		// The volume is group-owned by this GID, so the non-root user
		// (whichever the image picks) can write it.
		podSec.FsGroup, podSec.FsGroupChangePolicy = pulumi.Int(2000), pulumi.String("OnRootMismatch")
	}
	podSpec := &corev1.PodSpecArgs{
		ServiceAccountName: pulumi.String(t.ServiceAccount()),
		SecurityContext:    podSec,
		Containers:         corev1.ContainerArray{c},
		Volumes:            scratch(),
	}
	if t.Production() && b.longRunning() {
		podSpec.TopologySpreadConstraints = corev1.TopologySpreadConstraintArray{&corev1.TopologySpreadConstraintArgs{
			MaxSkew: pulumi.Int(1), TopologyKey: pulumi.String(ZoneKey),
			WhenUnsatisfiable: pulumi.String("ScheduleAnyway"), LabelSelector: b.selector(),
		}}
	}
	return &corev1.PodTemplateSpecArgs{Metadata: &metav1.ObjectMetaArgs{Labels: podLabels(t, nil)}, Spec: podSpec}
}

// env is the service's environment, in a stable order (or every run would
// show a diff), with the OpenTelemetry resource attributes that let a
// collector split the telemetry of a shared service per tenant.
func (b *builder) env() corev1.EnvVarArray {
	t := b.t
	all := map[string]pulumi.StringInput{
		"OTEL_SERVICE_NAME":        pulumi.String(t.Service),
		"OTEL_RESOURCE_ATTRIBUTES": pulumi.String(ResourceAttributes(t)),
	}
	for k, v := range b.a.Env {
		all[k] = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := corev1.EnvVarArray{}
	for _, k := range keys {
		env = append(env, &corev1.EnvVarArgs{Name: pulumi.String(k), Value: all[k]})
	}
	return env
}

// ResourceAttributes is the OTEL_RESOURCE_ATTRIBUTES value of the target's
// pods.
func ResourceAttributes(t platform.Target) string {
	return strings.Join([]string{
		"service.name=" + t.Service,
		"service.namespace=" + t.Namespace(),
		"deployment.environment=" + t.Environment.Name,
		platform.TagTenant + "=" + t.Tenant.Name,
		platform.TagTeam + "=" + t.Team,
	}, ",")
}

// podLabels are the target's labels for a pod template, which New does not
// see (it stamps an object's own metadata only).
func podLabels(t platform.Target, own pulumi.StringMap) pulumi.StringMap {
	l, _ := res.Labels(t, own) // a StringMap always merges
	return l
}

// container is a container with requests, limits, a writable /tmp on a
// read-only root filesystem and a locked-down security context: non-root,
// no privilege escalation, every capability dropped.
func container(name string, image pulumi.StringInput, cpuReq, memReq, cpuLim, memLim string) *corev1.ContainerArgs {
	return &corev1.ContainerArgs{
		Name:  pulumi.String(name),
		Image: image,
		Resources: &corev1.ResourceRequirementsArgs{
			Requests: pulumi.StringMap{"cpu": pulumi.String(cpuReq), "memory": pulumi.String(memReq)},
			Limits:   pulumi.StringMap{"cpu": pulumi.String(cpuLim), "memory": pulumi.String(memLim)},
		},
		VolumeMounts: corev1.VolumeMountArray{&corev1.VolumeMountArgs{Name: pulumi.String("tmp"), MountPath: pulumi.String("/tmp")}},
		SecurityContext: &corev1.SecurityContextArgs{
			RunAsNonRoot:             pulumi.Bool(true),
			AllowPrivilegeEscalation: pulumi.Bool(false),
			Privileged:               pulumi.Bool(false),
			ReadOnlyRootFilesystem:   pulumi.Bool(true),
			Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.ToStringArray([]string{"ALL"})},
			SeccompProfile:           &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
		},
	}
}

// podSecurity is the pod-level half of the restricted profile.
func podSecurity() *corev1.PodSecurityContextArgs {
	return &corev1.PodSecurityContextArgs{
		RunAsNonRoot:   pulumi.Bool(true),
		SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

// scratch is the small writable volume behind /tmp.
func scratch() corev1.VolumeArray {
	return corev1.VolumeArray{&corev1.VolumeArgs{
		Name: pulumi.String("tmp"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String("64Mi")},
	}}
}
