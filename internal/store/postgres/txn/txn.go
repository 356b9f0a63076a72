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
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, pool, fn)
		if err == nil || attempt == 3 || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

// Batch runs b's statements in one round trip as one transaction: the
// implicit transaction of a pipeline, which one failing statement rolls
// back whole, the statements after it not run. An abort for a deadlock or
// a serialization failure is run again, as Run does. It returns each
// statement's command tag, in order.
func Batch(ctx context.Context, pool *pgxpool.Pool, b *pgx.Batch) ([]pgconn.CommandTag, error) {
	for attempt := 1; ; attempt++ {
		tags, err := sendBatch(ctx, pool, b)
		if err == nil || attempt == 3 || !retryable(err) || ctx.Err() != nil {
			return tags, err
		}
	}
}

func sendBatch(ctx context.Context, pool *pgxpool.Pool, b *pgx.Batch) ([]pgconn.CommandTag, error) {
	br := pool.SendBatch(ctx, b)
	tags := make([]pgconn.CommandTag, b.Len())
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
	br := tx.SendBatch(ctx, b)
	for range b.Len() {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
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
