// Package stackentity finds the portal entities that belong to one stack:
// those its runs wrote, less those another stack's runs also wrote. A
// stack's end (a delete, an expiry's destroy) or its coming expiry is
// written onto these; a shared entity (the service entity of a service
// deployed to several environments) keeps its status, which is the other
// stacks' too.
package stackentity

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Store lists runs.
type Store interface {
	ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error)
}

// Catalog finds a run's action, for the entity it writes.
type Catalog interface {
	Get(id string) (*catalog.Action, bool)
}

// Finder finds a stack's own entities.
type Finder struct {
	Store   Store
	Catalog Catalog
	// Portal, when set, counts only the runs of the portal whose catalog
	// holds the entities (Port): a run from Backstage wrote none there.
	Portal string
}

// stackScan bounds the runs of the stack read (newest first, paved's own
// drift checks left out, however many there are); sharedScan those of an
// action read to find another stack that wrote the same entity: one older
// than that many of the action's runs is missed, and the entity taken for
// this stack's alone.
const (
	stackScan  = 1000
	sharedScan = 5000
)

// Owned are the entities the stack's succeeded runs made since since (the
// zero time: since its last delete) wrote, and no other stack's.
func (f Finder) Owned(ctx context.Context, stack run.Stack, since time.Time) ([]run.EntityRef, error) {
	runs, err := f.Store.ListRuns(ctx, store.Query{Stack: stack.Key(), States: []run.State{run.Succeeded}, NotPortal: run.PortalPaved, Limit: stackScan})
	if err != nil {
		return nil, fmt.Errorf("list the runs of stack %s: %w", stack.Key(), err)
	}
	l := lookup{Finder: f, actionRuns: map[string][]*run.Run{}, deleted: map[string]bool{}}
	var refs []run.EntityRef
	for _, r := range runs {
		if r.Operation == run.Delete && !r.DryRun {
			break // an earlier life of the stack: its entities were ended then
		}
		if r.DryRun || r.CreatedAt.Before(since) || (f.Portal != "" && r.Request.Portal != f.Portal) {
			continue
		}
		a, ok := f.Catalog.Get(r.Request.Action)
		if !ok {
			continue
		}
		e := a.EntityFor(r)
		if e == nil {
			continue
		}
		ref := run.EntityRef{Blueprint: e.Blueprint, Identifier: e.Identifier}
		if slices.Contains(refs, ref) {
			continue
		}
		shared, err := l.shared(ctx, a, stack.Key(), ref)
		if err != nil {
			return nil, err
		}
		if !shared {
			refs = append(refs, ref)
		}
	}
	return refs, nil
}

// lookup is one Owned call's reads, each made once: an action's runs, and
// whether a stack was deleted.
type lookup struct {
	Finder
	actionRuns map[string][]*run.Run
	deleted    map[string]bool
}

// shared says whether a succeeded run of another stack, one not deleted
// since, wrote ref through action a (among its newest runs).
func (l lookup) shared(ctx context.Context, a *catalog.Action, stack string, ref run.EntityRef) (bool, error) {
	runs, ok := l.actionRuns[a.Identifier]
	if !ok {
		var err error
		runs, err = l.Store.ListRuns(ctx, store.Query{States: []run.State{run.Succeeded}, Action: a.Identifier, NotPortal: run.PortalPaved, Limit: sharedScan})
		if err != nil {
			return false, fmt.Errorf("list the runs of action %s: %w", a.Identifier, err)
		}
		l.actionRuns[a.Identifier] = runs
	}
	for _, r := range runs {
		if r.Stack.Key() == stack || r.DryRun {
			continue
		}
		if e := a.EntityFor(r); e == nil || e.Blueprint != ref.Blueprint || e.Identifier != ref.Identifier {
			continue
		}
		gone, err := l.stackDeleted(ctx, r.Stack)
		if err != nil {
			return false, err
		}
		if !gone {
			return true, nil
		}
	}
	return false, nil
}

// stackDeleted says whether the stack's latest change (drift checks and
// dry runs aside) was a DELETE that succeeded.
func (l lookup) stackDeleted(ctx context.Context, stack run.Stack) (bool, error) {
	if gone, ok := l.deleted[stack.Key()]; ok {
		return gone, nil
	}
	runs, err := l.Store.ListRuns(ctx, store.Query{Stack: stack.Key(), States: []run.State{run.Succeeded}, Limit: stackScan})
	if err != nil {
		return false, fmt.Errorf("list the runs of stack %s: %w", stack.Key(), err)
	}
	gone := false
	for _, r := range runs {
		if r.DryRun || r.Operation == run.Drift {
			continue
		}
		gone = r.Operation == run.Delete
		break
	}
	l.deleted[stack.Key()] = gone
	return gone, nil
}
