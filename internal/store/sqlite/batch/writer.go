// Package batch is the SQLite store's write path: one writer goroutine that
// commits every write queued while the last transaction committed in one
// transaction (group commit), and a cache of prepared
// statements. It knows nothing of runs.
package batch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// maxBatch bounds how many writes share one transaction.
const maxBatch = 128

// writer is the store's only writer: a goroutine that takes the writes
// queued while the last transaction committed and commits them together
// (group commit), a failing one rolling back only itself. SQLite allows one writer
// anyway; queueing here, in arrival order, instead of in SQLite's busy
// handler (which polls, favours no one and gives up after busy_timeout)
// means a request waits its turn behind the workers instead of failing,
// and a burst of writes costs one fsync rather than one each.
type Writer struct {
	db       *sql.DB
	conn     *sql.Conn // the writer's own connection, taken on first use
	stmts    *stmts
	ops      chan *op
	quit     chan struct{}
	done     chan struct{}
	once     sync.Once
	nudge    chan struct{} // wakes the checkpointer
	cpDone   chan struct{}
	commits  int           // by loop only
	busyWait time.Duration // how long a batch retries another process's lock
}

// op is one write: a failing fn rolls back only itself (see try). fn may run again if the batch has to be retried, so it
// must not keep state from an earlier call.
type op struct {
	ctx  context.Context
	fn   func(Tx) error
	done chan error
}

var errClosed = errors.New("sqlite store is closed")

// Start starts the writer for db. A batch that meets another process's
// lock is retried for up to busyWait.
func Start(db *sql.DB, busyWait time.Duration) *Writer {
	w := &Writer{db: db, stmts: &stmts{db: db, m: map[string]*sql.Stmt{}}, ops: make(chan *op, maxBatch), quit: make(chan struct{}), done: make(chan struct{}), busyWait: busyWait,
		nudge: make(chan struct{}, 1), cpDone: make(chan struct{})}
	go w.loop()
	go w.checkpoints()
	return w
}

// Reader reads outside transactions through the writer's statement cache.
func (w *Writer) Reader() Reader { return Reader{w.stmts} }

// Stop stops the writer (writes still queued fail) and closes the cached
// statements.
func (w *Writer) Stop() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
	<-w.cpDone
	if w.conn != nil {
		_ = w.conn.Close()
	}
	w.stmts.close()
}

// Tx runs fn in a write transaction, after the writes queued before it,
// and returns once its outcome is durable (or failed). The wait for the
// turn ends with ctx; a write already taken up is waited for, so that the
// caller never reports a failure for a write that went through.
func (w *Writer) Tx(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wait for the store's write turn: %w", err)
	}
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case w.ops <- o:
	case <-ctx.Done():
		return fmt.Errorf("wait for the store's write turn: %w", ctx.Err())
	case <-w.quit:
		return errClosed
	}
	return <-o.done
}

// Exec runs one write statement as a transaction of its own.
func (w *Writer) Exec(ctx context.Context, query string, args ...any) error {
	return w.Tx(ctx, func(tx Tx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	})
}

func (w *Writer) loop() {
	defer close(w.done)
	for {
		var batch []*op
		select {
		case o := <-w.ops:
			batch = append(batch, o)
		case <-w.quit:
			w.drain()
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case o := <-w.ops:
				batch = append(batch, o)
			default:
				break more
			}
		}
		w.commit(batch)
	}
}

// drain fails the writes still queued at Close.
func (w *Writer) drain() {
	for {
		select {
		case o := <-w.ops:
			o.done <- errClosed
		default:
			return
		}
	}
}

// commit runs a batch in one transaction and tells each write its outcome.
// A batch that meets another process's lock is retried, for up to busyWait.
func (w *Writer) commit(batch []*op) {
	deadline := time.Now().Add(w.busyWait)
	isolate := false
	for attempt := 1; ; attempt++ {
		results, err := w.try(batch, isolate)
		if errors.Is(err, errIsolate) {
			isolate = true
			continue
		}
		if err == nil {
			w.committed()
			for i, o := range batch {
				o.done <- results[i]
			}
			return
		}
		if !isBusy(err) || time.Now().After(deadline) {
			for _, o := range batch {
				o.done <- err
			}
			return
		}
		select {
		case <-time.After(min(time.Duration(attempt)*10*time.Millisecond, 250*time.Millisecond)):
		case <-w.quit:
			for _, o := range batch {
				o.done <- err
			}
			return
		}
	}
}

// errIsolate asks for a batch to be run again, each write in a savepoint.
var errIsolate = errors.New("a write of the batch failed: run it again, each write isolated")

// try runs the batch's writes in one transaction. The error is the
// transaction's own (begin, savepoint, commit); each write's own error is
// in results. Writes rarely fail, so a first try runs them back to back;
// should one fail (with others beside it), the transaction is rolled back
// and try is asked again with isolate, each write in a savepoint, so a
// failing write rolls back only itself. Two statements a write saved in
// the common case, at the price of running a failing batch twice.
func (w *Writer) try(batch []*op, isolate bool) ([]error, error) {
	ctx := context.Background()
	// One connection for every write keeps its page cache and prepared
	// statements warm; in WAL mode a write through another connection
	// would make the next one re-read the pages it changed.
	if w.conn == nil {
		c, err := w.ownConn(ctx)
		if err != nil {
			return nil, err
		}
		w.conn = c
	}
	sqlTx, err := w.conn.BeginTx(ctx, nil)
	if err != nil {
		if !isBusy(err) {
			// A broken connection is replaced on the next try.
			_ = w.conn.Close()
			w.conn = nil
		}
		return nil, err
	}
	tx := Tx{tx: sqlTx, c: w.stmts}
	results := make([]error, len(batch))
	for i, o := range batch {
		if err := o.ctx.Err(); err != nil {
			results[i] = fmt.Errorf("wait for the store's write turn: %w", err)
			continue
		}
		if !isolate {
			if results[i] = o.fn(tx); results[i] != nil {
				_ = sqlTx.Rollback()
				if len(batch) == 1 {
					return results, nil // the only write: nothing else to keep
				}
				return nil, errIsolate
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
			_ = sqlTx.Rollback()
			return nil, err
		}
		results[i] = o.fn(tx)
		if results[i] != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO w"); err != nil {
				_ = sqlTx.Rollback()
				return nil, err
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE w"); err != nil {
			_ = sqlTx.Rollback()
			return nil, err
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return nil, err
	}
	return results, nil
}

// isBusy reports SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
func isBusy(err error) bool {
	var se interface{ Code() int }
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}
