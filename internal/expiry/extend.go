package expiry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/policy"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Policy decides whether a user may give a stack the TTL asked for.
type Policy interface {
	Decide(ctx context.Context, in policy.Input) (policy.Decision, error)
}

// Teams finds a user's portal teams.
type Teams interface {
	UserTeams(ctx context.Context, email string) ([]string, error)
}

// ExtendAction is the portal action that gives an ephemeral stack a new
// TTL, counted from now: a DAY-2 action on the service, with the stack's
// tenant and environment and the TTL as inputs. `paved render port`
// renders it as a synchronous webhook: Port marks its run by paved's answer.
const ExtendAction = "paved-extend-ttl"

// Errors of Extend, matched with errors.Is.
var (
	ErrBadExtension = errors.New(`inputs must be {"tenant": "…", "environment": "…", "ttl": "8h"} on a service entity`)
	ErrNotEphemeral = errors.New("no ephemeral stack")
	ErrExpired      = errors.New("the stack has expired")
	ErrRefused      = errors.New("refused by policy")
)

// Extend gives the stack named by req (its entity, the service; inputs
// tenant and environment) the TTL req.Inputs["ttl"] from now, if the
// policy allows that TTL for this user. The stack's entities show the new
// expiry, and its warning is due again. A stack whose destroy has begun
// cannot be extended; one whose destroy failed can, which tries the
// destroy again at the new expiry.
func (s *Scheduler) Extend(ctx context.Context, req run.Request) (*run.Run, error) {
	tenant, _ := req.Inputs["tenant"].(string)
	env, _ := req.Inputs["environment"].(string)
	ttlText, _ := req.Inputs[run.TTLInput].(string)
	if tenant == "" || env == "" || ttlText == "" || req.Entity.Identifier == "" || !strings.Contains(req.User.Email, "@") {
		return nil, fmt.Errorf("%s: %w", ExtendAction, ErrBadExtension)
	}
	ttl, err := run.ParseTTL(ttlText)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", ExtendAction, ErrBadExtension, err)
	}
	stack := run.Stack{Tenant: tenant, Environment: env, Service: req.Entity.Identifier}
	found, err := s.Store.ListRuns(ctx, store.Query{Stack: stack.Key(), States: []run.State{run.Succeeded}, Expiring: true, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("%s: find stack %s: %w", ExtendAction, stack.Key(), err)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%s: %w %s: it was made without a ttl, or it is gone", ExtendAction, ErrNotEphemeral, stack.Key())
	}
	c, now := found[0], s.now()
	// A stack deleted (or being deleted) is not extended, even before the
	// scheduler has seen it: the write would put an expiry back onto
	// entities marked destroyed.
	st, err := s.since(ctx, c)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", ExtendAction, err)
	case st.ended != nil && st.ended.Operation == run.Delete:
		return nil, fmt.Errorf("%s: %w %s: it was deleted by run %s", ExtendAction, ErrNotEphemeral, stack.Key(), st.ended.ID)
	case st.ended != nil:
		return nil, fmt.Errorf("%s: %w %s: it was created again by run %s, whose ttl (if any) applies", ExtendAction, ErrNotEphemeral, stack.Key(), st.ended.ID)
	case st.deleting:
		return nil, fmt.Errorf("%s: %w: a delete of stack %s is under way", ExtendAction, ErrExpired, stack.Key())
	}
	retry := false // this expiry's destroy failed: a new expiry tries it again
	if c.ExpiryDestroying.Equal(c.ExpiresAt) {
		if retry, err = s.destroyFailed(ctx, c); !retry {
			return nil, err
		}
	}
	until := now.Add(ttl)
	if until.Before(c.ExpiresAt) {
		return nil, fmt.Errorf("%s: %w: stack %s expires at %s, later than %s from now; an extension only lengthens its time (to end it sooner, delete it)",
			ExtendAction, ErrRefused, stack.Key(), c.ExpiresAt.Format(time.RFC3339), run.FormatTTL(ttl))
	}
	if teams := req.User.Teams; len(teams) == 0 && s.Teams != nil {
		if req.User.Teams, err = s.Teams.UserTeams(ctx, req.User.Email); err != nil {
			return nil, fmt.Errorf("%s: look up the teams of %s: %w", ExtendAction, req.User.Email, err)
		}
	}
	// Asked as a DAY-2 run of the stack with the new TTL would be.
	d, err := s.Policy.Decide(ctx, policy.InputOf(&run.Run{Request: req, Operation: run.Day2, Stack: stack, Team: c.Team, TTL: ttl}))
	if err != nil {
		return nil, fmt.Errorf("%s: evaluate policy: %w", ExtendAction, err)
	}
	if !d.Allow {
		return nil, fmt.Errorf("%s: %w: %s", ExtendAction, ErrRefused, strings.Join(d.Reasons, "; "))
	}
	refs, err := s.entities(ctx, c)
	if err != nil {
		return nil, err
	}
	out, err := s.Store.Update(ctx, c.ID, func(r *run.Run) (store.Change, error) {
		// Decided under the row the scheduler decides a destroy under: one
		// of the two comes first, and the other sees it.
		switch {
		case r.ExpiresAt.IsZero():
			return store.Change{}, fmt.Errorf("%w %s: its expiry was cleared meanwhile", ErrNotEphemeral, stack.Key())
		case !r.ExpiresAt.Equal(c.ExpiresAt):
			return store.Change{}, fmt.Errorf("%w: stack %s's expiry changed meanwhile (now %s); ask again", ErrExpired, stack.Key(), r.ExpiresAt.Format(time.RFC3339))
		case r.ExpiryDestroying.Equal(r.ExpiresAt) && (!retry || r.ExpiryDestroyRun != c.ExpiryDestroyRun):
			return store.Change{}, fmt.Errorf("%w at %s; its destroy, run %s, was decided meanwhile", ErrExpired, r.ExpiresAt.Format(time.RFC3339), r.ExpiryDestroyRun)
		}
		was, warned := r.ExpiresAt, !r.ExpiryWarnedAt.IsZero()
		r.ExpiresAt, r.ExpiryWarnedAt, r.ExpiryShown = until, time.Time{}, until
		var ch store.Change
		ch.Add(fmt.Sprintf("TTL extended by %s: stack %s now expires at %s (ttl %s from now; it was %s)",
			req.User.Email, stack.Key(), until.Format(time.RFC3339), run.FormatTTL(ttl), was.Format(time.RFC3339)))
		// Expiring is over; a failed destroy's "failed" stays, it is true.
		status := ""
		if warned && !retry {
			status = catalog.StatusReady
		}
		for _, ref := range refs {
			ch.Report(run.Report{Entity: catalog.ExpiryFor(ref, until, status), Untied: true})
		}
		return ch, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ExtendAction, err)
	}
	return out, nil
}

// destroyFailed says whether c's expiry's destroy ended without
// destroying the stack (failed or canceled), so that a new expiry may try
// it again; otherwise why the stack cannot be extended.
func (s *Scheduler) destroyFailed(ctx context.Context, c *run.Run) (bool, error) {
	d, err := s.Store.Run(ctx, c.ExpiryDestroyRun)
	switch {
	case errors.Is(err, run.ErrNotFound):
		return false, fmt.Errorf("%s: %w at %s; its destroy, run %s, is about to begin", ExtendAction, ErrExpired, c.ExpiresAt.Format(time.RFC3339), c.ExpiryDestroyRun)
	case err != nil:
		return false, fmt.Errorf("%s: read the destroy run %s: %w", ExtendAction, c.ExpiryDestroyRun, err)
	case d.State.Terminal() && d.State != run.Succeeded:
		return true, nil // failed, timed out, canceled (or judged obsolete)
	}
	return false, fmt.Errorf("%s: %w at %s; its destroy is run %s (%s)", ExtendAction, ErrExpired, c.ExpiresAt.Format(time.RFC3339), d.ID, d.State)
}
