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
)

// Store is what the scheduler needs of the run store.
type Store interface {
	ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error)
	CreateRun(ctx context.Context, r *run.Run, ch store.Change) (*run.Run, bool, error)
	Update(ctx context.Context, id string, fn func(*run.Run) (store.Change, error)) (*run.Run, error)
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
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Check(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("check ephemeral stacks", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check looks at every run holding an expiry: clears the expiry of a stack
// deleted or created again since, warns of one due within WarnBefore, and
// queues the destroy of one due. Replicas may check together: a warning is
// written under the run's row, a destroy's idempotency key is its expiry.
func (s *Scheduler) Check(ctx context.Context) (Result, error) {
	var res Result
	now := s.now()
	after := ""
	for {
		runs, err := s.Store.ListRuns(ctx, store.Query{States: []run.State{run.Succeeded}, Expiring: true, ByID: true, AfterID: after, Limit: page})
		if err != nil {
			return res, fmt.Errorf("expiry: list the ephemeral stacks: %w", err)
		}
		for _, c := range runs {
			if err := s.checkOne(ctx, c, now, &res); err != nil {
				return res, err
			}
		}
		if len(runs) < page {
			break
		}
		after = runs[len(runs)-1].ID
	}
	if res.Destroying > 0 && s.Notify != nil {
		s.Notify()
	}
	return res, nil
}

// since is what happened to c's stack after c: a succeeded run that ends
// c's expiry (a delete, or a newer CREATE, which has its own), and whether
// a delete is under way.
type since struct {
	ended    *run.Run
	deleting bool
}

func (s *Scheduler) since(ctx context.Context, c *run.Run) (since, error) {
	runs, err := s.Store.ListRuns(ctx, store.Query{Stack: c.Stack.Key(), Limit: stackRuns})
	if err != nil {
		return since{}, fmt.Errorf("expiry: list the runs of stack %s: %w", c.Stack.Key(), err)
	}
	var out since
	for _, r := range runs {
		if r.ID == c.ID || !r.CreatedAt.After(c.CreatedAt) || r.DryRun {
			continue
		}
		switch {
		case r.State == run.Succeeded && r.Operation == run.Delete:
			out.ended = r
		case r.State == run.Succeeded && r.Operation == run.Create && r.Request.Portal != run.PortalPaved:
			out.ended = r
		case r.Operation == run.Delete && !r.State.Terminal():
			out.deleting = true
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
	st, err := s.since(ctx, c)
	if err != nil {
		return err
	}
	if st.ended != nil {
		why := fmt.Sprintf("stack %s was deleted by run %s: its expiry no longer applies", c.Stack.Key(), st.ended.ID)
		if st.ended.Operation == run.Create {
			why = fmt.Sprintf("stack %s was created again by run %s: that run's TTL, if any, applies instead", c.Stack.Key(), st.ended.ID)
		}
		if err := s.clear(ctx, c.ID, c.ExpiresAt, why); err != nil {
			return err
		}
		res.Cleared++
		return nil
	}
	switch {
	case st.deleting:
		return nil // a delete under way: see what it leaves next time
	case !now.Before(c.ExpiresAt):
		created, err := s.destroy(ctx, c, now)
		if err != nil {
			return err
		}
		if created {
			res.Destroying++
		}
	case !now.Before(c.ExpiresAt.Add(-s.WarnBefore)) && c.ExpiryWarnedAt.Before(c.ExpiresAt.Add(-s.WarnBefore)):
		warned, err := s.warn(ctx, c, now)
		if err != nil {
			return err
		}
		if warned {
			res.Warned++
		}
	}
	return nil
}

// clear drops the expiry of run id, unless it changed meanwhile.
func (s *Scheduler) clear(ctx context.Context, id string, was time.Time, why string) error {
	_, err := s.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		if !r.ExpiresAt.Equal(was) {
			return store.Change{}, store.ErrNoChange
		}
		r.ExpiresAt = time.Time{}
		return store.Change{Events: []string{why}}, nil
	})
	if err != nil && !errors.Is(err, store.ErrNoChange) {
		return fmt.Errorf("expiry: clear the expiry of run %s: %w", id, err)
	}
	return nil
}

// warn tells the portal, on the stack's entities, that it expires soon.
func (s *Scheduler) warn(ctx context.Context, c *run.Run, now time.Time) (bool, error) {
	refs, err := s.entities(ctx, c)
	if err != nil {
		return false, err
	}
	warned := false
	_, err = s.Store.Update(ctx, c.ID, func(r *run.Run) (store.Change, error) {
		// Read again under the row: another replica may have warned.
		if !r.ExpiresAt.Equal(c.ExpiresAt) || !r.ExpiryWarnedAt.Before(r.ExpiresAt.Add(-s.WarnBefore)) {
			return store.Change{}, store.ErrNoChange
		}
		r.ExpiryWarnedAt = now
		var ch store.Change
		ch.Add(fmt.Sprintf("stack %s expires at %s: the portal is warned", r.Stack.Key(), r.ExpiresAt.Format(time.RFC3339)))
		for _, ref := range refs {
			ch.Report(run.Report{Entity: catalog.ExpiryFor(ref, r.ExpiresAt, catalog.StatusExpiring), Untied: true})
		}
		warned = true
		return ch, nil
	})
	if err != nil && !errors.Is(err, store.ErrNoChange) {
		return false, fmt.Errorf("expiry: warn of the expiry of stack %s: %w", c.Stack.Key(), err)
	}
	return warned, nil
}

// destroy queues the destroy of c's stack, once for its expiry.
func (s *Scheduler) destroy(ctx context.Context, c *run.Run, now time.Time) (bool, error) {
	refs, err := s.entities(ctx, c)
	if err != nil {
		return false, err
	}
	r := &run.Run{
		ID: run.NewID(),
		Request: run.Request{Portal: run.PortalPaved, PortalRunID: fmt.Sprintf("expire:%s:%d", c.ID, c.ExpiresAt.Unix()),
			Action: c.Request.Action, User: run.User{Email: "paved", Name: "paved expiry"},
			Entity: c.Request.Entity, Inputs: c.Request.Inputs},
		Operation: run.Delete, Blueprint: c.Blueprint, Stack: c.Stack, Team: c.Team,
		State: run.Queued, Project: c.Project, Ref: c.Ref, Timeout: c.Timeout,
		ReportsOn: refs, CreatedAt: now, UpdatedAt: now,
	}
	var ch store.Change
	ch.Add(fmt.Sprintf("stack %s expired at %s (TTL %s, set by run %s): destroying it", c.Stack.Key(), c.ExpiresAt.Format(time.RFC3339), run.FormatTTL(c.TTL), c.ID))
	ch.Tasks = append(ch.Tasks, store.NewTask{Kind: store.KindDispatch, Payload: struct{}{}})
	_, created, err := s.Store.CreateRun(ctx, r, ch)
	if err != nil {
		return false, fmt.Errorf("expiry: queue the destroy of stack %s: %w", c.Stack.Key(), err)
	}
	if created {
		s.Log.Info("ephemeral stack expired: destroy queued", zap.String("stack", c.Stack.Key()), zap.String("run_id", r.ID), zap.String("created_by", c.ID))
	}
	return created, nil
}

// entities are the stack's own entities, of its runs since c made it.
func (s *Scheduler) entities(ctx context.Context, c *run.Run) ([]run.EntityRef, error) {
	refs, err := stackentity.Finder{Store: s.Store, Catalog: s.Catalog}.Owned(ctx, c.Stack, c.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("expiry: %w", err)
	}
	return refs, nil
}
