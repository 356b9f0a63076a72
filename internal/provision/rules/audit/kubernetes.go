package audit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/rules"
)

// pod returns a workload's pod template, nil for other types.
func pod(r rules.Resource) map[string]any {
	var p any
	switch r.Type {
	case rules.K8sDeployment, rules.K8sStatefulSet:
		p = get(r.Inputs, "spec.template")
	case rules.K8sCronJob:
		p = get(r.Inputs, "spec.jobTemplate.spec.template")
	}
	m, _ := p.(map[string]any)
	return m
}

// containers returns a workload's containers.
func containers(r rules.Resource) []map[string]any {
	var out []map[string]any
	for _, c := range asList(get(pod(r), "spec.containers")) {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// service reports whether r is the service's own long-running workload:
// the cache is disposable and single by design, and a CronJob is no
// long-running workload.
func service(r rules.Resource) bool {
	return (r.Type == rules.K8sDeployment || r.Type == rules.K8sStatefulSet) && !strings.HasSuffix(r.Name, "-cache")
}

func checkWorkloads(_ platform.Target, rs []rules.Resource) []string {
	var out []string
	for _, r := range rs {
		for _, c := range containers(r) {
			for _, p := range []string{"resources.requests.cpu", "resources.requests.memory", "resources.limits.cpu", "resources.limits.memory"} {
				if get(c, p) == nil {
					out = append(out, fmt.Sprintf("%s %s: container %v has no %s", r.Type, r.Name, c["name"], p))
				}
			}
			if r.Type != rules.K8sCronJob && (c["readinessProbe"] == nil || c["livenessProbe"] == nil) {
				out = append(out, fmt.Sprintf("%s %s: container %v needs readiness and liveness probes", r.Type, r.Name, c["name"]))
			}
		}
	}
	return out
}

// checkRestrictedPods demands the restricted pod security profile of every
// pod: non-root, seccomp RuntimeDefault (on the pod or the container), and
// per container a read-only root filesystem, no privilege escalation, not
// privileged, every capability dropped.
func checkRestrictedPods(_ platform.Target, rs []rules.Resource) []string {
	var out []string
	for _, r := range rs {
		p := pod(r)
		if p == nil {
			continue
		}
		podSec, _ := get(p, "spec.securityContext").(map[string]any)
		for _, c := range containers(r) {
			bad := func(what string) {
				out = append(out, fmt.Sprintf("%s %s: container %v %s", r.Type, r.Name, c["name"], what))
			}
			sec, _ := c["securityContext"].(map[string]any)
			if sec["runAsNonRoot"] != true && podSec["runAsNonRoot"] != true {
				bad("may run as root")
			}
			if get(sec, "seccompProfile.type") != "RuntimeDefault" && get(podSec, "seccompProfile.type") != "RuntimeDefault" {
				bad("has no RuntimeDefault seccomp profile")
			}
			if sec["readOnlyRootFilesystem"] != true {
				bad("has a writable root filesystem")
			}
			if sec["allowPrivilegeEscalation"] != false || sec["privileged"] == true {
				bad("may escalate privileges")
			}
			if !slices.Contains(strs(get(sec, "capabilities.drop")), "ALL") || get(sec, "capabilities.add") != nil {
				bad("keeps capabilities (drop ALL, add none)")
			}
		}
	}
	return out
}

// checkAutoscaled demands that the autoscaler alone owns the replica count
// of the workload it scales: a workload that also sets spec.replicas is
// reset to it on every `pulumi up`, undoing the autoscaler.
func checkAutoscaled(_ platform.Target, rs []rules.Resource) []string {
	var out []string
	scaled := map[string]string{} // kind/name of the target -> autoscaler
	for _, h := range ofType(rs, rules.K8sHPA) {
		scaled[str(h.Inputs, "spec.scaleTargetRef.kind")+"/"+str(h.Inputs, "spec.scaleTargetRef.name")] = h.Name
	}
	for _, w := range ofType(rs, rules.K8sDeployment, rules.K8sStatefulSet) {
		key := str(w.Inputs, "kind") + "/" + str(w.Inputs, "metadata.name")
		hpa, ok := scaled[key]
		delete(scaled, key)
		switch {
		case ok && get(w.Inputs, "spec.replicas") != nil:
			out = append(out, fmt.Sprintf("%s %s: sets spec.replicas though autoscaler %s scales it", w.Type, w.Name, hpa))
		case !ok && service(w):
			out = append(out, fmt.Sprintf("%s %s: no autoscaler scales it", w.Type, w.Name))
		}
	}
	for target, hpa := range scaled {
		out = append(out, fmt.Sprintf("autoscaler %s: scales %s, which the stack does not have", hpa, target))
	}
	return out
}

// checkHeadless demands that every StatefulSet's serviceName names a
// headless Service (clusterIP None) in its namespace that selects its pods,
// which gives each replica its stable DNS name.
func checkHeadless(_ platform.Target, rs []rules.Resource) []string {
	var out []string
	for _, s := range ofType(rs, rules.K8sStatefulSet) {
		name, ns := str(s.Inputs, "spec.serviceName"), str(s.Inputs, "metadata.namespace")
		labels, _ := get(s.Inputs, "spec.template.metadata.labels").(map[string]any)
		ok := false
		for _, svc := range ofType(rs, rules.K8sService) {
			sel, _ := get(svc.Inputs, "spec.selector").(map[string]any)
			if str(svc.Inputs, "metadata.name") == name && str(svc.Inputs, "metadata.namespace") == ns &&
				str(svc.Inputs, "spec.clusterIP") == "None" && len(sel) > 0 && subset(sel, labels) {
				ok = true
			}
		}
		if name == "" || !ok {
			out = append(out, fmt.Sprintf("statefulset %s: serviceName %q names no headless Service selecting its pods", s.Name, name))
		}
	}
	return out
}

func subset(a, b map[string]any) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkTelemetry demands that every pod carries the tenant, environment
// and service labels, and the service's own containers the OpenTelemetry
// resource attributes, so logs, metrics and traces of a shared namespace
// split per tenant.
func checkTelemetry(t platform.Target, rs []rules.Resource) []string {
	var out []string
	want := map[string]string{platform.TagTenant: t.Tenant.Name, platform.TagEnvironment: t.Environment.Name, platform.TagService: t.Service}
	attrs := []string{"service.name=" + t.Service, "deployment.environment=" + t.Environment.Name, platform.TagTenant + "=" + t.Tenant.Name}
	for _, r := range rs {
		p := pod(r)
		if p == nil {
			continue
		}
		labels, _ := get(p, "metadata.labels").(map[string]any)
		for k, v := range want {
			if labels[k] != v {
				out = append(out, fmt.Sprintf("%s %s: pod label %s is %v, want %q", r.Type, r.Name, k, labels[k], v))
			}
		}
		if strings.HasSuffix(r.Name, "-cache") {
			continue // redis emits no OpenTelemetry
		}
		for _, c := range containers(r) {
			env := map[string]string{}
			for _, e := range asList(c["env"]) {
				m, _ := e.(map[string]any)
				env[str(m, "name")] = str(m, "value")
			}
			have := strings.Split(env["OTEL_RESOURCE_ATTRIBUTES"], ",")
			if env["OTEL_SERVICE_NAME"] != t.Service || slices.ContainsFunc(attrs, func(a string) bool { return !slices.Contains(have, a) }) {
				out = append(out, fmt.Sprintf("%s %s: container %v needs OTEL_SERVICE_NAME=%s and OTEL_RESOURCE_ATTRIBUTES with %v",
					r.Type, r.Name, c["name"], t.Service, attrs))
			}
		}
	}
	return out
}

// zoneSpread (multi-az-prod-only) demands, in production only, that the
// service's pods spread over zones and have a disruption budget.
func zoneSpread(t platform.Target, rs []rules.Resource) []string {
	var out []string
	prod := t.Production()
	for _, d := range rs {
		if !service(d) {
			continue
		}
		spread := get(d.Inputs, "spec.template.spec.topologySpreadConstraints.0.topologyKey") == "topology.kubernetes.io/zone"
		if spread != prod {
			out = append(out, fmt.Sprintf("%s %s: zone spread must be %v", d.Type, d.Name, prod))
		}
		sel, _ := get(d.Inputs, "spec.selector.matchLabels").(map[string]any)
		budget := false
		for _, p := range ofType(rs, rules.K8sPDB) {
			if m, _ := get(p.Inputs, "spec.selector.matchLabels").(map[string]any); len(m) > 0 && subset(m, sel) {
				budget = true
			}
		}
		if budget != prod {
			out = append(out, fmt.Sprintf("%s %s: a disruption budget must exist: %v", d.Type, d.Name, prod))
		}
	}
	return out
}

// containerSizes (size-class) demands the size class's requests and limits
// on the service's containers; the cache has its own, from cacheMemory.
func containerSizes(t platform.Target, rs []rules.Resource) []string {
	var out []string
	want := map[string]string{
		"requests.cpu": t.Size.CPURequest, "requests.memory": t.Size.MemoryRequest,
		"limits.cpu": t.Size.CPULimit, "limits.memory": t.Size.MemoryLimit,
	}
	for _, r := range rs {
		for _, c := range containers(r) {
			for k, v := range want {
				if c["name"] != "redis" && str(c, "resources."+k) != v {
					out = append(out, fmt.Sprintf("%s: container %v %s must be the size class's %s", r.Name, c["name"], k, v))
				}
			}
		}
	}
	return out
}

func checkNamespaces(t platform.Target, rs []rules.Resource) []string {
	var out []string
	policies := 0
	for _, r := range rs {
		if tg, _ := rules.TaggingOf(r.Type); tg != rules.K8sLabels || r.Type == rules.K8sNamespace {
			continue
		}
		if ns := str(r.Inputs, "metadata.namespace"); ns != t.Namespace() {
			out = append(out, fmt.Sprintf("%s %s: namespace %q, want %q", r.Type, r.Name, ns, t.Namespace()))
		}
		if r.Type == rules.K8sNetworkPolicy {
			policies++
		}
	}
	if len(ofType(rs, rules.K8sDeployment, rules.K8sStatefulSet, rules.K8sCronJob)) > 0 && policies == 0 {
		out = append(out, "workloads without a network policy")
	}
	for _, ns := range ofType(rs, rules.K8sNamespace) {
		if t.Tenancy == platform.Multi {
			out = append(out, fmt.Sprintf("namespace %s: a multi-tenant service uses the tenant's namespace", ns.Name))
		}
	}
	return out
}
