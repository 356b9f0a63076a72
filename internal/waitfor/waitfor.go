// Package waitfor lets tests wait for a condition that another goroutine or
// process brings about. It synchronises; it times nothing: the bound is
// generous so that only a real hang fails, never a slow machine.
package waitfor

import (
	"testing"
	"time"
)

// Bound is how long Until waits before it gives up.
const Bound = 30 * time.Second

// Until checks cond until it holds, failing t after Bound.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Bound, what, cond)
}

// Within is Until with a bound of the caller's (load runs that take minutes).
func Within(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", bound, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
