// Package helm tests the Helm chart in deploy/helm/paved: it renders the
// chart with helm for each shipped value set, decodes every document
// strictly into Kubernetes' own API types (an unknown or misspelt field is a
// failure) and checks what the chart promises: the security context, the
// probes, one SQLite replica on a volume or several PostgreSQL replicas
// behind a PodDisruptionBudget, and a paved.yaml paved itself accepts.
//
// The tests skip when helm is not on PATH, unless PAVED_REQUIRE_HELM=1.
// Install it with: GOFLAGS= go install helm.sh/helm/v3/cmd/helm@v3.19.0
package helm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/paved-idp/paved/internal/config"
)

const (
	chartDir       = "paved"
	release        = "paved"
	namespace      = "paved"
	sqliteValues   = "paved/values-sqlite.yaml"
	postgresValues = "paved/values-postgres.yaml"
	awssmValues    = "testdata/values-awssm.yaml"
	nonRootUID     = int64(65532)
	httpPort       = int32(8080)
)

// helmBinary returns helm's path, or skips the test (fails it with
// PAVED_REQUIRE_HELM=1) when helm is not on PATH.
func helmBinary(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("helm")
	if err == nil {
		return path
	}
	install := "GOFLAGS= go install helm.sh/helm/v3/cmd/helm@v3.19.0 (it lands in $(go env GOPATH)/bin), or run .ci/helm.sh"
	if os.Getenv("PAVED_REQUIRE_HELM") == "1" {
		t.Fatalf("helm is not on PATH and PAVED_REQUIRE_HELM=1: install it with %s", install)
	}
	t.Skipf("helm is not on PATH: skipping the chart tests (set PAVED_REQUIRE_HELM=1 to fail instead); install it with %s", install)
	return ""
}

// helmTemplate runs `helm template` on the chart; the error carries helm's
// stderr (where a template's fail message goes).
func helmTemplate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	argv := append([]string{"template", release, chartDir, "--namespace", namespace}, args...)
	cmd := exec.CommandContext(t.Context(), helmBinary(t), argv...)
	// Keep the user's helm configuration, repositories and plugins out of it.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home+"/config", "HELM_CACHE_HOME="+home+"/cache", "HELM_DATA_HOME="+home+"/data")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("helm %s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func mustTemplate(t *testing.T, args ...string) string {
	t.Helper()
	out, err := helmTemplate(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rendered holds one render's objects, each decoded strictly.
type rendered struct {
	deployment     *appsv1.Deployment
	service        *corev1.Service
	serviceAccount *corev1.ServiceAccount
	configMap      *corev1.ConfigMap
	pdb            *policyv1.PodDisruptionBudget
	pvc            *corev1.PersistentVolumeClaim
	ingress        *networkingv1.Ingress
	serviceMonitor map[string]any
	kinds          []string
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments cuts helm's output into its YAML documents, leaving out
// the empty ones (a template that rendered nothing, or only comments).
func splitDocuments(out string) []string {
	var docs []string
	for _, part := range docSeparator.Split(out, -1) {
		for _, line := range strings.Split(part, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				docs = append(docs, part)
				break
			}
		}
	}
	return docs
}

// strict decodes doc into a new T with unknown and duplicate fields refused.
func strict[T any](t *testing.T, doc string, dst **T) {
	t.Helper()
	if *dst != nil {
		t.Fatalf("two %T documents in one render", *dst)
	}
	v := new(T)
	if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
		t.Fatalf("decoding %T strictly: %v\n%s", v, err, doc)
	}
	*dst = v
}

