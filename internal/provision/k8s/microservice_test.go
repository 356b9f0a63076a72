package k8s_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	autoscalingv2 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/autoscaling/v2"
	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/k8s"
	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/provisiontest"
	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/rules"
	"github.com/paved-idp/paved/internal/provision/spec"
)

// deployed is one microservice registered under the mocks.
type deployed struct {
	t    platform.Target
	kind string
	rs   []rules.Resource
}

// each registers the microservice, with its cache, for every environment
// (production and not) × tenancy × workload kind and calls check.
func each(t *testing.T, check func(t *testing.T, d deployed)) {
	cfg := provisiontest.Config(t)
	for _, env := range provisiontest.Environments {
		for _, tenancy := range provisiontest.Tenancies {
			for _, kind := range []string{spec.Deployment, spec.StatefulSet, spec.CronJob} {
				t.Run(env+"/"+string(tenancy)+"/"+kind, func(t *testing.T) {
					tg := provisiontest.Target(t, provisiontest.TenantFor(tenancy), env, "orders", tenancy)
					w := spec.Workload{Kind: kind, Port: 8080, HealthPath: "/healthz", Schedule: "0 * * * *", StorageGi: 10}
					m, err := provisiontest.Run(t, tg.StackName(), func(ctx *pulumi.Context) error {
						_, err := k8s.NewMicroservice(res.Scope{Ctx: ctx, Target: tg, Providers: cfg.Providers}, k8s.Args{
							Workload: w, Cache: true, Image: pulumi.String("img"), RoleArn: pulumi.String("arn:aws:iam::1:role/r"),
							Env: map[string]pulumi.StringInput{"AWS_REGION": pulumi.String("eu-west-1")}, StorageClass: "gp3-encrypted",
						})
						return err
					})
					if err != nil {
						t.Fatal(err)
					}
					if p := provisiontest.StampProblems(m, tg, cfg.Providers); len(p) > 0 {
						t.Errorf("unstamped: %v", p)
					}
					check(t, deployed{t: tg, kind: kind, rs: m.Resources()})
				})
			}
		}
	}
}

// pods decodes the pod template of every workload, by workload name.
func pods(t *testing.T, d deployed) map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for _, r := range d.rs {
		switch r.Type {
		case rules.K8sDeployment:
			out[r.Name] = provisiontest.Decode[appsv1.DeploymentType](t, r).Spec.Template
		case rules.K8sStatefulSet:
			out[r.Name] = provisiontest.Decode[appsv1.StatefulSetType](t, r).Spec.Template
		case rules.K8sCronJob:
			out[r.Name] = provisiontest.Decode[batchv1.CronJobType](t, r).Spec.JobTemplate.Spec.Template
		}
	}
	if len(out) != 2 {
		t.Fatalf("%d workloads, want the service's and the cache's", len(out))
	}
	return out
}

func of[T any](t *testing.T, d deployed, typ rules.Type) []T {
	var out []T
	for _, r := range d.rs {
		if r.Type == typ {
			out = append(out, provisiontest.Decode[T](t, r))
		}
	}
	return out
}

func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

