// Package expiry keeps ephemeral stacks to their time: a CREATE with a TTL
// (run.TTLInput) expires that long after it succeeded (run.Run.ExpiresAt).
// The scheduler warns the portal a while before (status expiring on the
// stack's entities), and at expiry starts a destroy: a run of paved's own
// (portal run.PortalPaved, operation DELETE) through the stack's queue like
// any run, so it is serialised, previewed, reported and audited. A destroy
// that fails stays failed and visible: its idempotency key is the expiry,
// so it is never started twice for one expiry; extending the TTL (Extend)
// sets a new expiry.
package expiry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/stackentity"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/worker"
)

// Store is what the scheduler needs of the run store.
type Store interface {
	ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error)
	CreateRun(ctx context.Context, r *run.Run, ch store.Change) (*run.Run, bool, error)
	Update(ctx context.Context, id string, fn func(*run.Run) (store.Change, error)) (*run.Run, error)
	Run(ctx context.Context, id string) (*run.Run, error)
}

// Catalog finds a run's action, for the entities it writes.
type Catalog interface {
	Get(id string) (*catalog.Action, bool)
}

// Scheduler warns of and carries out the expiry of ephemeral stacks.
type Scheduler struct {
	Store   Store
	Catalog Catalog
	Log     *zap.Logger
	// WarnBefore is how long before its expiry a stack is shown expiring.
	WarnBefore time.Duration
	// Every is how often the scheduler looks (default a minute).
	Every time.Duration
	Now   func() time.Time
	// Portal is the portal whose catalog holds the entities the expiry is
	// written onto (Port; empty: every portal's runs count).
	Portal string
	// Notify, when set, is called after destroys were queued.
	Notify func()
	// Extend's collaborators: the policy bounds the new TTL, Teams finds
	// the asking user's teams when the portal sent none.
	Policy Policy
	Teams  Teams
}

// Result counts what one Check did.
type Result struct {
	Warned, Destroying, Cleared int
}

// page is how many expiring runs one read takes.
const page = 500

// stackRuns bounds the runs of one stack read to learn what happened to it
// since its CREATE (newest first).
const stackRuns = 200

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Run checks until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	every := s.Every
	if every <= 0 {
		every = time.Minute
	}
	worker.Every(ctx, every, s.Log, "check ephemeral stacks", func(ctx context.Context) error {
		_, err := s.Check(ctx)
		return err
	})
}

// Check looks at every run holding an expiry: clears the expiry of a stack
// deleted or created again since, shows a new expiry on the stack's
// entities, warns of one due within WarnBefore, and queues the destroy of
// one due. A stack that fails is logged and the others are still checked.
// Replicas may check together: every step is decided under the CREATE
// run's row (Store.Update), which an extension also changes, so a destroy
// is queued only for an expiry nobody moved.
func (s *Scheduler) Check(ctx context.Context) (Result, error) {
	var res Result
	now := s.now()
	after := ""
	var failed []error
	for {
		runs, err := s.Store.ListRuns(ctx, store.Query{States: []run.State{run.Succeeded}, Expiring: true, ByID: true, AfterID: after, Limit: page})
		if err != nil {
			return res, fmt.Errorf("expiry: list the ephemeral stacks: %w", err)
		}
		for _, c := range runs {
			if err := s.checkOne(ctx, c, now, &res); err != nil {
				if ctx.Err() != nil {
					return res, err
				}
				s.Log.Warn("check an ephemeral stack", zap.String("stack", c.Stack.Key()), zap.String("run_id", c.ID), zap.Error(err))
				failed = append(failed, err)
			}
		}
		if len(runs) < page {
			break
		}
		after = runs[len(runs)-1].ID
	}
	if (res.Destroying > 0 || res.Warned > 0) && s.Notify != nil {
		s.Notify()
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("expiry: %d stacks not checked, the first: %w", len(failed), failed[0])
	}
	return res, nil
}

// since is what happened to c's stack after c: a succeeded run that ends
// c's expiry (a delete, or a newer CREATE, which has its own), and whether
// a CREATE or DELETE is under way (which may end it too: look again once it
// is done).
type since struct {
	ended          *run.Run
	busy, deleting bool
}

func (s *Scheduler) since(ctx context.Context, c *run.Run) (since, error) {
	// paved's own runs left out: drift checks change nothing (and a stack
	// may have hundreds), an expiry's destroy is followed by its decision
	// on c (ensureDestroy).
	runs, err := s.Store.ListRuns(ctx, store.Query{Stack: c.Stack.Key(), NotPortal: run.PortalPaved, Limit: stackRuns})
	if err != nil {
		return since{}, fmt.Errorf("expiry: list the runs of stack %s: %w", c.Stack.Key(), err)
	}
	var out since
	for _, r := range runs {
		if r.ID == c.ID || !r.CreatedAt.After(c.CreatedAt) || r.DryRun || r.Operation == run.Drift {
			continue
		}
		switch {
		case r.State == run.Succeeded && r.Operation == run.Delete:
			out.ended = r
		case r.State == run.Succeeded && r.Operation == run.Create && r.Request.Portal != run.PortalPaved:
			out.ended = r
		case (r.Operation == run.Delete || r.Operation == run.Create) && (r.State == run.Queued || r.State == run.Dispatching || r.State == run.Running):
			// One waiting for an approval does not hold the destroy: anyone
			// could otherwise put an expiry off by asking.
			out.busy = true
			out.deleting = out.deleting || r.Operation == run.Delete
		}
		if out.ended != nil {
			break
		}
	}
	return out, nil
}

