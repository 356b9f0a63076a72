package batch

import (
	"context"
	"database/sql"
	"strings"
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
//
// Its statements run without their context's cancellation (values are
// kept): a write is only started once its turn has come and its context is
// still live (see Writer.try), and from then on it is waited for, so that a
// caller never reports a failure for a write that went through. Cancelling
// one statement half-way would instead fail the whole batch's transaction
// and make every other write in it run again. It also spares the driver a
// goroutine and a progress handler per statement, which it sets up for any
// context that can be cancelled.
type Tx struct {
	tx *sql.Tx
	c  *stmts
}

func (t Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = context.WithoutCancel(ctx)
	if st := t.c.get(ctx, query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = context.WithoutCancel(ctx)
	if st := t.c.get(ctx, query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (t Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = context.WithoutCancel(ctx)
	if st := t.c.get(ctx, query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// InsertRows runs prefix (an INSERT up to its VALUES) with a row of
// placeholders for each of rows, up to 32 rows a statement so that the
// statement cache holds few shapes and no statement nears SQLite's bound on
// parameters: statements, not rows, are what the single writer pays for.
func (t Tx) InsertRows(ctx context.Context, prefix string, rows [][]any) error {
	const perStmt = 32
	for len(rows) > 0 {
		n := min(len(rows), perStmt)
		var b strings.Builder
		b.WriteString(prefix)
		args := make([]any, 0, n*len(rows[0]))
		for i, row := range rows[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			b.WriteString(strings.TrimSuffix(strings.Repeat("?,", len(row)), ","))
			b.WriteByte(')')
			args = append(args, row...)
		}
		if _, err := t.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// ExecUnprepared runs SQL text that may hold several statements (a
// prepared statement is one), such as a migration.
func (t Tx) ExecUnprepared(ctx context.Context, query string) error {
	ctx = context.WithoutCancel(ctx)
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
