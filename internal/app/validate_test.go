package app

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestBuildRefusesBadDefinitions: paved serve does not start on a broken
// action, blueprint, policy or policy test, and names the file and line, as
// paved validate does.
func TestBuildRefusesBadDefinitions(t *testing.T) {
	copyTree := func(from string) string {
		dir := t.TempDir()
		entries, err := os.ReadDir(from)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(from, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	edit := func(path, old, new string) {
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), old) {
			t.Fatalf("%s lacks %q (%v)", path, old, err)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("malformed action", func(t *testing.T) {
		cfg, env := testConfig(t)
		cfg.ActionsDir = copyTree("../../actions")
		f := filepath.Join(cfg.ActionsDir, "delete-service.yaml")
		edit(f, "operation: DELETE\n", "operation: DELETE\n  extra: indented\n")
		_, err := build(t, cfg, env, zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), "refusing to start") || !strings.Contains(err.Error(), f+":9: YAML: mapping values are not allowed") {
			t.Fatalf("Build error = %v, want the file and line of the malformed action", err)
		}
	})

	t.Run("output not in the blueprint", func(t *testing.T) {
		cfg, env := testConfig(t)
		cfg.ActionsDir = copyTree("../../actions")
		cfg.BlueprintsDir = "../../blueprints"
		f := filepath.Join(cfg.ActionsDir, "add-s3-bucket.yaml")
		edit(f, "    region: ${outputs.region}", "    awsRegion: ${outputs.region}")
		_, err := build(t, cfg, env, zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), f+":20: output.properties.awsRegion: blueprint s3_bucket has no property") {
			t.Fatalf("Build error = %v", err)
		}
		// Without a blueprints directory that check is skipped: paved
		// does not need blueprints to serve.
		cfg.BlueprintsDir = filepath.Join(t.TempDir(), "none")
		a, err := build(t, cfg, env, zap.NewNop())
		if err != nil {
			t.Fatalf("Build without blueprints: %v", err)
		}
		a.store.Close()
	})

	t.Run("policy that does not compile", func(t *testing.T) {
		cfg, env := testConfig(t)
		cfg.PolicyDir = copyTree("../../actions/policy")
		f := filepath.Join(cfg.PolicyDir, "policy.rego")
		b, _ := os.ReadFile(f)
		line := strings.Count(string(b), "\n") + 2
		if err := os.WriteFile(f, append(b, []byte("\nbroken if {\n\tundefined_thing\n}\n")...), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := build(t, cfg, env, zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), f+":"+strconv.Itoa(line+1)+":") {
			t.Fatalf("Build error = %v, want %s:%d", err, f, line+1)
		}
	})

	t.Run("failing Rego test", func(t *testing.T) {
		cfg, env := testConfig(t)
		cfg.PolicyDir = copyTree("../../actions/policy")
		f := filepath.Join(cfg.PolicyDir, "policy_test.rego")
		b, _ := os.ReadFile(f)
		line := strings.Count(string(b), "\n") + 2
		if err := os.WriteFile(f, append(b, []byte("\ntest_broken if {\n\tfalse\n}\n")...), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := build(t, cfg, env, zap.NewNop())
		want := f + ":" + strconv.Itoa(line) + ": rego test data.paved.policy_test.test_broken fails"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Build error = %v, want %s", err, want)
		}
		// The tests run beside the rest of Build, but are waited for
		// before the store is opened: nothing is created or migrated.
		if _, err := os.Stat(cfg.Store.Path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("store %s after the refused start: %v, want none", cfg.Store.Path, err)
		}
		// Nor is the failure remembered: the next start runs the tests again.
		if _, err := os.Stat(cfg.RegoTestCache()); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("rego test cache %s after the refused start: %v, want none", cfg.RegoTestCache(), err)
		}
	})
}

// A restart with the same policy files does not run their Rego tests
// again; with policyTestCache off, every start runs them.
func TestBuildRemembersPassedRegoTests(t *testing.T) {
	for _, c := range []struct {
		cache      string
		wantCached bool
	}{{"", true}, {"off", false}} {
		cfg, env := testConfig(t)
		cfg.PolicyTestCache = c.cache
		for i := range 2 {
			core, logs := observer.New(zap.InfoLevel)
			a, err := build(t, cfg, env, zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			a.store.Close()
			cached := logs.FilterMessageSnippet("not run again").Len() == 1
			if want := i == 1 && c.wantCached; cached != want {
				t.Fatalf("policyTestCache %q, start %d: tests skipped %v, want %v", c.cache, i+1, cached, want)
			}
		}
	}
}
