package validate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"

	"github.com/open-policy-agent/opa/v1/version"
)

// PassedTests remembers which sets of Rego tests passed, as `go test`
// caches a passing package: a set is the content of every file in the
// policy directory (what OPA's runner loads: policies, tests, data) and
// the OPA, Go and paved builds that ran it. paved serve asks it first, so
// a restart with an unchanged policy skips the tests (the larger part of
// start-up); a change to any of those runs them again, and a failure is
// never remembered. `paved validate` always runs them.
type PassedTests struct {
	// Path is the file the passed sets' digests are kept in, one a line.
	Path string
}

// keptDigests bounds the file: enough for a few policies served in turn.
const keptDigests = 16

// Run is RegoTests unless the same set passed before; cached says it was
// not run. A digest that cannot be read or written only costs a run.
func (p PassedTests) Run(ctx context.Context, dir string) (probs []Problem, cached bool) {
	digest, err := testSetDigest(dir)
	if err != nil {
		// RegoTests reports an unreadable directory in its own words.
		return RegoTests(ctx, dir), false
	}
	kept := p.read()
	if slices.Contains(kept, digest) {
		return nil, true
	}
	probs = RegoTests(ctx, dir) // a run cut short by ctx is a problem too
	// Remembered only if the files did not change while the tests ran.
	if after, err := testSetDigest(dir); len(probs) == 0 && ctx.Err() == nil && err == nil && after == digest {
		p.write(append(kept, digest))
	}
	return probs, false
}

// testSetDigest hashes what a run of the tests in dir depends on: every
// file OPA's loader can read there, found as it finds them (following
// symbolic links, into subdirectories), and the programs that judge them.
func testSetDigest(dir string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "paved rego tests 2\nopa %s\n%s\n%s\n", version.Version, runtime.Version(), buildID())
	if err := hashTree(h, dir, "", 0); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// maxDepth bounds hashTree: a cycle of links ends the walk with an error,
// and the tests simply run.
const maxDepth = 32

// hashTree writes each file under dir/rel to h, named and sized first so
// that no two sets of files hash alike, in a fixed order. os.Stat follows
// links as OPA's loader does (a Kubernetes ConfigMap's files are links).
func hashTree(h io.Writer, dir, rel string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: deeper than %d directories", filepath.Join(dir, rel), maxDepth)
	}
	entries, err := os.ReadDir(filepath.Join(dir, rel))
	if err != nil {
		return err
	}
	for _, e := range entries { // sorted by name
		name := filepath.Join(rel, e.Name())
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			fmt.Fprintf(h, "dir %q\n", filepath.ToSlash(name))
			if err := hashTree(h, dir, name, depth+1); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "file %q %d\n", filepath.ToSlash(name), len(b))
			h.Write(b)
		}
	}
	return nil
}

// buildID names the paved build (its module version and VCS revision, as
// far as the binary records them): a new paved may judge results anew.
func buildID() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	id := bi.Main.Path + " " + bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			id += " " + s.Key + "=" + s.Value
		}
	}
	return id
}

func (p PassedTests) read() []string {
	b, err := os.ReadFile(p.Path)
	if err != nil {
		return nil
	}
	var ds []string
	for sc := bufio.NewScanner(bytes.NewReader(b)); sc.Scan(); {
		if d := sc.Text(); len(d) == sha256.Size*2 {
			ds = append(ds, d)
		}
	}
	return ds
}

// write replaces the file whole (a temporary file renamed over it), so a
// crash or a second paved starting beside this one never leaves half a
// line to be read as a digest.
func (p PassedTests) write(ds []string) {
	if len(ds) > keptDigests {
		ds = ds[len(ds)-keptDigests:]
	}
	var b bytes.Buffer
	for _, d := range ds {
		b.WriteString(d + "\n")
	}
	f, err := os.CreateTemp(filepath.Dir(p.Path), filepath.Base(p.Path)+".*")
	if err != nil {
		return
	}
	_, werr := f.Write(b.Bytes())
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), p.Path) != nil {
		_ = os.Remove(f.Name())
	}
}