func decode(t *testing.T, out string) *rendered {
	t.Helper()
	r := &rendered{}
	docs := splitDocuments(out)
	if len(docs) == 0 {
		t.Fatalf("helm template rendered no documents:\n%s", out)
	}
	for _, doc := range docs {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		if head.Metadata.Name == "" {
			t.Errorf("%s %s without metadata.name", head.APIVersion, head.Kind)
		}
		gvk := head.APIVersion + ", Kind=" + head.Kind
		r.kinds = append(r.kinds, head.Kind)
		switch gvk {
		case "apps/v1, Kind=Deployment":
			strict(t, doc, &r.deployment)
		case "v1, Kind=Service":
			strict(t, doc, &r.service)
		case "v1, Kind=ServiceAccount":
			strict(t, doc, &r.serviceAccount)
		case "v1, Kind=ConfigMap":
			strict(t, doc, &r.configMap)
		case "policy/v1, Kind=PodDisruptionBudget":
			strict(t, doc, &r.pdb)
		case "v1, Kind=PersistentVolumeClaim":
			strict(t, doc, &r.pvc)
		case "networking.k8s.io/v1, Kind=Ingress":
			strict(t, doc, &r.ingress)
		case "monitoring.coreos.com/v1, Kind=ServiceMonitor":
			if r.serviceMonitor != nil {
				t.Fatal("two ServiceMonitors in one render")
			}
			// No k8s.io/api type: decoded as unstructured (duplicate keys
			// still refused) and its fields checked by checkServiceMonitor.
			if err := yaml.UnmarshalStrict([]byte(doc), &r.serviceMonitor); err != nil {
				t.Fatalf("decoding the ServiceMonitor: %v\n%s", err, doc)
			}
		default:
			t.Errorf("unexpected object %s (%s):\n%s", gvk, head.Metadata.Name, doc)
		}
	}
	return r
}

func render(t *testing.T, args ...string) *rendered {
	t.Helper()
	return decode(t, mustTemplate(t, args...))
}

