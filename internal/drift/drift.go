// Package drift schedules drift checks: runs of paved's own (portal
// run.PortalPaved, operation run.Drift) whose pipeline refreshes the stack
// in preview (`pulumi refresh --preview-only`) and applies nothing. They go
// through the stack's queue like any run, so a check never overlaps a
// change; what they find is written onto the stack's entities.
package drift

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/worker"
)

// Store is what the scheduler needs of the run store.
type Store interface {
	ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error)
	CreateRun(ctx context.Context, r *run.Run, ch store.Change) (*run.Run, bool, error)
}

// Catalog finds a run's action, for the entity it writes.
type Catalog interface {
	Get(id string) (*catalog.Action, bool)
}

// Scheduler starts a drift check of every stack whose last change
// succeeded, once every Interval.
type Scheduler struct {
	Store        Store
	Catalog      Catalog
	Log          *zap.Logger
	Interval     time.Duration
	Environments []string // checked environments; empty: all
	// Portal keeps the stacks whose runs came from that portal, the one
	// the checks' entity writes go to (Port): an entity another portal
	// made is not Port's to hold. Empty: every stack.
	Portal string
	Now    func() time.Time
	// Notify, when set, is called after checks were queued.
	Notify func()
}

// scanRuns bounds the runs one round reads per environment (newest
// first): the stacks changed most recently are checked; an older stack
// left out of them is told in the log.
const scanRuns = 5000

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Run checks for due stacks until ctx ends: often enough that a stack is
// checked within a quarter of Interval of its time.
func (s *Scheduler) Run(ctx context.Context) {
	if s.Interval <= 0 {
		return
	}
	every := min(max(s.Interval/4, 100*time.Millisecond), time.Minute)
	worker.Every(ctx, every, s.Log, "schedule drift checks", func(ctx context.Context) error {
		_, err := s.Check(ctx)
		return err
	})
}

// Check queues a drift check for each stack that has none in the current
// interval, and says how many it queued. The check's idempotency key is
// the stack and the interval's start, so replicas checking together, or a
// restart, never queue a stack twice in one interval.
func (s *Scheduler) Check(ctx context.Context) (int, error) {
	now := s.now()
	slot := now.Truncate(s.Interval)
	envs := s.Environments
	if len(envs) == 0 {
		envs = []string{""}
	}
	queued := 0
	for _, env := range envs {
		// paved's own runs left out: drift checks would fill the window. An
		// expiry's destroy, paved's too, is looked for per stack (gone).
		runs, err := s.Store.ListRuns(ctx, store.Query{States: []run.State{run.Succeeded}, Environment: env, NotPortal: run.PortalPaved, Limit: scanRuns})
		if err != nil {
			return queued, fmt.Errorf("drift: list the succeeded runs of %q: %w", env, err)
		}
		// A stack with a run in flight is checked next time: a check queued
		// behind a change (a delete, say) would report on what it left.
		busy, err := s.Store.ListRuns(ctx, store.Query{States: []run.State{run.AwaitingApproval, run.Queued, run.Dispatching, run.Running}, Environment: env, Limit: scanRuns})
		if err != nil {
			return queued, fmt.Errorf("drift: list the runs in flight in %q: %w", env, err)
		}
		inFlight := map[string]bool{}
		for _, r := range busy {
			inFlight[r.Stack.Key()] = true
		}
		for _, st := range stacks(runs, s.Catalog, s.Portal) {
			if inFlight[st.key] {
				continue
			}
			if gone, err := s.destroyed(ctx, st.key); err != nil {
				return queued, err
			} else if gone {
				continue
			}
			r, ch := check(st, slot, now)
			if _, created, err := s.Store.CreateRun(ctx, r, ch); err != nil {
				return queued, fmt.Errorf("drift: queue the check of %s: %w", st.key, err)
			} else if created {
				queued++
			}
		}
	}
	if queued > 0 && s.Notify != nil {
		s.Notify()
	}
	return queued, nil
}

// destroyed says whether an expiry destroyed the stack (a DELETE of
// paved's own, its newest succeeded run: no check is queued after it).
func (s *Scheduler) destroyed(ctx context.Context, key string) (bool, error) {
	last, err := s.Store.ListRuns(ctx, store.Query{Stack: key, States: []run.State{run.Succeeded}, Limit: 1})
	if err != nil {
		return false, fmt.Errorf("drift: read the last run of stack %s: %w", key, err)
	}
	return len(last) == 1 && last[0].Request.Portal == run.PortalPaved && last[0].Operation == run.Delete, nil
}

// stack is what a drift check of one stack needs: its latest change (the
// action, inputs and target it repeats in preview) and the entities its
// runs wrote.
type stack struct {
	key      string
	latest   *run.Run
	entities []run.EntityRef
}

// stacks groups succeeded runs (newest first) by stack; a stack whose
// latest change deleted it has nothing to check.
func stacks(runs []*run.Run, cat Catalog, portal string) []stack {
	byKey := map[string]*stack{}
	var order []string
	for _, r := range runs {
		if r.Operation == run.Drift || r.DryRun || (portal != "" && r.Request.Portal != portal) {
			continue
		}
		key := r.Stack.Key()
		st, ok := byKey[key]
		if !ok {
			st = &stack{key: key, latest: r}
			byKey[key] = st
			order = append(order, key)
		}
		if a, ok := cat.Get(r.Request.Action); ok {
			if e := a.EntityFor(r); e != nil {
				ref := run.EntityRef{Blueprint: e.Blueprint, Identifier: e.Identifier}
				if !slices.Contains(st.entities, ref) {
					st.entities = append(st.entities, ref)
				}
			}
		}
	}
	var out []stack
	for _, key := range order {
		if st := byKey[key]; st.latest.Operation != run.Delete {
			out = append(out, *st)
		}
	}
	return out
}

// check is the drift run of a stack for the interval starting at slot.
func check(st stack, slot, now time.Time) (*run.Run, store.Change) {
	src := st.latest
	r := &run.Run{
		ID: run.NewID(),
		Request: run.Request{Portal: run.PortalPaved, PortalRunID: fmt.Sprintf("drift:%s:%d", st.key, slot.Unix()),
			Action: src.Request.Action, User: run.User{Email: "paved", Name: "paved drift check"},
			Entity: src.Request.Entity, Inputs: src.Request.Inputs},
		Operation: run.Drift, Blueprint: src.Blueprint, Stack: src.Stack, Team: src.Team,
		State: run.Queued, Project: src.Project, Ref: src.Ref, Timeout: src.Timeout,
		ReportsOn: st.entities, CreatedAt: now, UpdatedAt: now,
	}
	var ch store.Change
	ch.Add(fmt.Sprintf("drift check of stack %s (after run %s)", st.key, src.ID))
	ch.Tasks = append(ch.Tasks, store.NewTask{Kind: store.KindDispatch, Payload: struct{}{}})
	return r, ch
}
