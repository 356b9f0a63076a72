// Package optin runs the suites that need tools beyond Go (node, npm
// packages, a browser) only when asked for.
package optin

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	h "github.com/paved-idp/paved/test/harness"
)

// Suite names a suite that runs only when asked, because it needs tools
// beyond Go (node, npm packages, a browser): PAVED_<name>=1 runs it, and
// PAVED_REQUIRE_<name>=1 also fails it, rather than skipping, when one of
// those tools is missing. Setup is the script that installs them.
type Suite struct {
	Name  string // e.g. "BROWSER": PAVED_BROWSER, PAVED_REQUIRE_BROWSER
	Setup string // e.g. ".ci/browser.sh"
}

// Wanted reports whether the suite was asked for.
func (o Suite) Wanted() bool { return os.Getenv("PAVED_"+o.Name) == "1" || o.Required() }

// Required reports whether the suite must run: a missing tool fails it.
func (o Suite) Required() bool { return os.Getenv("PAVED_REQUIRE_"+o.Name) == "1" }

// Main is the suite's TestMain: it builds paved only when the suite is
// wanted (otherwise its tests skip, and the build would be wasted).
func (o Suite) Main(m *testing.M, bin *string) {
	if !o.Wanted() {
		os.Exit(m.Run())
	}
	h.Main(m, bin)
}

// SkipUnlessWanted skips t unless the suite was asked for.
func (o Suite) SkipUnlessWanted(t testing.TB) {
	t.Helper()
	if !o.Wanted() {
		t.Skipf("runs with PAVED_%s=1 or PAVED_REQUIRE_%s=1 (%s)", o.Name, o.Name, o.Setup)
	}
}

// Missing skips t for a missing tool, or fails it when the suite is required.
func (o Suite) Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if o.Required() {
		t.Fatalf("%s (PAVED_REQUIRE_%s=1; %s installs everything)", msg, o.Name, o.Setup)
	}
	t.Skipf("%s; %s installs it", msg, o.Setup)
}

// Tool is the path of an executable on PATH; a missing one is Missing.
func (o Suite) Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		o.Missing(t, "%s is not installed", name)
	}
	return p
}

// NodeModules checks that dir's node_modules holds every package (npm ci
// in dir installs them); a missing one is Missing.
func (o Suite) NodeModules(t testing.TB, dir string, packages ...string) {
	t.Helper()
	for _, pkg := range packages {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(pkg), "package.json")); err != nil {
			rel, _ := filepath.Rel(h.RepoRoot(), dir)
			o.Missing(t, "%s is not installed: run npm ci in %s", pkg, filepath.ToSlash(rel))
		}
	}
}

// Script is a script's output: stdout and stderr as they came.
type Script struct {
	Stdout, Stderr string
}

// RunScript runs cmd, logging each line of its standard output to t as it
// comes (prefixed with name) and handing it to onLine (which may be nil),
// and returns what it wrote once it has exited. Synchronise on the lines,
// not on time: onLine sees each one as the script writes it.
func RunScript(t testing.TB, name string, cmd *exec.Cmd, onLine func(line string)) (Script, error) {
	t.Helper()
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Script{}, err
	}
	if err := cmd.Start(); err != nil {
		return Script{}, err
	}
	var out strings.Builder
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 64<<10), 4<<20)
	for lines.Scan() {
		line := lines.Text()
		out.WriteString(line + "\n")
		t.Log(name + ": " + line)
		if onLine != nil {
			onLine(line)
		}
	}
	err = cmd.Wait()
	return Script{Stdout: out.String(), Stderr: stderr.String()}, err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