// TestAutoscaledWorkloadLeavesReplicasUnset: the HPA owns the replica
// count, from the requested (or default) replicas to the size class's
// ceiling; the workload it scales sets no spec.replicas, or every
// `pulumi up` would reset the scale.
func TestAutoscaledWorkloadLeavesReplicasUnset(t *testing.T) {
	each(t, func(t *testing.T, d deployed) {
		hpas := of[autoscalingv2.HorizontalPodAutoscalerType](t, d, rules.K8sHPA)
		if d.kind == spec.CronJob {
			if len(hpas) != 0 {
				t.Fatalf("a CronJob is not autoscaled")
			}
			return
		}
		if len(hpas) != 1 {
			t.Fatalf("%d autoscalers", len(hpas))
		}
		h := hpas[0].Spec
		if h.ScaleTargetRef.Name != "orders" || deref(h.MinReplicas) != d.t.Size.Replicas || h.MaxReplicas != d.t.Size.MaxReplicas {
			t.Errorf("autoscaler %+v, want orders %d-%d", h, d.t.Size.Replicas, d.t.Size.MaxReplicas)
		}
		var replicas *int
		switch d.kind {
		case spec.Deployment:
			for _, w := range of[appsv1.DeploymentType](t, d, rules.K8sDeployment) {
				if deref(w.Metadata.Name) == "orders" {
					replicas = w.Spec.Replicas
					if h.ScaleTargetRef.Kind != "Deployment" {
						t.Errorf("scales a %s", h.ScaleTargetRef.Kind)
					}
				} else if deref(w.Spec.Replicas) != 1 {
					t.Errorf("cache replicas %v, want 1 (it is not autoscaled)", w.Spec.Replicas)
				}
			}
		case spec.StatefulSet:
			replicas = of[appsv1.StatefulSetType](t, d, rules.K8sStatefulSet)[0].Spec.Replicas
		}
		if replicas != nil {
			t.Errorf("autoscaled %s sets spec.replicas = %d", d.kind, *replicas)
		}
	})
}

// TestStatefulSetGetsHeadlessService: the StatefulSet's serviceName is a
// headless Service (clusterIP None) of its namespace that selects its pods;
// the ClusterIP Service the ingress uses is another.
func TestStatefulSetGetsHeadlessService(t *testing.T) {
	each(t, func(t *testing.T, d deployed) {
		svcs := of[corev1.ServiceType](t, d, rules.K8sService)
		headless := slices.IndexFunc(svcs, func(s corev1.ServiceType) bool { return deref(s.Spec.ClusterIP) == "None" })
		if d.kind != spec.StatefulSet {
			if headless >= 0 {
				t.Errorf("a %s gets no headless Service", d.kind)
			}
			return
		}
		ss := of[appsv1.StatefulSetType](t, d, rules.K8sStatefulSet)[0]
		if headless < 0 {
			t.Fatal("no headless Service")
		}
		h := svcs[headless]
		if deref(h.Metadata.Name) != deref(ss.Spec.ServiceName) || deref(h.Metadata.Namespace) != d.t.Namespace() {
			t.Errorf("headless Service %s/%s, StatefulSet serviceName %q", deref(h.Metadata.Namespace), deref(h.Metadata.Name), deref(ss.Spec.ServiceName))
		}
		for k, v := range h.Spec.Selector {
			if ss.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("headless selector %v does not select the pods %v", h.Spec.Selector, ss.Spec.Template.Metadata.Labels)
			}
		}
	})
}

// TestPodsRunRestricted: every pod (the service's and the cache's) runs
// non-root under seccomp RuntimeDefault, every container with a read-only
// root filesystem, no privilege escalation and all capabilities dropped.
func TestPodsRunRestricted(t *testing.T) {
	each(t, func(t *testing.T, d deployed) {
		for name, p := range pods(t, d) {
			ps := deref(p.Spec.SecurityContext)
			if !deref(ps.RunAsNonRoot) || deref(ps.SeccompProfile).Type != "RuntimeDefault" {
				t.Errorf("%s: pod security %+v", name, ps)
			}
			for _, c := range p.Spec.Containers {
				sc := deref(c.SecurityContext)
				if !deref(sc.RunAsNonRoot) || !deref(sc.ReadOnlyRootFilesystem) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
					deref(sc.Privileged) || !slices.Equal(deref(sc.Capabilities).Drop, []string{"ALL"}) || deref(sc.SeccompProfile).Type != "RuntimeDefault" {
					t.Errorf("%s/%s: container security %+v", name, c.Name, sc)
				}
				// A read-only root filesystem still needs a writable /tmp.
				if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" }) {
					t.Errorf("%s/%s: no writable /tmp", name, c.Name)
				}
			}
		}
	})
}

