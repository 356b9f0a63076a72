package sqlite

import (
	"context"
	"time"

	"github.com/paved-idp/paved/internal/store"
)

// The outbox's side of the store is outbox.Queue's; these only pass on.

// Claim leases up to limit due tasks of a kind for lease (outbox.Queue.Claim).
func (s *Store) Claim(ctx context.Context, kind string, lease time.Duration, limit int) ([]store.Task, error) {
	return s.outbox.Claim(ctx, kind, lease, limit)
}

// Complete marks tasks done and makes the next of each (run, kind) the head.
func (s *Store) Complete(ctx context.Context, ids ...int64) error {
	return s.outbox.Complete(ctx, ids...)
}

// Retry makes a task claimable again at the given time and keeps the error.
func (s *Store) Retry(ctx context.Context, id int64, at time.Time, lastErr string) error {
	return s.outbox.Retry(ctx, id, at, lastErr)
}

// Release makes claimed tasks claimable at once.
func (s *Store) Release(ctx context.Context, ids ...int64) error {
	return s.outbox.Release(ctx, ids...)
}

// Pending counts open tasks of a kind.
func (s *Store) Pending(ctx context.Context, kind string) (int, error) {
	return s.outbox.Pending(ctx, kind)
}

// Backlog tells an outbox kind's depth and its oldest due head.
func (s *Store) Backlog(ctx context.Context, kind string) (store.Backlog, error) {
	return s.outbox.Backlog(ctx, kind)
}
