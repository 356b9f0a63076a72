package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/storetest"
)

// Intake must never fail for contention: with SQLite's own busy wait cut to
// a millisecond, concurrent submissions and workers' claims all succeed
// because writers queue for their turn instead of racing for the lock.
func TestConcurrentWritersNeverFailForContention(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"), sqlite.WithBusyTimeout(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	var workers sync.WaitGroup
	for range 2 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tasks, err := s.Claim(ctx, store.KindDispatch, time.Minute, 10)
				if err != nil {
					t.Error(err)
					return
				}
				for _, task := range tasks {
					if err := s.Complete(ctx, task.ID); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				r := storetest.NewRun(fmt.Sprintf("c-%d-%d", g, i), fmt.Sprintf("svc-%d-%d", g, i), time.Now().UTC())
				if _, _, err := s.CreateRun(ctx, r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
					t.Errorf("submission %d/%d failed: %v", g, i, err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	workers.Wait()
}

// A write lock held by another process (another connection here) past
// busy_timeout delays a write; it does not fail it.
func TestWriteWaitsOutAnotherProcessesLock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "paved.db")
	s, err := sqlite.Open(ctx, path, sqlite.WithBusyTimeout(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		r := storetest.NewRun("held", "svc", time.Now().UTC())
		_, _, err := s.CreateRun(ctx, r, store.Change{})
		done <- err
	}()
	// Hold the lock for many busy timeouts (a stall, not a synchronisation:
	// the write must succeed however long the hold within busyWait).
	hold := time.NewTimer(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("write finished while another process held the lock: %v", err)
	case <-hold.C:
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write failed instead of waiting: %v", err)
	}
}

// Readiness must prove the store can write: a database that still answers
// reads but cannot write (read-only file) fails Writable.
func TestWritableFailsOnReadOnlyDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "paved.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Writable(ctx); err != nil {
		t.Fatalf("fresh store not writable: %v", err)
	}
	// Root ignores file modes, so make the files immutable instead.
	files := []string{path, path + "-wal"} // -shm is shared memory (mmap), not the data
	if out, err := exec.Command("chattr", append([]string{"+i"}, files...)...).CombinedOutput(); err != nil {
		if os.Geteuid() == 0 {
			t.Skipf("cannot make the database read-only here (chattr: %v: %s)", err, out)
		}
		for _, f := range files {
			if err := os.Chmod(f, 0o444); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		t.Cleanup(func() { _ = exec.Command("chattr", append([]string{"-i"}, files...)...).Run() })
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("reads should still work: %v", err)
	}
	err = s.Writable(ctx)
	if err == nil {
		t.Fatal("Writable passed on a read-only database")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Writable hung: %v", err)
	}
}
