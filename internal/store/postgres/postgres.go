// Package postgres is paved's run store for many replicas: PostgreSQL
// through pgx v5 (pgxpool). It behaves as the SQLite store does and passes
// the same conformance suite (storetest); what it adds is that any number of
// paved processes can share one database. Every state change is one
// transaction that writes the run, its events and its outbox tasks together;
// outbox tasks are claimed with FOR UPDATE SKIP LOCKED under a lease, so any
// replica dispatches, tracks and reports any run, and a dead replica's
// claims run out and are taken over. The outbox is a package of its own
// (postgres/outbox), embedded in Store; txn holds the way both write.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paved-idp/paved/internal/store/postgres/outbox"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLock is the advisory lock key under which migrations run, so that
// replicas starting together migrate one after another ("paved" in ASCII).
const migrateLock int64 = 0x7061766564

// Store is a run store in a PostgreSQL database.
type Store struct {
	// The outbox's methods (Claim, Complete, Retry, Release, Pending,
	// Backlog) are the store's.
	*outbox.Outbox
	pool *pgxpool.Pool
	now  func() time.Time
}

// Option tunes Open.
type Option func(*pgxpool.Config)

// WithMaxConns caps the store's connection pool (the DSN's pool_max_conns
// does the same).
func WithMaxConns(n int32) Option { return func(c *pgxpool.Config) { c.MaxConns = n } }

// Open connects to the database dsn names (a PostgreSQL keyword/value or
// URL connection string, pool_* settings included), checks it answers and
// applies the migrations it lacks. Errors never repeat the DSN: it may hold
// a password.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors quote the connection string (password redacted
		// only on a best-effort basis); say what is wrong without it.
		return nil, errors.New("open postgres store: the DSN is not a valid PostgreSQL connection string (keyword/value or postgres:// URL)")
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgxpool's default (max(4, CPUs)) is below what one replica's
		// workers and requests use at once; past the cap they wait.
		cfg.MaxConns = max(cfg.MaxConns, 16)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "paved"
	}
	for _, opt := range opts {
		opt(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s := &Store{pool: pool, now: time.Now}
	s.Outbox = outbox.New(pool, func() time.Time { return s.now() })
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate postgres store: %w", err)
	}
	return s, nil
}

// SetClock replaces the store's clock (time.Now), for tests and simulations
// that move time by hand. Call it before the store is shared. Due times and
// leases are read on this clock, not the database server's: the times
// callers pass (Retry, NotBefore) are on it too.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Close closes the store's connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks the database answers reads.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// Writable proves the store can commit a write: a read-only standby (after
// a failover), a full disk or a lost connection all fail here, where a read
// may still succeed.
func (s *Store) Writable(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO store_health (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, s.now())
	if err != nil {
		return fmt.Errorf("store write check: %w", err)
	}
	return nil
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, each in a transaction of its own, while holding a
// session advisory lock: a replica starting at the same time waits, then
// finds them applied.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// A connection that cannot say unlock may still hold the lock:
		// close it rather than hand it back to the pool.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLock); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimPrefix(name, "migrations/")
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil || n > 0 {
				return err
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, version, s.now())
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", version, err)
		}
	}
	return nil
}
