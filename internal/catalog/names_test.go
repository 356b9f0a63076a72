package catalog

import (
	"regexp"
	"strings"
	"testing"
)

// TestNameChecksMatchTheirPatterns: the hand-written checks accept exactly
// what the regular expressions they stand for do.
func TestNameChecksMatchTheirPatterns(t *testing.T) {
	ident := regexp.MustCompile(identifierPattern)
	dns := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	for _, s := range []string{"", "a", "ab", "a-", "-a", "1a", "a1", "add-sqs-queue", "Add", "a_b", "a.b", "a--b", "ab-", "é", "a\n", "\xff",
		strings.Repeat("a", 62), strings.Repeat("a", 63), strings.Repeat("a", 64), "a" + strings.Repeat("-", 61) + "a", "a" + strings.Repeat("-", 62)} {
		if got, want := validIdentifier(s), ident.MatchString(s); got != want {
			t.Errorf("validIdentifier(%q) = %v, want %v", s, got, want)
		}
		if got, want := dnsLabel(s), dns.MatchString(s); got != want {
			t.Errorf("dnsLabel(%q) = %v, want %v", s, got, want)
		}
	}
}
