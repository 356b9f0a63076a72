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
	deadline := time.Now().Add(Bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
