package k8s

import (
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	autoscalingv2 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/autoscaling/v2"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/spec"
)

// services registers the ClusterIP Service the ingress routes to and, for
// a StatefulSet, the headless Service named by its serviceName.
func (b *builder) services() error {
	if !b.longRunning() {
		return nil
	}
	http := corev1.ServicePortArray{&corev1.ServicePortArgs{
		Name: pulumi.String("http"), Port: pulumi.Int(80), TargetPort: pulumi.String("http"),
	}}
	sel := pulumi.ToStringMap(b.t.SelectorLabels())
	if _, err := add(b, corev1.NewService, "svc", &corev1.ServiceArgs{
		Metadata: b.s.Meta(b.t.Service),
		Spec:     &corev1.ServiceSpecArgs{Type: pulumi.String("ClusterIP"), Selector: sel, Ports: http},
	}); err != nil {
		return err
	}
	if b.a.Workload.Kind != spec.StatefulSet {
		return nil
	}
	_, err := add(b, corev1.NewService, "headless-svc", &corev1.ServiceArgs{
		Metadata: b.s.Meta(b.headless()),
		Spec: &corev1.ServiceSpecArgs{
			ClusterIP: pulumi.String("None"), Selector: sel, Ports: http,
			// Replicas find each other before they are ready (to form a
			// quorum, say).
			PublishNotReadyAddresses: pulumi.Bool(true),
		},
	})
	return err
}

// ingress publishes the service over TLS only; the certificate secret is
// issued by the environment's cert-manager from the annotation.
func (b *builder) ingress() error {
	if !b.longRunning() {
		return nil
	}
	env := b.t.Environment
	meta := b.s.Meta(b.t.Service)
	meta.Annotations = pulumi.StringMap{
		"cert-manager.io/cluster-issuer":           pulumi.String("paved-" + env.Name),
		"nginx.ingress.kubernetes.io/ssl-redirect": pulumi.String("true"),
	}
	host := b.t.Host()
	_, err := add(b, networkingv1.NewIngress, "ing", &networkingv1.IngressArgs{
		Metadata: meta,
		Spec: &networkingv1.IngressSpecArgs{
			IngressClassName: pulumi.String(env.IngressClass),
			Tls: networkingv1.IngressTLSArray{&networkingv1.IngressTLSArgs{
				Hosts: pulumi.ToStringArray([]string{host}), SecretName: pulumi.String(b.t.Service + "-tls"),
			}},
			Rules: networkingv1.IngressRuleArray{&networkingv1.IngressRuleArgs{
				Host: pulumi.String(host),
				Http: &networkingv1.HTTPIngressRuleValueArgs{Paths: networkingv1.HTTPIngressPathArray{&networkingv1.HTTPIngressPathArgs{
					Path: pulumi.String("/"), PathType: pulumi.String("Prefix"),
					Backend: &networkingv1.IngressBackendArgs{Service: &networkingv1.IngressServiceBackendArgs{
						Name: pulumi.String(b.t.Service), Port: &networkingv1.ServiceBackendPortArgs{Name: pulumi.String("http")},
					}},
				}}},
			}},
		},
	})
	return err
}

// autoscaler scales long-running workloads on CPU between the requested
// replicas (the environment's default when none were asked for) and the
// environment's ceiling. It alone sets the replica count.
func (b *builder) autoscaler() error {
	w := b.a.Workload
	if !b.longRunning() {
		return nil
	}
	kind := "Deployment"
	if w.Kind == spec.StatefulSet {
		kind = "StatefulSet"
	}
	low := w.Replicas
	if low == 0 {
		low = b.t.Size.Replicas
	}
	_, err := add(b, autoscalingv2.NewHorizontalPodAutoscaler, "hpa", &autoscalingv2.HorizontalPodAutoscalerArgs{
		Metadata: b.s.Meta(b.t.Service),
		Spec: &autoscalingv2.HorizontalPodAutoscalerSpecArgs{
			ScaleTargetRef: &autoscalingv2.CrossVersionObjectReferenceArgs{
				ApiVersion: pulumi.String("apps/v1"), Kind: pulumi.String(kind), Name: pulumi.String(b.t.Service),
			},
			MinReplicas: pulumi.Int(low),
			MaxReplicas: pulumi.Int(max(low, b.t.Size.MaxReplicas)),
			Metrics: autoscalingv2.MetricSpecArray{&autoscalingv2.MetricSpecArgs{
				Type: pulumi.String("Resource"),
				Resource: &autoscalingv2.ResourceMetricSourceArgs{Name: pulumi.String("cpu"), Target: &autoscalingv2.MetricTargetArgs{
					Type: pulumi.String("Utilization"), AverageUtilization: pulumi.Int(70),
				}},
			}},
		},
	})
	return err
}

