package audit_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/provision/rules"
	"github.com/paved-idp/paved/internal/provision/rules/audit"
)

// TestDocsRulesTableIsTrue keeps the rules table of docs/golden-path.md
// true: every rule has a row, and every test a row names exists.
func TestDocsRulesTableIsTrue(t *testing.T) {
	doc, err := os.ReadFile("../../../../docs/golden-path.md")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	funcRE := regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	for _, root := range []string{"../..", "../../../../cmd/provision"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !strings.HasSuffix(p, "_test.go") {
				return err
			}
			src, err := os.ReadFile(p)
			for _, m := range funcRE.FindAllStringSubmatch(string(src), -1) {
				defined[m[1]] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rows := map[string]bool{}
	// Rule rows (`id`) and platform stamp rows (plain words).
	rowRE := regexp.MustCompile("(?m)^\\| (?:`([a-z0-9-]+)`|([a-z][a-z /]*)) \\|.*\\|(.*)\\|$")
	testRE := regexp.MustCompile("`(Test\\w+)")
	for _, m := range rowRE.FindAllStringSubmatch(string(doc), -1) {
		rule := m[1] + m[2]
		rows[rule] = true
		names := testRE.FindAllStringSubmatch(m[3], -1)
		if len(names) == 0 {
			t.Errorf("rule %s names no test", rule)
		}
		for _, n := range names {
			if !defined[n[1]] {
				t.Errorf("rule %s names %s, which does not exist", rule, n[1])
			}
		}
	}
	ids := []string{rules.KnownTenant, rules.KnownEnvironment, rules.ValidModel,
		"naming", "parenting", "provider pinning", "tags / labels", "typed tokens"}
	for _, r := range audit.All {
		ids = append(ids, r.ID)
	}
	for _, id := range ids {
		if !rows[id] {
			t.Errorf("rule %s has no row in docs/golden-path.md", id)
		}
	}
}
