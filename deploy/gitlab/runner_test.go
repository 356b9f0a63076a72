package gitlab

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd, Args string
	Stage     int // index of the FROM it belongs to; -1 before the first
}

func dockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	stage, cur := -1, ""
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur != "" && strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, instruction{Cmd: cmd, Args: strings.TrimSpace(args), Stage: stage})
		cur = ""
	}
	return out
}

// args are the ARG defaults an instruction list declares (name → default,
// "" for none) for one stage (-1: the global ARGs before the first FROM).
func argsOf(ins []instruction, stage int) map[string]string {
	out := map[string]string{}
	for _, in := range ins {
		if in.Cmd == "ARG" && in.Stage == stage {
			name, def, _ := strings.Cut(in.Args, "=")
			out[name] = def
		}
	}
	return out
}

var semverRe = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)$`)

// semverLess compares two x.y.z versions.
func semverLess(t *testing.T, a, b string) bool {
	t.Helper()
	ma, mb := semverRe.FindStringSubmatch(a), semverRe.FindStringSubmatch(b)
	if ma == nil || mb == nil {
		t.Fatalf("not versions: %q, %q", a, b)
	}
	for i := 1; i <= 3; i++ {
		x, _ := strconv.Atoi(ma[i])
		y, _ := strconv.Atoi(mb[i])
		if x != y {
			return x < y
		}
	}
	return false
}

// TestRunnerImage: the runner image pins the Pulumi CLI by version and
// checks its tarball's sha256 (both ARGs), at least as new as the Pulumi
// SDK the program is built with; builds provision and paved from this
// repository; takes its base images from ARGs without moving tags; and
// runs as a non-root user.
func TestRunnerImage(t *testing.T) {
	ins := dockerfile(t, "runner/Dockerfile")
	stages := 0
	for _, in := range ins {
		if in.Cmd == "FROM" {
			stages++
			image, _, _ := strings.Cut(in.Args, " ")
			if !regexp.MustCompile(`^\$\{[A-Z_]+\}$`).MatchString(image) && !regexp.MustCompile(`^[a-z]+$`).MatchString(image) {
				t.Errorf("FROM %s: base images come from ARGs (or an earlier stage)", in.Args)
			}
		}
	}
	if stages < 2 {
		t.Fatalf("want a Go build stage and a runtime stage, got %d stages", stages)
	}
	global := argsOf(ins, -1)
	for _, name := range []string{"GO_IMAGE", "BASE_IMAGE", "AWS_CLI_IMAGE"} {
		def, ok := global[name]
		if !ok {
			t.Errorf("no global ARG %s", name)
			continue
		}
		if !regexp.MustCompile(`^[a-z0-9./-]+:[A-Za-z0-9._-]+(@sha256:[0-9a-f]{64})?$`).MatchString(def) || strings.Contains(def, ":latest") {
			t.Errorf("ARG %s=%s: want an image with a version tag (or a digest), not a moving one", name, def)
		}
	}

	var pulumiStage = -2
	var pulumiRun string
	for _, in := range ins {
		if in.Cmd == "RUN" && strings.Contains(in.Args, "get.pulumi.com/releases/sdk/pulumi-v${PULUMI_VERSION}-linux-") {
			pulumiStage, pulumiRun = in.Stage, in.Args
		}
	}
	if pulumiRun == "" {
		t.Fatal("no RUN downloads the Pulumi release tarball of ${PULUMI_VERSION}")
	}
	pargs := argsOf(ins, pulumiStage)
	version, ok := pargs["PULUMI_VERSION"]
	if !ok || !semverRe.MatchString(version) {
		t.Errorf("ARG PULUMI_VERSION=%q: want a pinned x.y.z version", version)
	}
	if _, ok := pargs["PULUMI_SHA256"]; !ok {
		t.Error("no ARG PULUMI_SHA256 in the stage that downloads Pulumi")
	}
	if !strings.Contains(pulumiRun, `echo "${PULUMI_SHA256}  /tmp/pulumi.tar.gz" | sha256sum -c -`) {
		t.Error("the Pulumi tarball is not checked against PULUMI_SHA256 with sha256sum -c")
	}
	if !strings.Contains(pulumiRun, `if [ -z "${PULUMI_SHA256}" ]`) {
		t.Error("an empty PULUMI_SHA256 must fail the build, not skip the check")
	}
	if i, j := strings.Index(pulumiRun, "sha256sum -c"), strings.Index(pulumiRun, "tar -xzf"); i < 0 || j < i {
		t.Error("the tarball is unpacked before its checksum is checked")
	}
	if sdk := goModVersion(t, "github.com/pulumi/pulumi/sdk/v3"); semverRe.MatchString(version) && semverLess(t, version, sdk) {
		t.Errorf("Pulumi CLI %s is older than the SDK %s in go.mod", version, sdk)
	}

	var builds string
	for _, in := range ins {
		if in.Cmd == "RUN" && in.Stage == 0 {
			builds += in.Args + "\n"
		}
	}
	for _, pkg := range []string{"./cmd/provision", "./cmd/paved"} {
		if !regexp.MustCompile(`go build [^\n]*-o \S+ ` + regexp.QuoteMeta(pkg) + `\b`).MatchString(builds) {
			t.Errorf("the Go stage does not go build %s", pkg)
		}
	}

	last := stages - 1
	var user string
	for _, in := range ins {
		if in.Cmd == "USER" && in.Stage == last {
			user = in.Args
		}
	}
	name, _, _ := strings.Cut(user, ":")
	if user == "" || name == "root" || name == "0" {
		t.Errorf("the runtime stage runs as %q, want a non-root user", user)
	}
	if uid, ok := argsOf(ins, last)["PAVED_UID"]; ok && (uid == "" || uid == "0") {
		t.Errorf("ARG PAVED_UID=%q: want a non-root uid", uid)
	}
	var copied string
	for _, in := range ins {
		if in.Cmd == "COPY" && in.Stage == last {
			copied += in.Args + "\n"
		}
	}
	for _, want := range []string{"/out/provision", "/out/paved", "/opt/pulumi/", "/usr/local/go/", "/usr/local/aws-cli/"} {
		if !strings.Contains(copied, want) {
			t.Errorf("the runtime stage does not copy %s", want)
		}
	}
}

// TestRunnerImagePluginsMatchThePlatform: the provider plugins baked into
// the image are the versions deploy/pulumi/platform.yaml pins.
func TestRunnerImagePluginsMatchThePlatform(t *testing.T) {
	b, err := os.ReadFile("../pulumi/platform.yaml")
	if err != nil {
		t.Skipf("no deploy/pulumi beside this folder (a split component project): %v", err)
	}
	var platform struct {
		Providers struct {
			AWS        string `yaml:"aws"`
			Kubernetes string `yaml:"kubernetes"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(b, &platform); err != nil {
		t.Fatal(err)
	}
	ins := dockerfile(t, "runner/Dockerfile")
	stages := argsStages(ins)
	args := argsOf(ins, stages[len(stages)-1])
	if args["PULUMI_AWS_VERSION"] != platform.Providers.AWS || args["PULUMI_KUBERNETES_VERSION"] != platform.Providers.Kubernetes {
		t.Errorf("image plugins aws %s, kubernetes %s; platform.yaml pins %s, %s",
			args["PULUMI_AWS_VERSION"], args["PULUMI_KUBERNETES_VERSION"], platform.Providers.AWS, platform.Providers.Kubernetes)
	}
}