func (s *Scheduler) checkOne(ctx context.Context, c *run.Run, now time.Time, res *Result) error {
	if c.ExpiresAt.IsZero() || c.Request.Portal == run.PortalPaved {
		return nil
	}
	decided := c.ExpiryDestroying.Equal(c.ExpiresAt)
	if decided {
		// This expiry's destroy was decided: make sure its run exists (a
		// crash may have come between), and leave the rest to that run,
		// unless it ended without destroying the stack: then a delete or a
		// new CREATE since still ends the expiry.
		if failed, err := s.ensureDestroy(ctx, c, now, res); err != nil || !failed {
			return err
		}
	}
	st, err := s.since(ctx, c)
	if err != nil {
		return err
	}
	if st.ended != nil {
		why := fmt.Sprintf("stack %s was deleted by run %s: its expiry no longer applies", c.Stack.Key(), st.ended.ID)
		if st.ended.Operation == run.Create {
			why = fmt.Sprintf("stack %s was created again by run %s: that run's TTL, if any, applies instead", c.Stack.Key(), st.ended.ID)
		}
		if err := s.clear(ctx, c, why, st.ended.Operation == run.Create); err != nil {
			return err
		}
		res.Cleared++
		return nil
	}
	warnAt := c.ExpiresAt.Add(-s.WarnBefore)
	switch {
	case decided:
		return nil // its destroy failed: it waits for someone (an extension tries again)
	case st.busy:
		return nil // a change under way may end or renew the stack: next time
	case !now.Before(c.ExpiresAt):
		return s.destroy(ctx, c, now, res)
	case !now.Before(warnAt) && c.ExpiryWarnedAt.Before(warnAt):
		return s.tell(ctx, c, now, true, res)
	case !c.ExpiryShown.Equal(c.ExpiresAt):
		return s.tell(ctx, c, now, false, res)
	}
	return nil
}

// clear drops c's expiry, unless it changed meanwhile, and with untell
// takes it off the stack's entities (a stack created again: not after a
// delete, whose entities may be gone, and an upsert would bring them back).
func (s *Scheduler) clear(ctx context.Context, c *run.Run, why string, untell bool) error {
	var refs []run.EntityRef
	if untell && !c.ExpiryShown.IsZero() {
		var err error
		if refs, err = s.entities(ctx, c); err != nil {
			return err
		}
	}
	_, err := s.Store.Update(ctx, c.ID, func(r *run.Run) (store.Change, error) {
		if !r.ExpiresAt.Equal(c.ExpiresAt) {
			return store.Change{}, store.ErrNoChange
		}
		r.ExpiresAt = time.Time{}
		var ch store.Change
		ch.Add(why)
		for _, ref := range refs {
			ch.Report(run.Report{Entity: catalog.ExpiryFor(ref, time.Time{}, ""), Untied: true})
		}
		return ch, nil
	})
	if err != nil && !errors.Is(err, store.ErrNoChange) {
		return fmt.Errorf("expiry: clear the expiry of run %s: %w", c.ID, err)
	}
	return nil
}

// tell shows the stack's expiry on its own entities, and with warn tells
// the portal it is close (status expiring). Only the entities that are the
// stack's alone: the CREATE's success wrote no expiry, since its entity may
// be shared.
func (s *Scheduler) tell(ctx context.Context, c *run.Run, now time.Time, warn bool, res *Result) error {
	refs, err := s.entities(ctx, c)
	if err != nil {
		return err
	}
	warnAt := c.ExpiresAt.Add(-s.WarnBefore)
	_, err = s.Store.Update(ctx, c.ID, func(r *run.Run) (store.Change, error) {
		// Decided again under the row: another replica may have told, or
		// an extension moved the expiry.
		if !r.ExpiresAt.Equal(c.ExpiresAt) || (warn && !r.ExpiryWarnedAt.Before(warnAt)) || (!warn && r.ExpiryShown.Equal(r.ExpiresAt)) {
			return store.Change{}, store.ErrNoChange
		}
		status := ""
		var ch store.Change
		if warn {
			r.ExpiryWarnedAt, status = now, catalog.StatusExpiring
			ch.Add(fmt.Sprintf("stack %s expires at %s: the portal is warned", r.Stack.Key(), r.ExpiresAt.Format(time.RFC3339)))
		}
		r.ExpiryShown = r.ExpiresAt
		for _, ref := range refs {
			ch.Report(run.Report{Entity: catalog.ExpiryFor(ref, r.ExpiresAt, status), Untied: true})
		}
		return ch, nil
	})
	switch {
	case errors.Is(err, store.ErrNoChange):
		return nil
	case err != nil:
		return fmt.Errorf("expiry: show the expiry of stack %s: %w", c.Stack.Key(), err)
	}
	if warn {
		res.Warned++
	}
	return nil
}

