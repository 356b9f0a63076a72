package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/storetest"
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
