package validate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPassedTestsRunsEachSetOnce(t *testing.T) {
	ctx := context.Background()
	tr := newTree(t)
	cache := PassedTests{Path: filepath.Join(t.TempDir(), "passed")}
	run := func(wantCached bool) []Problem {
		t.Helper()
		ps, cached := cache.Run(ctx, tr.rego)
		if cached != wantCached {
			t.Fatalf("cached = %v, want %v (problems %v)", cached, wantCached, ps)
		}
		return ps
	}
	if ps := run(false); len(ps) != 0 {
		t.Fatalf("shipped tests: %v", ps)
	}
	run(true)

	// Any change to a file of the set runs the tests again, a comment too.
	f := filepath.Join(tr.rego, "policy_test.rego")
	tr.edit(f, "tenant_set := {t: true | some t in tenants}", "tenant_set := {t: true | some t in tenants}\n\n# a comment")
	run(false)
	run(true)

	// A failure is reported every time, never remembered.
	tr.edit(f, "# a comment", "test_broken if {\n\tfalse\n}")
	for range 2 {
		if ps := run(false); len(ps) != 1 || !strings.Contains(ps[0].Msg, "test_broken fails") {
			t.Fatalf("problems %v, want test_broken's", ps)
		}
	}

	// A new file in the directory (data, say) is part of the set.
	tr.edit(f, "test_broken if {\n\tfalse\n}", "# a comment")
	run(true)
	if err := os.WriteFile(filepath.Join(tr.rego, "data.json"), []byte(`{"x": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	run(false)
}

// A remembered digest is trusted: the tests of that set are not run. (Here
// the set fails; only a pass is ever written, so this file was forged.)
func TestPassedTestsSkipsARememberedSet(t *testing.T) {
	tr := newTree(t)
	f := filepath.Join(tr.rego, "policy_test.rego")
	tr.edit(f, "tenant_set := {t: true | some t in tenants}", "tenant_set := {t: true | some t in tenants}\n\ntest_broken if {\n\tfalse\n}")
	digest, err := testSetDigest(tr.rego)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "passed")
	if err := os.WriteFile(path, []byte("not a digest\n"+digest+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ps, cached := (PassedTests{Path: path}).Run(context.Background(), tr.rego); !cached || len(ps) != 0 {
		t.Fatalf("cached %v, problems %v: the remembered set was run", cached, ps)
	}
}

// A file that cannot be written (its directory is missing) costs a run
// each time, nothing more.
func TestPassedTestsUnwritable(t *testing.T) {
	tr := newTree(t)
	cache := PassedTests{Path: filepath.Join(t.TempDir(), "missing", "passed")}
	for range 2 {
		if ps, cached := cache.Run(context.Background(), tr.rego); cached || len(ps) != 0 {
			t.Fatalf("cached %v, problems %v", cached, ps)
		}
	}
}

// The file keeps the newest keptDigests sets.
func TestPassedTestsKeepsTheNewest(t *testing.T) {
	tr := newTree(t)
	cache := PassedTests{Path: filepath.Join(t.TempDir(), "passed")}
	f := filepath.Join(tr.rego, "policy.rego")
	orig, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	first, err := testSetDigest(tr.rego)
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for i := range keptDigests + 1 {
		if i > 0 {
			if err := os.WriteFile(f, append(orig, strings.Repeat("\n", i)...), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		d, err := testSetDigest(tr.rego)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	// Written directly: running the tests seventeen times would only be slower.
	cache.write(ds)
	kept := cache.read()
	if len(kept) != keptDigests || kept[0] == first || kept[len(kept)-1] != ds[len(ds)-1] {
		t.Fatalf("kept %d digests (first dropped: %v), want the newest %d", len(kept), kept[0] != first, keptDigests)
	}
}

// A run cut short (paved stopped while starting) is a problem, and is not
// remembered as a pass: OPA's runner drops the tests it has not run when
// its context ends, without an error.
func TestPassedTestsCancelled(t *testing.T) {
	tr := newTree(t)
	cache := PassedTests{Path: filepath.Join(t.TempDir(), "passed")}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ps, cached := cache.Run(ctx, tr.rego); cached || len(ps) == 0 || !strings.Contains(Report(ps), "not all run") {
		t.Fatalf("cancelled run: cached %v, problems %v", cached, ps)
	}
	if _, err := os.Stat(cache.Path); !os.IsNotExist(err) {
		t.Fatalf("cache after a cancelled run: %v, want none", err)
	}
}

// Links are followed, as OPA's loader follows them: a policy directory
// that is a link (or holds links to its files, as a Kubernetes ConfigMap
// volume does) is hashed by what the links point at.
func TestPassedTestsFollowsLinks(t *testing.T) {
	tr := newTree(t)
	root := t.TempDir()
	linkedDir := filepath.Join(root, "policy")
	if err := os.Symlink(tr.rego, linkedDir); err != nil {
		t.Fatal(err)
	}
	// A directory of links to the tree's files.
	links := filepath.Join(root, "links")
	if err := os.Mkdir(links, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"policy.rego", "policy_test.rego"} {
		if err := os.Symlink(filepath.Join(tr.rego, name), filepath.Join(links, name)); err != nil {
			t.Fatal(err)
		}
	}
	empty, err := testSetDigest(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cache := PassedTests{Path: filepath.Join(t.TempDir(), "passed")}
	for _, dir := range []string{linkedDir, links} {
		if d, err := testSetDigest(dir); err != nil || d == empty {
			t.Fatalf("%s: digest %s (%v), the same as an empty directory's", dir, d, err)
		}
		if ps, _ := cache.Run(context.Background(), dir); len(ps) != 0 {
			t.Fatal(ps)
		}
	}
	// Breaking the test behind the links runs the tests again, through
	// either, and reports the failure.
	f := filepath.Join(tr.rego, "policy_test.rego")
	tr.edit(f, "tenant_set := {t: true | some t in tenants}", "tenant_set := {t: true | some t in tenants}\n\ntest_broken if {\n\tfalse\n}")
	for _, dir := range []string{linkedDir, links} {
		if ps, cached := cache.Run(context.Background(), dir); cached || len(ps) != 1 {
			t.Fatalf("%s after the target changed: cached %v, problems %v", dir, cached, ps)
		}
	}
}

// A cycle of links ends the walk with an error: the tests simply run.
func TestPassedTestsLinkCycle(t *testing.T) {
	tr := newTree(t)
	if err := os.Symlink(tr.rego, filepath.Join(tr.rego, "loop")); err != nil {
		t.Fatal(err)
	}
	if _, err := testSetDigest(tr.rego); err == nil {
		t.Fatal("a cycle of links hashed")
	}
}
