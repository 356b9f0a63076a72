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
	if !now.Before(c.ExpiresAt) {
		if err := s.destroyFailed(ctx, c); err != nil {
			return nil, err
		}
	}
	if teams := req.User.Teams; len(teams) == 0 && s.Teams != nil {
		if req.User.Teams, err = s.Teams.UserTeams(ctx, req.User.Email); err != nil {
			return nil, fmt.Errorf("%s: look up the teams of %s: %w", ExtendAction, req.User.Email, err)
		}
	}
	in := policy.Input{Action: ExtendAction, Operation: string(run.Day2), Inputs: req.Inputs,
		Tenant: tenant, Environment: env, Service: stack.Service, Team: c.Team, TTLSeconds: int64(ttl / time.Second)}
	in.User.Email, in.User.Teams = req.User.Email, req.User.Teams
	in.Entity.Identifier, in.Entity.Blueprint, in.Entity.Team, in.Entity.Properties = req.Entity.Identifier, req.Entity.Blueprint, req.Entity.Team, req.Entity.Properties
	d, err := s.Policy.Decide(ctx, in)
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
	until := now.Add(ttl)
	return s.Store.Update(ctx, c.ID, func(r *run.Run) (store.Change, error) {
		if r.ExpiresAt.IsZero() {
			return store.Change{}, fmt.Errorf("%s: %w %s: its expiry was cleared meanwhile", ExtendAction, ErrNotEphemeral, stack.Key())
		}
		was := r.ExpiresAt
		r.ExpiresAt, r.ExpiryWarnedAt = until, time.Time{}
		var ch store.Change
		ch.Add(fmt.Sprintf("TTL extended by %s: stack %s now expires at %s (ttl %s from now; it was %s)",
			req.User.Email, stack.Key(), until.Format(time.RFC3339), run.FormatTTL(ttl), was.Format(time.RFC3339)))
		for _, ref := range refs {
			ch.Report(run.Report{Entity: catalog.ExpiryFor(ref, until, catalog.StatusReady), Untied: true})
		}
		return ch, nil
	})
}

// destroyFailed refuses to extend an expired stack c unless the destroy of
// its expiry ended without destroying it (failed or canceled): a destroy
// not yet dispatched could still begin under a new expiry.
func (s *Scheduler) destroyFailed(ctx context.Context, c *run.Run) error {
	key := fmt.Sprintf("expire:%s:%d", c.ID, c.ExpiresAt.Unix())
	runs, err := s.Store.ListRuns(ctx, store.Query{Stack: c.Stack.Key(), Limit: stackRuns})
	if err != nil {
		return fmt.Errorf("%s: list the runs of stack %s: %w", ExtendAction, c.Stack.Key(), err)
	}
	for _, r := range runs {
		if r.Request.Portal == run.PortalPaved && r.Request.PortalRunID == key {
			if r.State == run.Failed || r.State == run.Canceled {
				return nil
			}
			return fmt.Errorf("%s: %w at %s; its destroy is run %s (%s)", ExtendAction, ErrExpired, c.ExpiresAt.Format(time.RFC3339), r.ID, r.State)
		}
	}
	return fmt.Errorf("%s: %w at %s; its destroy is about to begin", ExtendAction, ErrExpired, c.ExpiresAt.Format(time.RFC3339))
}
