package router

import (
	"regexp"
	"strings"
	"testing"
)

// TestRequestIDMatchesPattern: the hand-written check accepts exactly what
// ^[A-Za-z0-9._-]{1,64}$ does.
func TestRequestIDMatchesPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	for _, id := range []string{"", "a", "abc-123", "req-9", "A.b_c-D", "bad id\n", "a@b", "a/b", "é", "a\n",
		strings.Repeat("x", 64), strings.Repeat("x", 65), "\xff"} {
		if got, want := requestIDOK(id), pattern.MatchString(id); got != want {
			t.Errorf("requestIDOK(%q) = %v, want %v", id, got, want)
		}
	}
}
