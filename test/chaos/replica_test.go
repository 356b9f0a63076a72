package chaos

import (
	"fmt"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
	h "github.com/paved-idp/paved/test/harness"
)

// TestReplicas runs two paved processes on one PostgreSQL between the
// simulators, spreads the actions across both, and SIGKILLs the replica
// that receives GitLab's hooks halfway through: the other must take over
// its leases (claims it held when it died), follow its pipelines by
// polling, and finish every run — none lost, no pipeline twice, one final
// status each. Short mode by default; `make replicas` runs 1,000 actions.
func TestReplicas(t *testing.T) {
	runs := setting("PAVED_CHAOS_RUNS", 60)
	dsn := pgtest.DSN(t)
	opt := h.Options{Outcome: quick, PollInterval: 500 * time.Millisecond, PortRateLimit: 1_000_000, DatabaseURL: dsn}
	first := h.Start(t, pavedBin, opt)
	second := first.Replica()

	start := time.Now()
	killed := make(chan time.Duration, 1)
	go func() {
		// Kill the first replica once about half the actions are in.
		for len(first.Port.Runs()) < runs/2 {
			time.Sleep(50 * time.Millisecond)
		}
		first.Kill()
		killed <- time.Since(start)
	}()
	acc := send(t, first, runs, time.Now().Add(time.Duration(runs)*time.Second), second)
	at := <-killed
	f := settle(t, second, runs, acc, time.Minute+time.Duration(runs)*100*time.Millisecond)
	fmt.Printf("replica suite: replicas=2 killed=1 (after %s) %s in %s\n", at.Round(time.Millisecond), f, time.Since(start).Round(time.Second))
	check(t, f)
}
