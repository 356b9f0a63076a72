// Package txn is how the PostgreSQL store writes, the same way in the run
// store (postgres) and its outbox (postgres/outbox): transactions that
// PostgreSQL aborted for a deadlock or a serialization failure run again,
// queued statements go in one round trip, and free text is made storable.
package txn

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Run runs fn in a transaction (READ COMMITTED, row locks where a
// statement says so). A transaction PostgreSQL aborted for a deadlock or a
// serialization failure has written nothing and is run again, fn included,
// as SQLite's store retries a busy database.
func Run(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return retry(ctx, func() error { return pgx.BeginFunc(ctx, pool, fn) })
}

// Batch runs b's statements in one round trip as one transaction: the
// implicit transaction of a pipeline, which one failing statement rolls
// back whole, the statements after it not run. An abort for a deadlock or
// a serialization failure is run again, as Run does. It returns each
// statement's command tag, in order.
func Batch(ctx context.Context, pool *pgxpool.Pool, b *pgx.Batch) ([]pgconn.CommandTag, error) {
	var tags []pgconn.CommandTag
	err := retry(ctx, func() error {
		var err error
		tags, err = execAll(pool.SendBatch(ctx, b), b.Len())
		return err
	})
	return tags, err
}

// retry runs fn up to three times while PostgreSQL aborts it for a reason
// that trying again can cure.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == 3 || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

// execAll reads the results of n queued statements, stopping at the first
// error, and closes br.
func execAll(br pgx.BatchResults, n int) ([]pgconn.CommandTag, error) {
	tags := make([]pgconn.CommandTag, n)
	for i := range tags {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return nil, err
		}
		tags[i] = tag
	}
	return tags, br.Close()
}

// retryable reports the errors after which PostgreSQL has rolled the whole
// transaction back and trying again can succeed.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}

// SendBatch runs the queued statements in order and returns the first error.
func SendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	_, err := execAll(tx.SendBatch(ctx, b), b.Len())
	return err
}

// Clean makes free text storable in a text column, which takes neither NUL
// nor bytes that are not UTF-8: events and task errors are messages for
// people, so such bytes become U+FFFD.
func Clean(s string) string {
	if !strings.ContainsRune(s, 0) && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
