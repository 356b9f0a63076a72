package batch

import (
	"context"
	"database/sql"
	"fmt"
)

// checkpointEvery is how many commits pass between checkpoints.
const checkpointEvery = 32

// backstopPages is the writer connection's wal_autocheckpoint: if the
// checkpointer falls behind, the writer checkpoints itself past this many
// WAL pages (about 32 MiB), so the WAL stays bounded.
const backstopPages = 8000

// checkpoints copies the WAL into the database file off the writer's path.
// With SQLite's default the commit that crosses 1,000 WAL pages does it,
// writing and fsyncing megabytes while every queued write waits: a latency
// spike for the requests behind it. PASSIVE never waits for the writer or
// for readers; an error is not fatal (the next pass, or the backstop,
// checkpoints), so it is dropped.
func (w *Writer) checkpoints() {
	defer close(w.cpDone)
	for {
		select {
		case <-w.nudge:
		case <-w.quit:
			return
		}
		_, _ = w.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
	}
}

// committed counts a commit and nudges the checkpointer every
// checkpointEvery commits (without waiting if it is busy).
func (w *Writer) committed() {
	w.commits++
	if w.commits%checkpointEvery != 0 {
		return
	}
	select {
	case w.nudge <- struct{}{}:
	default:
	}
}

// ownConn takes the writer's connection and moves checkpoints off it.
func (w *Writer) ownConn(ctx context.Context) (*sql.Conn, error) {
	c, err := w.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", backstopPages)); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}