// disruptionBudget keeps a production service up through node drains and
// cluster upgrades: one pod at a time may be evicted. maxUnavailable (not
// minAvailable) so a service scaled to one pod never blocks a drain.
func (b *builder) disruptionBudget() error {
	if !b.longRunning() || !b.t.Production() {
		return nil
	}
	_, err := add(b, policyv1.NewPodDisruptionBudget, "pdb", &policyv1.PodDisruptionBudgetArgs{
		Metadata: b.s.Meta(b.t.Service),
		Spec:     &policyv1.PodDisruptionBudgetSpecArgs{MaxUnavailable: pulumi.Int(1), Selector: b.selector()},
	})
	return err
}

// networkPolicy admits traffic to the service's pods only from the ingress
// controller and from the same tenant's pods in the namespace; in a shared
// namespace the tenant label is what isolates.
func (b *builder) networkPolicy() error {
	from := networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{
		PodSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{platform.TagTenant: pulumi.String(b.t.Tenant.Name)}},
	}}
	if b.longRunning() {
		from = append(from, &networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: &metav1.LabelSelectorArgs{
			MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(b.t.Environment.IngressNamespace)},
		}})
	}
	return b.admit("netpol", b.t.Service, b.selector(), from)
}

func (b *builder) admit(suffix, name string, pods *metav1.LabelSelectorArgs, from networkingv1.NetworkPolicyPeerArray) error {
	_, err := add(b, networkingv1.NewNetworkPolicy, suffix, &networkingv1.NetworkPolicyArgs{
		Metadata: b.s.Meta(name),
		Spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: pods,
			PolicyTypes: pulumi.ToStringArray([]string{"Ingress"}),
			Ingress:     networkingv1.NetworkPolicyIngressRuleArray{&networkingv1.NetworkPolicyIngressRuleArgs{From: from}},
		},
	})
	return err
}

// cache is an in-memory Redis for the service alone: no persistence (so no
// data at rest to encrypt), reachable only from the service's pods. It is
// disposable: one replica, no autoscaler, no spread.
func (b *builder) cache() error {
	if !b.a.Cache {
		return nil
	}
	t := b.t
	name := t.Service + "-cache"
	sel := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(name), platform.TagTenant: pulumi.String(t.Tenant.Name)}
	c := container("redis", pulumi.String(CacheImage), "50m", t.Size.CacheMemory, "500m", t.Size.CacheMemory)
	c.Args = pulumi.ToStringArray([]string{"--save", "", "--appendonly", "no", "--maxmemory-policy", "allkeys-lru"})
	c.Ports = corev1.ContainerPortArray{&corev1.ContainerPortArgs{Name: pulumi.String("redis"), ContainerPort: pulumi.Int(6379)}}
	probe := &corev1.ProbeArgs{TcpSocket: &corev1.TCPSocketActionArgs{Port: pulumi.String("redis")}, PeriodSeconds: pulumi.Int(10)}
	c.ReadinessProbe, c.LivenessProbe = probe, probe
	sec := podSecurity()
	sec.RunAsUser = pulumi.Int(999) // the image's redis user
	meta := b.s.Meta(name)
	meta.Labels = pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(name)}
	if _, err := add(b, appsv1.NewDeployment, "cache", &appsv1.DeploymentArgs{
		Metadata: meta,
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(1),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: sel},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: podLabels(t, pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(name)})},
				Spec: &corev1.PodSpecArgs{
					SecurityContext:              sec,
					AutomountServiceAccountToken: pulumi.Bool(false),
					Containers:                   corev1.ContainerArray{c},
					Volumes:                      scratch(),
				},
			},
		},
	}); err != nil {
		return err
	}
	if _, err := add(b, corev1.NewService, "cache-svc", &corev1.ServiceArgs{
		Metadata: meta,
		Spec: &corev1.ServiceSpecArgs{Selector: sel, Ports: corev1.ServicePortArray{&corev1.ServicePortArgs{
			Name: pulumi.String("redis"), Port: pulumi.Int(6379), TargetPort: pulumi.String("redis"),
		}}},
	}); err != nil {
		return err
	}
	return b.admit("cache-netpol", name, &metav1.LabelSelectorArgs{MatchLabels: sel},
		networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{PodSelector: b.selector()}})
}
