package config

import (
	"regexp"
	"strings"
	"testing"
)

// TestOperatorNameMatchesPattern: the hand-written check accepts exactly
// what ^[A-Za-z0-9._@-]{1,64}$ does.
func TestOperatorNameMatchesPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)
	for _, name := range []string{"", "a", "api", "dana@acme.example", "ops_1.x-y", "a b", "a/b", "é", "a\n", "a+b", "A:B",
		strings.Repeat("x", 64), strings.Repeat("x", 65), "\xff"} {
		if got, want := operatorName(name), pattern.MatchString(name); got != want {
			t.Errorf("operatorName(%q) = %v, want %v", name, got, want)
		}
	}
}
