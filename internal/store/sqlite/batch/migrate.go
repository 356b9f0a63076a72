package batch

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
)

// Migrate applies the SQL files of fsys matching pattern that
// schema_migrations does not list yet, in name order, and records each
// (applied_at from now, in the caller's unit).
func (w *Writer) Migrate(ctx context.Context, fsys fs.FS, pattern string, now func() int64) error {
	names, err := fs.Glob(fsys, pattern)
	if err != nil {
		return fmt.Errorf("list the migrations: %w", err)
	}
	sort.Strings(names)
	// Every pending migration in one transaction: a fresh database is
	// created with one commit, one fsync of the WAL, instead of one for the
	// bookkeeping table and one per migration (most of a fresh start's
	// store time); a migration that fails leaves none of them applied.
	return w.Tx(ctx, func(tx Tx) error {
		// The bookkeeping table is made in the same transaction, so that a
		// fresh database costs that one commit. Unprepared: it runs once.
		if err := tx.ExecUnprepared(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied, err := appliedMigrations(ctx, tx)
		if err != nil {
			return err
		}
		for _, name := range names {
			if applied[name] {
				continue
			}
			body, err := fs.ReadFile(fsys, name)
			if err != nil {
				return fmt.Errorf("read migration %s: %w", name, err)
			}
			// Several statements: run unprepared (a prepared statement is one).
			if err := tx.ExecUnprepared(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, name, now()); err != nil {
				return fmt.Errorf("%s: record: %w", name, err)
			}
		}
		return nil
	})
}

// appliedMigrations are the versions schema_migrations lists.
func appliedMigrations(ctx context.Context, tx Tx) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[string]bool{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}