// checkCommon checks what every value set renders alike and returns the
// ConfigMap's paved.yaml as paved's own parser reads it, with the
// environment the Deployment gives the container.
func checkCommon(t *testing.T, r *rendered) config.Config {
	t.Helper()
	if r.deployment == nil || r.service == nil || r.serviceAccount == nil || r.configMap == nil {
		t.Fatalf("want a Deployment, a Service, a ServiceAccount and a ConfigMap; rendered %v", r.kinds)
	}
	d := r.deployment
	for _, name := range []string{d.Name, r.service.Name, r.serviceAccount.Name, r.configMap.Name} {
		if name != release {
			t.Errorf("object named %q, want %q (the release's full name)", name, release)
		}
	}
	if d.Spec.Replicas == nil {
		t.Fatal("Deployment without spec.replicas")
	}

	// Selectors: the Deployment owns its pods; the Service reaches them.
	sel := d.Spec.Selector.MatchLabels
	if len(sel) == 0 || !subset(sel, d.Spec.Template.Labels) {
		t.Errorf("Deployment selector %v does not select its pod labels %v", sel, d.Spec.Template.Labels)
	}
	if !reflect.DeepEqual(r.service.Spec.Selector, sel) {
		t.Errorf("Service selector %v, want the Deployment's %v", r.service.Spec.Selector, sel)
	}

	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != r.serviceAccount.Name {
		t.Errorf("serviceAccountName %q, want the chart's ServiceAccount %q", pod.ServiceAccountName, r.serviceAccount.Name)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a Kubernetes API token; paved does not use the API")
	}
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("enableServiceLinks is not false: Services' PAVED_* variables would reach paved's config overrides")
	}
	checksum := d.Spec.Template.Annotations["checksum/config"]
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(checksum) {
		t.Errorf("pod annotation checksum/config = %q, want a sha256", checksum)
	}

	psc := pod.SecurityContext
	if psc == nil {
		t.Fatal("no pod securityContext")
	}
	if !isTrue(psc.RunAsNonRoot) || !is(psc.RunAsUser, nonRootUID) || !is(psc.FSGroup, nonRootUID) {
		t.Errorf("pod securityContext runAsNonRoot %v runAsUser %v fsGroup %v, want true, %d, %d", deref(psc.RunAsNonRoot), deref(psc.RunAsUser), deref(psc.FSGroup), nonRootUID, nonRootUID)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile %+v, want RuntimeDefault", psc.SeccompProfile)
	}

	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("want one container, got %d (and %d init containers)", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	if c.Image == "" {
		t.Error("container without an image")
	}
	if want := []string{"serve", "--config", "/etc/paved/paved.yaml"}; !reflect.DeepEqual(c.Args, want) {
		t.Errorf("args %q, want %q", c.Args, want)
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("no container securityContext")
	}
	if !isTrue(sc.RunAsNonRoot) || !is(sc.RunAsUser, nonRootUID) {
		t.Errorf("container runAsNonRoot %v runAsUser %v, want true, %d", deref(sc.RunAsNonRoot), deref(sc.RunAsUser), nonRootUID)
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if isTrue(sc.Privileged) {
		t.Error("privileged container")
	}
	if sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("capabilities %+v, want drop [ALL] and nothing added", sc.Capabilities)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container seccompProfile %+v, want RuntimeDefault", sc.SeccompProfile)
	}

	// The port, and the probes on it.
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != httpPort {
		t.Errorf("container ports %+v, want http %d", c.Ports, httpPort)
	}
	checkProbe(t, "liveness", c.LivenessProbe, c, "/healthz")
	checkProbe(t, "readiness", c.ReadinessProbe, c, "/readyz")
	checkProbe(t, "startup", c.StartupProbe, c, "/healthz")
	if c.ReadinessProbe != nil && c.ReadinessProbe.TimeoutSeconds <= 5 {
		t.Errorf("readiness timeoutSeconds %d: /readyz waits up to 5 s for the store", c.ReadinessProbe.TimeoutSeconds)
	}
	if len(r.service.Spec.Ports) != 1 || r.service.Spec.Ports[0].Name != "http" || r.service.Spec.Ports[0].TargetPort != intstr.FromString("http") {
		t.Errorf("Service ports %+v, want one named http targeting the container's http", r.service.Spec.Ports)
	}

	// Resources.
	req, lim := c.Resources.Requests, c.Resources.Limits
	if nonZero(req, corev1.ResourceCPU) == false || nonZero(req, corev1.ResourceMemory) == false || nonZero(lim, corev1.ResourceMemory) == false {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}

	// Volumes: paved.yaml read-only from the ConfigMap, a writable /tmp.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		if v.HostPath != nil {
			t.Errorf("volume %s is a hostPath", v.Name)
		}
	}
	for name := range mounts {
		if _, ok := volumes[name]; !ok {
			t.Errorf("volumeMount %s has no volume", name)
		}
	}
	if m := mounts["config"]; m.MountPath != "/etc/paved" || !m.ReadOnly {
		t.Errorf("config mount %+v, want /etc/paved read-only", m)
	}
	if v := volumes["config"]; v.ConfigMap == nil || v.ConfigMap.Name != r.configMap.Name {
		t.Errorf("config volume %+v, want the ConfigMap %s", v, r.configMap.Name)
	}
	if m, v := mounts["tmp"], volumes["tmp"]; m.MountPath != "/tmp" || m.ReadOnly || v.EmptyDir == nil {
		t.Errorf("tmp: mount %+v volume %+v, want a writable emptyDir at /tmp", m, v)
	}

	// The environment: every env:NAME reference in paved.yaml is set, and
	// paved's parser (which applies PAVED_* overrides from it) accepts the file.
	data, ok := r.configMap.Data["paved.yaml"]
	if !ok {
		t.Fatalf("ConfigMap without paved.yaml: keys %v", keysOf(r.configMap.Data))
	}
	environ, names := podEnviron(t, c)
	for _, m := range regexp.MustCompile(`env:([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(data, -1) {
		if !names[m[1]] {
			t.Errorf("paved.yaml references env:%s, which the container's environment does not set", m[1])
		}
	}
	cfg, err := config.Parse([]byte(data), environ)
	if err != nil {
		t.Fatalf("paved's config.Parse refuses the rendered paved.yaml: %v\n%s", err, data)
	}
	if !strings.HasSuffix(cfg.Server.Listen, fmt.Sprintf(":%d", httpPort)) {
		t.Errorf("server.listen %q, want port %d (the container's)", cfg.Server.Listen, httpPort)
	}
	return cfg
}

// podEnviron is the container's environment as KEY=VALUE, a secret's value
// stood in for by a placeholder (which, not being a reference, paved's
// parser refuses if a variable happens to override a secret field).
func podEnviron(t *testing.T, c corev1.Container) ([]string, map[string]bool) {
	t.Helper()
	if len(c.EnvFrom) != 0 {
		t.Errorf("envFrom %+v: want each variable named", c.EnvFrom)
	}
	var environ []string
	names := map[string]bool{}
	for _, e := range c.Env {
		if names[e.Name] {
			t.Errorf("environment variable %s set twice", e.Name)
		}
		names[e.Name] = true
		switch {
		case e.ValueFrom == nil:
			environ = append(environ, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name == "" || ref.Key == "" {
				t.Errorf("env %s: secretKeyRef %+v without a name or key", e.Name, ref)
			}
			environ = append(environ, fmt.Sprintf("%s=value-of-%s-%s", e.Name, ref.Name, ref.Key))
		default:
			t.Errorf("env %s: unexpected source %+v", e.Name, e.ValueFrom)
		}
	}
	return environ, names
}

// secretRefs maps each variable filled from a Secret to "secret/key".
func secretRefs(c corev1.Container) map[string]string {
	refs := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			refs[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	return refs
}

func checkProbe(t *testing.T, kind string, p *corev1.Probe, c corev1.Container, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe %+v, want an HTTP GET of %s", kind, p, path)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("%s probe path %q, want %q", kind, p.HTTPGet.Path, path)
	}
	port := p.HTTPGet.Port.IntVal
	if p.HTTPGet.Port.Type == intstr.String {
		port = 0
		for _, cp := range c.Ports {
			if cp.Name == p.HTTPGet.Port.StrVal {
				port = cp.ContainerPort
			}
		}
	}
	if port != httpPort {
		t.Errorf("%s probe port %s is %d, want %d", kind, p.HTTPGet.Port.String(), port, httpPort)
	}
	if p.PeriodSeconds <= 0 || p.TimeoutSeconds <= 0 || p.FailureThreshold <= 0 {
		t.Errorf("%s probe timings %+v: want period, timeout and failure threshold set", kind, p.ProbeHandler)
	}
}

func TestSQLiteValues(t *testing.T) {
	t.Parallel()
	r := render(t, "-f", sqliteValues)
	cfg := checkCommon(t, r)
	d := r.deployment
	if *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d, want 1", *d.Spec.Replicas)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("strategy %+v, want Recreate", d.Spec.Strategy)
	}
	if r.pdb != nil {
		t.Error("a PodDisruptionBudget for one replica")
	}
	if cfg.Store.Driver != "sqlite" {
		t.Errorf("store.driver %q, want sqlite", cfg.Store.Driver)
	}
	if r.pvc == nil {
		t.Fatalf("no PersistentVolumeClaim for SQLite; rendered %v", r.kinds)
	}
	if !reflect.DeepEqual(r.pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("PVC accessModes %v, want [ReadWriteOnce]", r.pvc.Spec.AccessModes)
	}
	if got := r.pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("PVC storage %s, want 1Gi", got.String())
	}
	if r.pvc.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Errorf("PVC annotations %v: want helm.sh/resource-policy keep (uninstalling keeps the database)", r.pvc.Annotations)
	}
	pod := d.Spec.Template.Spec
	var data *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == "data" {
			data = &pod.Volumes[i]
		}
	}
	if data == nil || data.PersistentVolumeClaim == nil || data.PersistentVolumeClaim.ClaimName != r.pvc.Name {
		t.Fatalf("data volume %+v, want the PVC %s", data, r.pvc.Name)
	}
	var mountPath string
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.Name == "data" {
			mountPath = m.MountPath
		}
	}
	if mountPath == "" || !strings.HasPrefix(cfg.Store.Path, mountPath+"/") {
		t.Errorf("store.path %q is not on the data volume (mounted at %q)", cfg.Store.Path, mountPath)
	}
	refs := secretRefs(pod.Containers[0])
	if len(refs) == 0 {
		t.Error("no environment variable from the existing Secret")
	}
	for name, ref := range refs {
		if !strings.HasPrefix(ref, "paved/") {
			t.Errorf("env %s from %s, want the Secret paved", name, ref)
		}
	}
}

func TestDefaultsAreTheSQLiteSet(t *testing.T) {
	t.Parallel()
	if def, sqlite := mustTemplate(t), mustTemplate(t, "-f", sqliteValues); def != sqlite {
		t.Errorf("values.yaml renders differently from values-sqlite.yaml:\n--- defaults\n%s\n--- sqlite\n%s", def, sqlite)
	}
}

func TestPostgresValues(t *testing.T) {
	t.Parallel()
	r := render(t, "-f", postgresValues)
	cfg := checkCommon(t, r)
	d := r.deployment
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", *d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		ru.MaxUnavailable == nil || *ru.MaxUnavailable != intstr.FromInt32(0) || ru.MaxSurge == nil || *ru.MaxSurge != intstr.FromInt32(1) {
		t.Errorf("strategy %+v, want RollingUpdate with maxUnavailable 0, maxSurge 1", d.Spec.Strategy)
	}
	if r.pvc != nil {
		t.Error("a PersistentVolumeClaim with PostgreSQL")
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "data" {
			t.Errorf("a data volume with PostgreSQL: %+v", v)
		}
	}
	if r.pdb == nil {
		t.Fatalf("no PodDisruptionBudget for 3 replicas; rendered %v", r.kinds)
	}
	if r.pdb.Spec.MaxUnavailable == nil || *r.pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || r.pdb.Spec.MinAvailable != nil {
		t.Errorf("PDB %+v, want maxUnavailable 1", r.pdb.Spec)
	}
	if r.pdb.Spec.Selector == nil || !reflect.DeepEqual(r.pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("PDB selector %+v, want the Deployment's %v", r.pdb.Spec.Selector, d.Spec.Selector.MatchLabels)
	}
	if cfg.Store.Driver != "postgres" || cfg.Store.DSN != "env:PAVED_DATABASE_URL" {
		t.Errorf("store %+v, want driver postgres, dsn env:PAVED_DATABASE_URL", cfg.Store)
	}
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(r.configMap.Data["paved.yaml"]), &raw); err != nil {
		t.Fatal(err)
	}
	if path := dig(raw, "store", "path"); path != nil {
		t.Errorf("paved.yaml sets store.path %v with postgres (values-postgres.yaml unsets the default's)", path)
	}
	if ref := secretRefs(d.Spec.Template.Spec.Containers[0])["PAVED_DATABASE_URL"]; ref != "paved/database-url" {
		t.Errorf("PAVED_DATABASE_URL from %q, want the Secret paved's key database-url", ref)
	}
	tsc := d.Spec.Template.Spec.TopologySpreadConstraints
	if len(tsc) == 0 {
		t.Error("no topologySpreadConstraints for 3 replicas")
	}
	for _, c := range tsc {
		if c.LabelSelector == nil || !reflect.DeepEqual(c.LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
			t.Errorf("topology spread on %s selects %+v, want the release's pods", c.TopologyKey, c.LabelSelector)
		}
	}
}

// TestAWSSecretsManager: every secret an awssm: reference, read through the
// service account's IAM role; no Kubernetes Secret is referenced at all.
func TestAWSSecretsManager(t *testing.T) {
	t.Parallel()
	r := render(t, "-f", postgresValues, "-f", awssmValues)
	cfg := checkCommon(t, r)
	pod := r.deployment.Spec.Template.Spec
	c := pod.Containers[0]
	if refs := secretRefs(c); len(refs) != 0 {
		t.Errorf("variables from a Secret with awssm: references: %v", refs)
	}
	for _, v := range pod.Volumes {
		if v.Secret != nil || v.Projected != nil {
			t.Errorf("volume %s from a Secret: %+v", v.Name, v)
		}
	}
	if len(pod.ImagePullSecrets) != 0 {
		t.Errorf("imagePullSecrets %v", pod.ImagePullSecrets)
	}
	var region string
	for _, e := range c.Env {
		if e.Name == "AWS_REGION" {
			region = e.Value
		}
	}
	if region != "eu-west-1" {
		t.Errorf("AWS_REGION %q, want eu-west-1", region)
	}
	if got := r.serviceAccount.Annotations["eks.amazonaws.com/role-arn"]; got != "arn:aws:iam::123456789012:role/paved" {
		t.Errorf("ServiceAccount role-arn annotation %q", got)
	}
	if !strings.HasPrefix(cfg.Store.DSN, "awssm:") || !strings.HasPrefix(cfg.GitLab.Token, "awssm:") {
		t.Errorf("store.dsn %q, gitlab.token %q: want awssm: references", cfg.Store.DSN, cfg.GitLab.Token)
	}
	if strings.Contains(r.configMap.Data["paved.yaml"], "env:") {
		t.Errorf("env: references left in paved.yaml:\n%s", r.configMap.Data["paved.yaml"])
	}
	if *r.deployment.Spec.Replicas != 2 || r.pdb == nil {
		t.Errorf("replicas %d, PDB %v: want 2 and a PodDisruptionBudget", *r.deployment.Spec.Replicas, r.pdb != nil)
	}
}

func TestIngressAndServiceMonitor(t *testing.T) {
	t.Parallel()
	r := render(t, "-f", postgresValues,
		"--set", "ingress.enabled=true",
		"--set", "ingress.className=nginx",
		"--set", "ingress.tls[0].secretName=paved-tls",
		"--set", "ingress.tls[0].hosts[0]=paved.example.com",
		"--set", "serviceMonitor.enabled=true",
		"--set", "serviceMonitor.labels.release=kube-prometheus-stack",
	)
	checkCommon(t, r)
	ing := r.ingress
	if ing == nil {
		t.Fatalf("no Ingress; rendered %v", r.kinds)
	}
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("ingressClassName %v, want nginx", ing.Spec.IngressClassName)
	}
	if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "paved-tls" || !slices.Equal(ing.Spec.TLS[0].Hosts, []string{"paved.example.com"}) {
		t.Errorf("tls %+v", ing.Spec.TLS)
	}
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "paved.example.com" || ing.Spec.Rules[0].HTTP == nil || len(ing.Spec.Rules[0].HTTP.Paths) != 1 {
		t.Fatalf("rules %+v, want paved.example.com with one path", ing.Spec.Rules)
	}
	p := ing.Spec.Rules[0].HTTP.Paths[0]
	if p.Path != "/" || p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix {
		t.Errorf("path %q type %v, want / Prefix", p.Path, p.PathType)
	}
	if b := p.Backend.Service; b == nil || b.Name != r.service.Name || b.Port.Name != r.service.Spec.Ports[0].Name {
		t.Errorf("backend %+v, want the Service %s port %s", p.Backend, r.service.Name, r.service.Spec.Ports[0].Name)
	}
	checkServiceMonitor(t, r)
}

// checkServiceMonitor checks the unstructured ServiceMonitor's required
// fields and that its spec holds only fields the CRD knows.
func checkServiceMonitor(t *testing.T, r *rendered) {
	t.Helper()
	sm := r.serviceMonitor
	if sm == nil {
		t.Fatalf("no ServiceMonitor; rendered %v", r.kinds)
	}
	for key := range sm {
		if !slices.Contains([]string{"apiVersion", "kind", "metadata", "spec"}, key) {
			t.Errorf("ServiceMonitor: unknown top-level field %q", key)
		}
	}
	if sm["apiVersion"] != "monitoring.coreos.com/v1" || sm["kind"] != "ServiceMonitor" {
		t.Errorf("ServiceMonitor apiVersion %v kind %v", sm["apiVersion"], sm["kind"])
	}
	if name, _ := dig(sm, "metadata", "name").(string); name != release {
		t.Errorf("ServiceMonitor name %q", name)
	}
	if l := dig(sm, "metadata", "labels", "release"); l != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor label release = %v, want the serviceMonitor.labels value", l)
	}
	spec, ok := dig(sm, "spec").(map[string]any)
	if !ok {
		t.Fatal("ServiceMonitor without a spec")
	}
	for key := range spec {
		if !slices.Contains([]string{"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels", "sampleLimit"}, key) {
			t.Errorf("ServiceMonitor: unexpected spec field %q", key)
		}
	}
	match, ok := dig(spec, "selector", "matchLabels").(map[string]any)
	if !ok || len(match) == 0 {
		t.Fatalf("ServiceMonitor spec.selector.matchLabels %v", dig(spec, "selector"))
	}
	for k, v := range match {
		if r.service.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v, which the Service's labels %v lack", k, v, r.service.Labels)
		}
	}
	if ns := dig(spec, "namespaceSelector", "matchNames"); !reflect.DeepEqual(ns, []any{namespace}) {
		t.Errorf("namespaceSelector.matchNames %v, want [%s]", ns, namespace)
	}
	endpoints, _ := spec["endpoints"].([]any)
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v, want one", spec["endpoints"])
	}
	ep, _ := endpoints[0].(map[string]any)
	for key := range ep {
		if !slices.Contains([]string{"port", "path", "scheme", "interval", "scrapeTimeout", "relabelings", "metricRelabelings", "honorLabels"}, key) {
			t.Errorf("ServiceMonitor endpoint: unexpected field %q", key)
		}
	}
	if ep["port"] != r.service.Spec.Ports[0].Name || ep["path"] != "/metrics" {
		t.Errorf("endpoint port %v path %v, want the Service's port %s and /metrics", ep["port"], ep["path"], r.service.Spec.Ports[0].Name)
	}
	if ep["interval"] != "30s" {
		t.Errorf("endpoint interval %v, want 30s", ep["interval"])
	}
}

func TestImage(t *testing.T) {
	t.Parallel()
	const repo = "registry.example.com/platform/paved"
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"appVersion", nil, repo + ":0.1.0"},
		{"tag", []string{"--set", "image.tag=v1.2.3"}, repo + ":v1.2.3"},
		{"digest", []string{"--set", "image.tag=v1.2.3", "--set", "image.digest=" + digest}, repo + "@" + digest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := render(t, tc.args...)
			if got := r.deployment.Spec.Template.Spec.Containers[0].Image; got != tc.want {
				t.Errorf("image %q, want %q", got, tc.want)
			}
		})
	}
}

// TestConfigChecksumRollsPods: a change to paved.yaml changes the pod
// template (so the Deployment rolls); the same values render the same.
func TestConfigChecksumRollsPods(t *testing.T) {
	t.Parallel()
	sum := func(args ...string) string {
		return render(t, args...).deployment.Spec.Template.Annotations["checksum/config"]
	}
	base, again, changed := sum(), sum(), sum("--set", "config.log.level=debug")
	if base != again {
		t.Errorf("checksum/config differs between two identical renders: %s, %s", base, again)
	}
	if base == changed {
		t.Error("checksum/config did not change with config.log.level")
	}
}

// TestRefusals: values paved cannot run with fail to render, with a message.
func TestRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"sqlite with 2 replicas", []string{"-f", sqliteValues, "--set", "replicaCount=2"}, "replicaCount must be 1, not 2"},
		{"defaults with 2 replicas", []string{"--set", "replicaCount=2"}, "replicaCount must be 1, not 2"},
		{"sqlite rolling update", []string{"-f", sqliteValues, "--set", "strategy.type=RollingUpdate"}, "needs strategy.type Recreate"},
		{"sqlite file off the volume", []string{"--set", "config.store.path=/data/paved.db"}, "must be under persistence.mountPath"},
		{"postgres without dsn", []string{"-f", postgresValues, "--set", "config.store.dsn=null"}, "config.store.dsn is required"},
		{"unmapped env reference", []string{"--set", "config.gitlab.token=env:NOT_MAPPED"}, "env:NOT_MAPPED"},
		{"secret keys without a secret", []string{"--set", "secrets.existingSecret="}, "secrets.existingSecret, which is not set"},
		{"listen off the container port", []string{"--set", "config.server.listen=:9090"}, "must listen on containerPort"},
		{"misspelt value", []string{"--set", "replicas=3"}, "'replicas' not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := helmTemplate(t, tc.args...)
			if err == nil {
				t.Fatalf("rendered, want a refusal containing %q:\n%s", tc.want, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("refusal %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	// More replicas are fine on PostgreSQL.
	if _, err := helmTemplate(t, "-f", postgresValues, "--set", "replicaCount=2"); err != nil {
		t.Errorf("postgres with 2 replicas: %v", err)
	}
}

func TestSplitDocuments(t *testing.T) {
	out := "---\n# Source: a.yaml\n\n---\n# Source: b.yaml\nkind: A\n--- \nkind: B\n"
	if docs := splitDocuments(out); len(docs) != 2 || !strings.Contains(docs[0], "kind: A") || !strings.Contains(docs[1], "kind: B") {
		t.Errorf("splitDocuments = %q", docs)
	}
}

func subset(sub, super map[string]string) bool {
	for k, v := range sub {
		if super[k] != v {
			return false
		}
	}
	return true
}

func nonZero(l corev1.ResourceList, name corev1.ResourceName) bool {
	q, ok := l[name]
	return ok && !q.IsZero()
}

func isTrue(b *bool) bool { return b != nil && *b }

func is[T comparable](p *T, want T) bool { return p != nil && *p == want }

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func keysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// dig walks nested maps by key; nil where a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
