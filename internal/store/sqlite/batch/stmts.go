package batch

import (
	"context"
	"database/sql"
	"sync"
)

// stmts caches prepared statements by their text. SQLite spends about a
// quarter of a small write parsing its SQL; a statement prepared once is
// reused on every connection it has been prepared on (database/sql keeps
// one per connection).
type stmts struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxStmts bounds the cache: statements built with a varying number of
// placeholders are not worth keeping forever.
const maxStmts = 256

func (c *stmts) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	if len(c.m) >= maxStmts {
		return nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // run it unprepared; its error shows there
	}
	c.m[query] = st
	return st
}

func (c *stmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		_ = st.Close()
	}
	c.m = nil
}

// Tx runs statements in a transaction through the cache.
type Tx struct {
	tx *sql.Tx
	c  *stmts
}

func (t Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.c.get(ctx, query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.c.get(ctx, query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (t Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.c.get(ctx, query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// ExecUnprepared runs SQL text that may hold several statements (a
// prepared statement is one), such as a migration.
func (t Tx) ExecUnprepared(ctx context.Context, query string) error {
	_, err := t.tx.ExecContext(ctx, query)
	return err
}

// Reader runs reads outside a transaction through the cache.
type Reader struct{ c *stmts }

func (d Reader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := d.c.get(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.c.db.QueryRowContext(ctx, query, args...)
}

func (d Reader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := d.c.get(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return d.c.db.QueryContext(ctx, query, args...)
}