func argsStages(ins []instruction) []int {
	var stages []int
	for _, in := range ins {
		if in.Cmd == "FROM" {
			stages = append(stages, in.Stage)
		}
	}
	return stages
}

// TestRunnerImageBuildContext: the image is built from the repository root,
// and the Dockerfile's own ignore file sends only what the build needs.
func TestRunnerImageBuildContext(t *testing.T) {
	b, err := os.ReadFile("runner/Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{"*", "!go.mod", "!go.sum", "!cmd", "!internal"} {
		if !lines[want] {
			t.Errorf("runner/Dockerfile.dockerignore lacks %q", want)
		}
	}
	readme, _ := os.ReadFile("README.md")
	if !strings.Contains(string(readme), "docker build -f deploy/gitlab/runner/Dockerfile") {
		t.Error("README does not give the build command (docker build -f deploy/gitlab/runner/Dockerfile … .)")
	}
	if _, err := os.Stat("../../go.mod"); err == nil {
		for _, dir := range []string{"../../cmd/provision", "../../cmd/paved"} {
			if _, err := os.Stat(dir); err != nil {
				t.Errorf("the image builds %s from the repository root: %v", dir, err)
			}
		}
	}
}

// goModVersion is the version go.mod requires of a module.
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Skipf("no go.mod two levels up (a split component project): %v", err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("go.mod does not require %s", module)
	}
	return string(m[1])
}
