package cost

import (
	"context"
	"fmt"

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
type Ledger struct {
	Runs Runs
}

// ledgerScan bounds the runs one total reads (newest first): a stack whose
// last change is older than that many runs of its tenant and environment
// is left out of the total.
const ledgerScan = 5000

// Others is what tenant's stacks in environment cost a month, all but
// exceptStack.
func (l Ledger) Others(ctx context.Context, tenant, environment, exceptStack string) (float64, error) {
	runs, err := l.Runs.ListRuns(ctx, store.Query{States: []run.State{run.Succeeded}, Tenant: tenant, Environment: environment, Limit: ledgerScan})
	if err != nil {
		return 0, fmt.Errorf("list the succeeded runs of %s in %s: %w", tenant, environment, err)
	}
	counted := map[string]bool{exceptStack: true}
	total := 0.0
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
			total += r.Preview.Cost.Monthly
		}
		// A change without an estimate (an older pipeline): look further back.
	}
	return total, nil
}
