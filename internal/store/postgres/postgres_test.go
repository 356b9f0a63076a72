package postgres_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/postgres"
	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
	"github.com/paved-idp/paved/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open opens a store on dsn, closed at the test's end.
func open(t testing.TB, dsn string) *postgres.Store { return pgtest.Open(t, dsn) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend { return open(t, pgtest.DSN(t)) })
}

func TestReopenKeepsRunsAndMigratesOnce(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	r := storetest.NewRun("p1", "svc", time.Now().UTC())
	if _, _, err := s.CreateRun(ctx, r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dsn)
	got, err := s.Run(ctx, r.ID)
	if err != nil || got.Request.Inputs["bucketName"] != "b1" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if n, _ := s.Pending(ctx, store.KindDispatch); n != 1 {
		t.Fatalf("pending dispatch after reopen = %d", n)
	}
}

// Replicas starting together on an empty database migrate it once, one
// after the other, under the advisory lock.
func TestReplicasMigrateTogether(t *testing.T) {
	dsn := pgtest.DSN(t)
	const replicas = 6
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, replicas)
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(context.Background(), dsn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	ctx := context.Background()
	r := storetest.NewRun("m", "svc", time.Now().UTC())
	if _, _, err := stores[0].CreateRun(ctx, r, store.Change{}); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[replicas-1].Run(ctx, r.ID); err != nil {
		t.Fatalf("another replica does not see the run: %v", err)
	}
}

func TestBadDSNNeverRepeated(t *testing.T) {
	secret := "hunter2-" + run.NewID()
	for _, dsn := range []string{
		"postgres://paved:" + secret + "@[::1:5432/paved",    // not a URL
		"host=127.0.0.1 password=" + secret + " port=banana", // bad port
	} {
		_, err := postgres.Open(context.Background(), dsn)
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("Open(bad dsn) = %v; want an error that does not repeat the password", err)
		}
	}
	// A server that refuses the password: the error names neither it nor the DSN.
	good := pgtest.DSN(t)
	wrong := strings.Replace(good, "password=", "password="+secret, 1)
	_, err := postgres.Open(context.Background(), wrong)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("Open(wrong password) = %v", err)
	}
}

// Log lines keep every byte (NUL, bytes that are not UTF-8), as SQLite's
// store does; inputs with \u0000 are stored; event text is made storable.
func TestBytesSQLiteKeepsArePostgresSafe(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.DSN(t))
	r := storetest.NewRun("bytes", "svc", time.Now().UTC())
	r.State = run.Running
	r.Request.Inputs["odd"] = "a\x00b"
	if _, _, err := s.CreateRun(ctx, r, *(&store.Change{}).Add("got \x00 and \xff")); err != nil {
		t.Fatal(err)
	}
	lines := []string{"nul \x00 here", "latin-1 \xe9t\xe9", ""}
	if err := s.AppendLogs(ctx, r.ID, lines, 10); err != nil {
		t.Fatal(err)
	}
	got, err := s.Logs(ctx, r.ID, 0, 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("logs = %+v, %v", got, err)
	}
	for i, l := range got {
		if l.Line != lines[i] {
			t.Fatalf("line %d = %q, want %q", i, l.Line, lines[i])
		}
	}
	back, err := s.Run(ctx, r.ID)
	if err != nil || back.Request.Inputs["odd"] != "a\x00b" {
		t.Fatalf("run = %+v, %v", back, err)
	}
	// Filters on the stack do not read the json, which PostgreSQL cannot
	// turn into text with a \u0000 in it.
	if got, err := s.ListRuns(ctx, store.Query{Tenant: r.Stack.Tenant, Environment: r.Stack.Environment, States: []run.State{run.Running}}); err != nil || len(got) != 1 {
		t.Fatalf("runs of %s/%s = %v, %v", r.Stack.Tenant, r.Stack.Environment, len(got), err)
	}
	evs, err := s.Events(ctx, r.ID)
	if err != nil || len(evs) != 1 || evs[0].Message != "got \uFFFD and \uFFFD" {
		t.Fatalf("events = %+v, %v", evs, err)
	}
}

func TestErrorsMatchSQLite(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.DSN(t))
	if _, err := s.Run(ctx, "r_missing"); !errors.Is(err, run.ErrNotFound) || !strings.Contains(err.Error(), "get run r_missing") {
		t.Fatalf("missing run: %v", err)
	}
	if _, err := s.RunByPipeline(ctx, 42); !errors.Is(err, run.ErrNotFound) {
		t.Fatalf("missing pipeline: %v", err)
	}
	if err := s.Complete(ctx, 12345); err != nil {
		t.Fatalf("completing a task that does not exist: %v", err)
	}
	if err := s.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if tasks, err := s.Claim(ctx, store.KindReport, time.Minute, 0); err != nil || len(tasks) != 0 {
		t.Fatalf("claim of none: %v %v", tasks, err)
	}
}
