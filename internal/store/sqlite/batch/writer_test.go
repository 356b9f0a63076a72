package batch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/waitfor"
	_ "modernc.org/sqlite"
)

func openWriter(t *testing.T) (*Writer, *sql.DB) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "w.db")+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	w := Start(db, time.Second)
	t.Cleanup(func() { w.Stop(); db.Close() })
	return w, db
}

func keys(t *testing.T, db *sql.DB) map[string]bool {
	t.Helper()
	rows, err := db.Query(`SELECT k FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out[k] = true
	}
	return out
}

// A write that fails inside a batch rolls back only itself: the writes
// around it, committed in the same transaction, stay, and each caller gets
// its own outcome.
func TestFailingWriteRollsBackOnlyItself(t *testing.T) {
	w, db := openWriter(t)
	ctx := context.Background()
	release := make(chan struct{})
	first := make(chan error, 1)
	started := make(chan struct{})
	// The first write holds the writer, so that the next ones queue up and
	// are taken as one batch.
	go func() {
		first <- w.Tx(ctx, func(tx Tx) error {
			select {
			case <-started:
			default:
				close(started) // the first try; a retry must not close it again
			}
			<-release
			_, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES ('first')`)
			return err
		})
	}()
	<-started
	boom := errors.New("boom")
	const n = 6
	results := make([]chan error, n)
	for i := range n {
		results[i] = make(chan error, 1)
		go func() {
			results[i] <- w.Tx(ctx, func(tx Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES (?)`, fmt.Sprint("k", i)); err != nil {
					return err
				}
				if i == 3 {
					return boom // after its own insert, which must be undone
				}
				return nil
			})
		}()
	}
	waitfor.Until(t, "the writes queued behind the first", func() bool { return len(w.ops) == n })
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i := range n {
		err := <-results[i]
		if i == 3 && !errors.Is(err, boom) {
			t.Errorf("write %d: got %v, want its own error", i, err)
		}
		if i != 3 && err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	got := keys(t, db)
	for i := range n {
		if want := i != 3; got[fmt.Sprint("k", i)] != want {
			t.Errorf("row k%d stored: %v, want %v (all: %v)", i, !want, want, got)
		}
	}
	if !got["first"] || len(got) != n {
		t.Errorf("rows: %v", got)
	}
}

// A lone write that fails leaves nothing behind.
func TestLoneFailingWriteLeavesNothing(t *testing.T) {
	w, db := openWriter(t)
	ctx := context.Background()
	err := w.Tx(ctx, func(tx Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES ('x')`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES ('x')`) // a unique violation
		return err
	})
	if err == nil {
		t.Fatal("a duplicate key was accepted")
	}
	if got := keys(t, db); len(got) != 0 {
		t.Fatalf("rows after a failed write: %v", got)
	}
	if err := w.Exec(ctx, `INSERT INTO t (k) VALUES ('y')`); err != nil {
		t.Fatalf("the writer after a failed write: %v", err)
	}
}
