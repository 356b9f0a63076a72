// Package clip shortens strings quoted in the port packages' error messages.
package clip

// String shortens s for an error message.
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