// destroy decides, under c's row, that this expiry's destroy is due (no
// extension moved it meanwhile), then queues the destroy. The decision is
// recorded first, with the destroy run's id, so an extension that comes
// after it is refused, and a crash before the run is stored is mended by
// the next check (ensureDestroy).
func (s *Scheduler) destroy(ctx context.Context, c *run.Run, now time.Time, res *Result) error {
	id := run.NewID()
	decided, err := s.Store.Update(ctx, c.ID, func(r *run.Run) (store.Change, error) {
		if !r.ExpiresAt.Equal(c.ExpiresAt) || now.Before(r.ExpiresAt) || r.ExpiryDestroying.Equal(r.ExpiresAt) {
			return store.Change{}, store.ErrNoChange
		}
		r.ExpiryDestroying, r.ExpiryDestroyRun = r.ExpiresAt, id
		var ch store.Change
		ch.Add(fmt.Sprintf("stack %s expired at %s (TTL %s): run %s destroys it", r.Stack.Key(), r.ExpiresAt.Format(time.RFC3339), run.FormatTTL(r.TTL), id))
		return ch, nil
	})
	switch {
	case errors.Is(err, store.ErrNoChange):
		return nil
	case err != nil:
		return fmt.Errorf("expiry: decide the destroy of stack %s: %w", c.Stack.Key(), err)
	}
	_, err = s.ensureDestroy(ctx, decided, now, res)
	return err
}

// ensureDestroy stores the destroy run c's row names, unless it exists;
// once that run destroyed the stack, c's expiry is done with. failed says
// the run ended without destroying it.
func (s *Scheduler) ensureDestroy(ctx context.Context, c *run.Run, now time.Time, res *Result) (failed bool, err error) {
	if d, err := s.Store.Run(ctx, c.ExpiryDestroyRun); err == nil {
		switch {
		case d.State == run.Succeeded:
			// Its entities were marked destroyed (or deleted: no write may
			// bring them back) by the destroy itself.
			if err := s.clear(ctx, c, fmt.Sprintf("stack %s was destroyed at its expiry by run %s", c.Stack.Key(), d.ID), false); err != nil {
				return false, err
			}
			res.Cleared++
			return false, nil
		case d.State.Terminal():
			return true, nil
		}
		return false, nil // queued or running: the run says how it goes
	} else if !errors.Is(err, run.ErrNotFound) {
		return false, fmt.Errorf("expiry: read the destroy run %s of stack %s: %w", c.ExpiryDestroyRun, c.Stack.Key(), err)
	}
	refs, err := s.entities(ctx, c)
	if err != nil {
		return false, err
	}
	r := &run.Run{
		ID: c.ExpiryDestroyRun,
		Request: run.Request{Portal: run.PortalPaved, PortalRunID: destroyKey(c),
			Action: c.Request.Action, User: run.User{Email: "paved", Name: "paved expiry"},
			Entity: c.Request.Entity, Inputs: c.Request.Inputs},
		Operation: run.Delete, Blueprint: c.Blueprint, Stack: c.Stack, Team: c.Team,
		State: run.Queued, Project: c.Project, Ref: c.Ref, Timeout: c.Timeout,
		ReportsOn: refs, CreatedAt: now, UpdatedAt: now,
	}
	var ch store.Change
	ch.Add(fmt.Sprintf("stack %s expired at %s (TTL %s, set by run %s): destroying it", c.Stack.Key(), c.ExpiresAt.Format(time.RFC3339), run.FormatTTL(c.TTL), c.ID))
	ch.Tasks = append(ch.Tasks, store.NewTask{Kind: store.KindDispatch, Payload: struct{}{}})
	if _, created, err := s.Store.CreateRun(ctx, r, ch); err != nil {
		return false, fmt.Errorf("expiry: queue the destroy of stack %s: %w", c.Stack.Key(), err)
	} else if created {
		res.Destroying++
		s.Log.Info("ephemeral stack expired: destroy queued", zap.String("stack", c.Stack.Key()), zap.String("run_id", r.ID), zap.String("created_by", c.ID))
	}
	return false, nil
}

// entities are the stack's own entities, of its runs since c made it.
func (s *Scheduler) entities(ctx context.Context, c *run.Run) ([]run.EntityRef, error) {
	refs, err := stackentity.Finder{Store: s.Store, Catalog: s.Catalog, Portal: s.Portal}.Owned(ctx, c.Stack, c.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("expiry: %w", err)
	}
	return refs, nil
}
