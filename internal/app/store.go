package app

import (
	"context"
	"fmt"

	"github.com/paved-idp/paved/internal/config"
	"github.com/paved-idp/paved/internal/dispatch"
	"github.com/paved-idp/paved/internal/gate"
	"github.com/paved-idp/paved/internal/intake"
	"github.com/paved-idp/paved/internal/operator"
	"github.com/paved-idp/paved/internal/server"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/postgres"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/track"
)

// Store is everything paved's parts need of the run store: the SQLite
// store (one process) and the PostgreSQL store (many replicas) are both one.
type Store interface {
	intake.Store
	gate.Store
	track.Store
	server.Runs
	store.RunOutbox
	dispatch.StackQueue
	operator.Runs
	storeStats
	Close() error
}

var (
	_ Store = (*sqlite.Store)(nil)
	_ Store = (*postgres.Store)(nil)
)

// openStore opens the store the config names. A postgres DSN is a secret
// reference, resolved here; neither it nor its value is ever logged or put
// in an error.
func openStore(ctx context.Context, cfg config.Store, resolve func(string) (string, error)) (Store, error) {
	switch cfg.Driver {
	case "postgres":
		dsn, err := resolve(cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("store.dsn: %w", err)
		}
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return st, nil
	case "sqlite", "":
		st, err := sqlite.Open(ctx, cfg.Path)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	return nil, fmt.Errorf("store.driver: unknown driver %q", cfg.Driver)
}
