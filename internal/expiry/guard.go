package expiry

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// destroyKey is the idempotency key of the destroy of c's expiry.
func destroyKey(c *run.Run) string { return fmt.Sprintf("expire:%s:%d", c.ID, c.ExpiresAt.Unix()) }

// Obsolete says why an expiry's destroy, about to be dispatched, must not
// run: the expiry it was decided for moved or was cleared, or the stack was
// created or deleted again by a run made before the destroy (which has run
// by now: the destroy holds the stack). The scheduler decides from what it
// read a moment before; a CREATE taken in meanwhile, or made while paved
// was down between the decision and the destroy's record, is caught here.
// Any other run: "".
func (s *Scheduler) Obsolete(ctx context.Context, r *run.Run) (string, error) {
	rest, ok := strings.CutPrefix(r.Request.PortalRunID, "expire:")
	if r.Request.Portal != run.PortalPaved || r.Operation != run.Delete || !ok {
		return "", nil
	}
	id, unix, ok := strings.Cut(rest, ":")
	at, err := strconv.ParseInt(unix, 10, 64)
	if !ok || err != nil {
		return "", fmt.Errorf("expiry: the destroy %s has a key %q that names no expiry", r.ID, r.Request.PortalRunID)
	}
	c, err := s.Store.Run(ctx, id)
	if err != nil {
		return "", fmt.Errorf("expiry: read the run %s whose expiry run %s destroys: %w", id, r.ID, err)
	}
	switch {
	case c.ExpiresAt.IsZero():
		return fmt.Sprintf("the expiry of stack %s was cleared since its destroy was decided", c.Stack.Key()), nil
	case c.ExpiresAt.Unix() != at:
		return fmt.Sprintf("stack %s was extended (it now expires at %s)", c.Stack.Key(), c.ExpiresAt.Format(time.RFC3339)), nil
	}
	runs, err := s.Store.ListRuns(ctx, store.Query{Stack: c.Stack.Key(), NotPortal: run.PortalPaved, Limit: stackRuns})
	if err != nil {
		return "", fmt.Errorf("expiry: list the runs of stack %s: %w", c.Stack.Key(), err)
	}
	for _, o := range runs {
		if o.ID == c.ID || o.DryRun || !o.CreatedAt.After(c.CreatedAt) || !o.CreatedAt.Before(r.CreatedAt) ||
			(o.Operation != run.Create && o.Operation != run.Delete) || o.State == run.Rejected {
			continue
		}
		return fmt.Sprintf("stack %s was %s again by run %s after its expiry was set", c.Stack.Key(),
			map[run.Operation]string{run.Create: "created", run.Delete: "deleted"}[o.Operation], o.ID), nil
	}
	return "", nil
}
