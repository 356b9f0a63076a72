// Package clip shortens user input quoted back in error messages and logs.
package clip

import "unicode/utf8"

// String shortens s to at most n bytes (plus an ellipsis) for an error
// message, so a hostile body cannot make errors and logs as large as itself.
// It cuts at a rune boundary to keep valid UTF-8 valid.
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
