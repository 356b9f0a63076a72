package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/storetest"
	"github.com/paved-idp/paved/internal/waitfor"
)

func open(t *testing.T) storetest.Backend {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

func TestReopenKeepsRunsAndMigratesOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "paved.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r := storetest.NewRun("p1", "svc", r0())
	if _, _, err := s.CreateRun(ctx, r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.Run(ctx, r.ID)
	if err != nil || got.Request.Inputs["bucketName"] != "b1" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if n, _ := s.Pending(ctx, store.KindDispatch); n != 1 {
		t.Fatalf("pending dispatch after reopen = %d", n)
	}
}

func r0() (t time.Time) { return time.Now().UTC() }

// A database made before stack_lines (migration 004) gets its lines counted
// from the runs already stored.
func TestStackLinesBackfilledFromExistingRuns(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "paved.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for i, svc := range []string{"a", "a", "a", "b"} {
		r := storetest.NewRun(fmt.Sprintf("p%d", i), svc, r0())
		if _, _, err := s.CreateRun(ctx, r, store.Change{}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Take the database back to before migration 004.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TRIGGER runs_line_insert`, `DROP TRIGGER runs_line_leave`, `DROP TRIGGER runs_line_enter`,
		`DROP TRIGGER runs_line_delete`, `DROP TABLE stack_lines`, `DELETE FROM schema_migrations WHERE version LIKE '%004_stack_lines.sql'`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	for svc, want := range map[string]int{"a": 3, "b": 1} {
		key := run.Stack{Tenant: "acme", Environment: "dev", Service: svc}.Key()
		if n, err := s.StackDepth(ctx, key); err != nil || n != want {
			t.Fatalf("depth of %s after migrating: %d, %v; want %d", key, n, err, want)
		}
	}
}

// The WAL is copied into the database file by the store's checkpointer,
// not by the commit that crosses SQLite's 1,000-page default: a few dozen
// small commits, far below that, already reach the file.
func TestCheckpointsOffTheWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "paved.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	size := func() int64 {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	before := size()
	for i := range 200 {
		r := storetest.NewRun(fmt.Sprintf("c%d", i), fmt.Sprintf("svc%d", i), r0())
		if _, _, err := s.CreateRun(ctx, r, store.Change{Events: []string{"received"}, Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
			t.Fatal(err)
		}
	}
	waitfor.Until(t, "the database file to grow by a checkpoint", func() bool { return size() > before })
}

// A path holding the characters a file: URI gives meaning to (%, ?, #) opens
// exactly that file: two such paths that differ only after a "#" are two
// databases.
func TestPathWithURICharacters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, name := range []string{"a 100%_5xx#01", "a 100%_5xx#02", "what?x=1"} {
		path := filepath.Join(dir, name, "paved.db")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("open %q: %v", path, err)
		}
		r := storetest.NewRun("p1", "svc", r0())
		if _, created, err := s.CreateRun(ctx, r, store.Change{}); err != nil || !created {
			t.Fatalf("%q: created %v, %v; want a new run in a new database", path, created, err)
		}
		s.Close()
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("the database is not at %q: %v", path, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("%d entries in %s, want the 3 directories made (a stray file means a path was misread)", len(entries), dir)
	}
}
