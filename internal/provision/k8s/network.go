package k8s

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/spec"
)

func (b *builder) service() error {
	if !b.exposed() {
		return nil
	}
	_, err := b.register(res.K8sService, "svc", pulumi.Map{
		"metadata": res.Meta(b.t.Service, b.ns),
		"spec": pulumi.Map{
			"type":     pulumi.String("ClusterIP"),
			"selector": pulumi.ToStringMap(b.t.SelectorLabels()),
			"ports": pulumi.Array{pulumi.Map{
				"name": pulumi.String("http"), "port": pulumi.Int(80), "targetPort": pulumi.String("http"),
			}},
		},
	})
	return err
}

// ingress publishes the service over TLS only; the certificate secret is
// issued by the environment's cert-manager from the annotation.
func (b *builder) ingress() error {
	if !b.exposed() {
		return nil
	}
	env := b.t.Environment
	meta := res.Meta(b.t.Service, b.ns)
	meta["annotations"] = pulumi.StringMap{
		"cert-manager.io/cluster-issuer":           pulumi.String("paved-" + env.Name),
		"nginx.ingress.kubernetes.io/ssl-redirect": pulumi.String("true"),
	}
	host := b.t.Host()
	_, err := b.register(res.K8sIngress, "ing", pulumi.Map{
		"metadata": meta,
		"spec": pulumi.Map{
			"ingressClassName": pulumi.String(env.IngressClass),
			"tls": pulumi.Array{pulumi.Map{
				"hosts": pulumi.ToStringArray([]string{host}), "secretName": pulumi.String(b.t.Service + "-tls"),
			}},
			"rules": pulumi.Array{pulumi.Map{
				"host": pulumi.String(host),
				"http": pulumi.Map{"paths": pulumi.Array{pulumi.Map{
					"path": pulumi.String("/"), "pathType": pulumi.String("Prefix"),
					"backend": pulumi.Map{"service": pulumi.Map{
						"name": pulumi.String(b.t.Service), "port": pulumi.Map{"name": pulumi.String("http")},
					}},
				}}},
			}},
		},
	})
	return err
}

// autoscaler scales long-running workloads on CPU between the requested
// replicas and the environment's ceiling.
func (b *builder) autoscaler() error {
	w := b.a.Workload
	if w.Kind == spec.CronJob {
		return nil
	}
	kind := "Deployment"
	if w.Kind == spec.StatefulSet {
		kind = "StatefulSet"
	}
	min := w.Replicas
	if min == 0 {
		min = b.t.Size.Replicas
	}
	_, err := b.register(res.K8sHPA, "hpa", pulumi.Map{
		"metadata": res.Meta(b.t.Service, b.ns),
		"spec": pulumi.Map{
			"scaleTargetRef": pulumi.Map{
				"apiVersion": pulumi.String("apps/v1"), "kind": pulumi.String(kind), "name": pulumi.String(b.t.Service),
			},
			"minReplicas": pulumi.Int(min),
			"maxReplicas": pulumi.Int(max(min, b.t.Size.MaxReplicas)),
			"metrics": pulumi.Array{pulumi.Map{
				"type": pulumi.String("Resource"),
				"resource": pulumi.Map{"name": pulumi.String("cpu"), "target": pulumi.Map{
					"type": pulumi.String("Utilization"), "averageUtilization": pulumi.Int(70),
				}},
			}},
		},
	})
	return err
}

// networkPolicy admits traffic to the service's pods only from the ingress
// controller and from the same tenant's pods in the namespace; in a shared
// namespace the tenant label is what isolates.
func (b *builder) networkPolicy() error {
	from := pulumi.Array{
		pulumi.Map{"podSelector": pulumi.Map{"matchLabels": pulumi.StringMap{platform.TagTenant: pulumi.String(b.t.Tenant.Name)}}},
	}
	if b.exposed() {
		from = append(from, pulumi.Map{"namespaceSelector": pulumi.Map{"matchLabels": pulumi.StringMap{
			"kubernetes.io/metadata.name": pulumi.String(b.t.Environment.IngressNamespace),
		}}})
	}
	_, err := b.register(res.K8sNetworkPolicy, "netpol", pulumi.Map{
		"metadata": res.Meta(b.t.Service, b.ns),
		"spec": pulumi.Map{
			"podSelector": pulumi.Map{"matchLabels": pulumi.ToStringMap(b.t.SelectorLabels())},
			"policyTypes": pulumi.ToStringArray([]string{"Ingress"}),
			"ingress":     pulumi.Array{pulumi.Map{"from": from}},
		},
	})
	return err
}

// cache is an in-memory Redis for the service alone: no persistence (so no
// data at rest to encrypt), reachable only from the service's pods.
func (b *builder) cache() error {
	if !b.a.Cache {
		return nil
	}
	t := b.t
	name := t.Service + "-cache"
	sel := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(name), platform.TagTenant: pulumi.String(t.Tenant.Name)}
	c := container("redis", pulumi.String(CacheImage), "50m", t.Size.CacheMemory, "500m", t.Size.CacheMemory)
	c["args"] = pulumi.ToStringArray([]string{"--save", "", "--appendonly", "no", "--maxmemory-policy", "allkeys-lru"})
	c["ports"] = pulumi.Array{pulumi.Map{"name": pulumi.String("redis"), "containerPort": pulumi.Int(6379)}}
	probe := pulumi.Map{"tcpSocket": pulumi.Map{"port": pulumi.String("redis")}, "periodSeconds": pulumi.Int(10)}
	c["readinessProbe"], c["livenessProbe"] = probe, probe
	podLabels := t.Labels()
	podLabels["app.kubernetes.io/name"] = name
	if _, err := b.register(res.K8sDeployment, "cache", pulumi.Map{
		"metadata": res.Meta(name, b.ns),
		"spec": pulumi.Map{
			"replicas": pulumi.Int(1),
			"selector": pulumi.Map{"matchLabels": sel},
			"template": pulumi.Map{
				"metadata": pulumi.Map{"labels": pulumi.ToStringMap(podLabels)},
				"spec": pulumi.Map{
					"securityContext": pulumi.Map{
						"runAsNonRoot": pulumi.Bool(true), "runAsUser": pulumi.Int(999),
						"seccompProfile": pulumi.Map{"type": pulumi.String("RuntimeDefault")},
					},
					"automountServiceAccountToken": pulumi.Bool(false),
					"containers":                   pulumi.Array{c},
				},
			},
		},
	}); err != nil {
		return err
	}
	if _, err := b.register(res.K8sService, "cache-svc", pulumi.Map{
		"metadata": res.Meta(name, b.ns),
		"spec": pulumi.Map{"selector": sel, "ports": pulumi.Array{pulumi.Map{
			"name": pulumi.String("redis"), "port": pulumi.Int(6379), "targetPort": pulumi.String("redis"),
		}}},
	}); err != nil {
		return err
	}
	_, err := b.register(res.K8sNetworkPolicy, "cache-netpol", pulumi.Map{
		"metadata": res.Meta(name, b.ns),
		"spec": pulumi.Map{
			"podSelector": pulumi.Map{"matchLabels": sel},
			"policyTypes": pulumi.ToStringArray([]string{"Ingress"}),
			"ingress": pulumi.Array{pulumi.Map{"from": pulumi.Array{pulumi.Map{
				"podSelector": pulumi.Map{"matchLabels": pulumi.ToStringMap(t.SelectorLabels())},
			}}}},
		},
	})
	return err
}
