package cost

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// listed is a store of succeeded runs that counts its reads.
type listed struct {
	mu    sync.Mutex
	runs  []*run.Run // newest first
	reads atomic.Int32
}

func (l *listed) ListRuns(_ context.Context, q store.Query) ([]*run.Run, error) {
	l.reads.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*run.Run
	for _, r := range l.runs {
		if r.Stack.Tenant == q.Tenant && r.Stack.Environment == q.Environment {
			out = append(out, r)
		}
	}
	return out, nil
}

func (l *listed) applied(service string, op run.Operation, monthly float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &run.Run{Operation: op, State: run.Succeeded, Stack: run.Stack{Tenant: "acme", Environment: "dev", Service: service},
		Preview: &run.Preview{Cost: &run.Cost{Monthly: monthly}}}
	l.runs = append([]*run.Run{r}, l.runs...)
}

// TestLedgerReusesTotalsForMaxAge: previews within MaxAge share one read of
// the tenant's runs (concurrent ones too), each leaving out its own stack;
// after MaxAge the totals are read again and see what was applied since.
func TestLedgerReusesTotalsForMaxAge(t *testing.T) {
	st := &listed{}
	st.applied("billing", run.Day2, 1500)
	st.applied("search", run.Day2, 900)
	st.applied("search", run.Delete, 0) // destroyed since: nothing
	st.applied("ledger", run.Day2, 350)
	now := time.Unix(1_700_000_000, 0)
	var clock sync.Mutex
	l := &Ledger{Runs: st, MaxAge: 10 * time.Second, Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }}
	ctx := context.Background()
	others := func(except string) float64 {
		t.Helper()
		v, err := l.Others(ctx, "acme", "dev", except)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := others("acme-dev-checkout"); got != 1850 {
		t.Fatalf("others of a new stack %v, want 1850", got)
	}
	if got := others("acme-dev-billing"); got != 350 {
		t.Fatalf("others of billing %v, want 350 (its own cost left out)", got)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() { others("acme-dev-checkout") })
	}
	wg.Wait()
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("%d reads for previews within MaxAge, want 1", n)
	}

	st.applied("checkout", run.Day2, 100)
	if got := others("acme-dev-billing"); got != 350 {
		t.Fatalf("within MaxAge: %v, want the totals as read (350)", got)
	}
	clock.Lock()
	now = now.Add(10 * time.Second)
	clock.Unlock()
	if got := others("acme-dev-billing"); got != 450 || st.reads.Load() != 2 {
		t.Fatalf("after MaxAge: %v after %d reads, want 450 after 2", got, st.reads.Load())
	}
	if got, err := l.Others(ctx, "globex", "dev", ""); err != nil || got != 0 || st.reads.Load() != 3 {
		t.Fatalf("another tenant: %v, %v after %d reads; want 0 from a read of its own", got, err, st.reads.Load())
	}
}
