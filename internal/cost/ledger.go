package cost

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Runs lists runs.
type Runs interface {
	ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error)
}

// Ledger totals the estimated cost of stacks from their runs: each stack
// costs what the preview of its latest applied change said it would (the
// estimate after it), a destroyed one nothing.
//
// A tenant's totals in an environment are read from the store at most once
// every MaxAge and shared by the previews in between: every pipeline's
// preview asks, and reading them afresh each time decoded up to ledgerScan
// runs a preview — with 10,000 pipelines of one tenant running, 80 % of
// paved's CPU, and the reports fell behind by tens of thousands. Budgets
// already count only applied changes (changes previewed together may
// overshoot together); the cache widens that moment to MaxAge.
type Ledger struct {
	Runs   Runs
	MaxAge time.Duration    // 0: DefaultMaxAge
	Now    func() time.Time // nil: time.Now

	mu      sync.Mutex
	tenants map[string]*totals // by tenant and environment
}

// DefaultMaxAge is how long a tenant's totals are reused.
const DefaultMaxAge = 10 * time.Second

// totals is one tenant's stacks' costs in one environment, as last read.
type totals struct {
	mu     sync.Mutex // held while reading: concurrent previews wait for one read
	at     time.Time
	stacks map[string]float64
}

// ledgerScan bounds the runs one total reads (newest first): a stack whose
// last change is older than that many runs of its tenant and environment
// is left out of the total.
const ledgerScan = 5000

// Others is what tenant's stacks in environment cost a month, all but
// exceptStack.
func (l *Ledger) Others(ctx context.Context, tenant, environment, exceptStack string) (float64, error) {
	stacks, err := l.stacks(ctx, tenant, environment)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for key, monthly := range stacks {
		if key != exceptStack {
			total += monthly
		}
	}
	return total, nil
}

// stacks is each stack's monthly cost, read at most MaxAge ago.
func (l *Ledger) stacks(ctx context.Context, tenant, environment string) (map[string]float64, error) {
	now, maxAge := time.Now, l.MaxAge
	if l.Now != nil {
		now = l.Now
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	l.mu.Lock()
	if l.tenants == nil {
		l.tenants = map[string]*totals{}
	}
	key := tenant + "\x00" + environment
	t := l.tenants[key]
	if t == nil {
		t = &totals{}
		l.tenants[key] = t
	}
	l.mu.Unlock()

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stacks != nil && now().Sub(t.at) < maxAge {
		return t.stacks, nil
	}
	at := now()
	stacks, err := l.read(ctx, tenant, environment)
	if err != nil {
		return nil, err
	}
	t.at, t.stacks = at, stacks
	return stacks, nil
}

// read totals the stacks from their newest succeeded runs.
func (l *Ledger) read(ctx context.Context, tenant, environment string) (map[string]float64, error) {
	runs, err := l.Runs.ListRuns(ctx, store.Query{States: []run.State{run.Succeeded}, Tenant: tenant, Environment: environment, Limit: ledgerScan})
	if err != nil {
		return nil, fmt.Errorf("list the succeeded runs of %s in %s: %w", tenant, environment, err)
	}
	counted := map[string]bool{}
	stacks := map[string]float64{}
	for _, r := range runs {
		key := r.Stack.Key()
		if counted[key] || r.DryRun || r.Operation == run.Drift {
			continue
		}
		switch {
		case r.Operation == run.Delete:
			counted[key] = true // destroyed: costs nothing
		case r.Preview != nil && r.Preview.Cost != nil:
			counted[key] = true
			stacks[key] = r.Preview.Cost.Monthly
		}
		// A change without an estimate (an older pipeline): look further back.
	}
	return stacks, nil
}