// TestProductionSpreadsAndBudgets: in production the service's pods spread
// over zones and a PodDisruptionBudget selecting them lets one go at a
// time; elsewhere neither. CronJobs and the cache get neither.
func TestProductionSpreadsAndBudgets(t *testing.T) {
	each(t, func(t *testing.T, d deployed) {
		want := d.t.Production() && d.kind != spec.CronJob
		pdbs := of[policyv1.PodDisruptionBudgetType](t, d, rules.K8sPDB)
		if (len(pdbs) == 1) != want || len(pdbs) > 1 {
			t.Fatalf("%d disruption budgets, want one: %v", len(pdbs), want)
		}
		for name, p := range pods(t, d) {
			tsc := p.Spec.TopologySpreadConstraints
			spread := len(tsc) == 1 && tsc[0].TopologyKey == k8s.ZoneKey && tsc[0].MaxSkew == 1
			if spread != (want && !strings.HasSuffix(name, "-cache")) {
				t.Errorf("%s: zone spread %+v", name, tsc)
			}
			if want && !strings.HasSuffix(name, "-cache") {
				sel := deref(pdbs[0].Spec.Selector).MatchLabels
				if pdbs[0].Spec.MaxUnavailable != float64(1) || len(sel) == 0 {
					t.Errorf("budget %+v", pdbs[0].Spec)
				}
				for k, v := range sel {
					if p.Metadata.Labels[k] != v {
						t.Errorf("budget selector %v misses the pods %v", sel, p.Metadata.Labels)
					}
				}
			}
		}
	})
}

// TestResourcesSizedPerEnvironment: the service's container requests and
// limits are its environment's size class (small in dev, large in prod);
// the cache's memory is the size class's cacheMemory.
func TestResourcesSizedPerEnvironment(t *testing.T) {
	each(t, func(t *testing.T, d deployed) {
		sz := d.t.Size
		for name, p := range pods(t, d) {
			c := p.Spec.Containers[0]
			r := deref(c.Resources)
			want := map[string]string{"cpu": sz.CPURequest, "memory": sz.MemoryRequest}
			lim := map[string]string{"cpu": sz.CPULimit, "memory": sz.MemoryLimit}
			if strings.HasSuffix(name, "-cache") {
				want = map[string]string{"cpu": "50m", "memory": sz.CacheMemory}
				lim = map[string]string{"cpu": "500m", "memory": sz.CacheMemory}
			}
			if !equal(r.Requests, want) || !equal(r.Limits, lim) {
				t.Errorf("%s: requests %v limits %v, want %v %v", name, r.Requests, r.Limits, want, lim)
			}
		}
	})
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPodsCarryTenantTelemetry: pods carry the tenant, environment and
// service labels, and the service's container the OpenTelemetry resource
// attributes, so a collector splits a shared namespace's telemetry per
// tenant.
func TestPodsCarryTenantTelemetry(t *testing.T) {
	each(t, func(t *testing.T, d deployed) {
		for name, p := range pods(t, d) {
			l := p.Metadata.Labels
			if l["tenant"] != d.t.Tenant.Name || l["environment"] != d.t.Environment.Name || l["service"] != "orders" ||
				l["app.kubernetes.io/part-of"] != d.t.Tenant.Name {
				t.Errorf("%s: pod labels %v", name, l)
			}
			if strings.HasSuffix(name, "-cache") {
				continue
			}
			env := map[string]string{}
			for _, e := range p.Spec.Containers[0].Env {
				env[e.Name] = deref(e.Value)
			}
			attrs := strings.Split(env["OTEL_RESOURCE_ATTRIBUTES"], ",")
			for _, a := range []string{"service.name=orders", "deployment.environment=" + d.t.Environment.Name, "tenant=" + d.t.Tenant.Name} {
				if !slices.Contains(attrs, a) {
					t.Errorf("%s: OTEL_RESOURCE_ATTRIBUTES %q lacks %s", name, env["OTEL_RESOURCE_ATTRIBUTES"], a)
				}
			}
			if env["OTEL_SERVICE_NAME"] != "orders" || env["AWS_REGION"] != "eu-west-1" {
				t.Errorf("%s: env %v", name, env)
			}
		}
	})
}
