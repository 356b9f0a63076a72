// Package sqlitetest gives tests a fresh SQLite run store and a way to read
// what the outbox would send a portal.
package sqlitetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
)

// Open returns an empty store in the test's temp dir, closed at cleanup.
func Open(t testing.TB) *sqlite.Store {
	st, _ := OpenWithReader(t)
	return st
}

// OpenWithReader is Open, with a read-only handle on the store's file for
// tests that look at its rows; both are closed at cleanup.
func OpenWithReader(t testing.TB) (*sqlite.Store, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "paved.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return st, db
}

// Reports claims and completes every open report task, in delivery order,
// and returns their reports.
func Reports(t testing.TB, st *sqlite.Store) []run.Report {
	t.Helper()
	var out []run.Report
	for {
		tasks, err := st.Claim(context.Background(), store.KindReport, time.Minute, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) == 0 {
			return out
		}
		var rep run.Report
		if err := json.Unmarshal(tasks[0].Payload, &rep); err != nil {
			t.Fatal(err)
		}
		out = append(out, rep)
		if err := st.Complete(context.Background(), tasks[0].ID); err != nil {
			t.Fatal(err)
		}
	}
}

// Clock is a settable clock shared by a store and the workers under test.
type Clock struct{ T time.Time }

// Now reads the clock.
func (c *Clock) Now() time.Time { return c.T }

// Add moves the clock on.
func (c *Clock) Add(d time.Duration) { c.T = c.T.Add(d) }

// WithClock sets st's clock to a new Clock at the present and returns it.
func WithClock(st *sqlite.Store) *Clock {
	c := &Clock{T: time.Now().UTC()}
	st.SetClock(c.Now)
	return c
}
