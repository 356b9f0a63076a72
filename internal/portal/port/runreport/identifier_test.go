package runreport

import (
	"regexp"
	"strings"
	"testing"
)

// TestEntityIdentifierMatchesPortsPattern: the hand-written check accepts
// exactly what Port's pattern does (the regexp, without its lookahead for
// "." and "..", which RE2 lacks).
func TestEntityIdentifierMatchesPortsPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[\p{L}0-9@_.+:\\/='-]{1,1000}$`)
	ids := []string{"", ".", "..", "...", "a", "checkout", "Payments EU", "payments_eu", "a/b\\c=d'e-f+g:h@i.j",
		"Zürich", "東京", "日本語-1", "x y", "tab\t", "a\nb", "a$b", "a#b", "émoji😀", "١٢٣", "\xff", "ok\xffno", "a\x00",
		strings.Repeat("a", 1000), strings.Repeat("a", 1001), strings.Repeat("é", 1000), strings.Repeat("é", 1001)}
	for _, id := range ids {
		want := id != "." && id != ".." && pattern.MatchString(id)
		if got := entityIdentifierOK(id); got != want {
			t.Errorf("entityIdentifierOK(%q) = %v, want %v", id, got, want)
		}
	}
}
