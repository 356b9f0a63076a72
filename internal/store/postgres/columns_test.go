package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
	"github.com/paved-idp/paved/internal/store/storetest"
)

// A writer that leaves tenant and environment empty (a replica older than
// migration 005) has them filled from the run's own stack, not from a
// request input that looks like one, nor from a \u0000 the json holds.
func TestStackColumnsFilledFromTheRunsStack(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := open(t, dsn)
	r := storetest.NewRun("cols", "svc", time.Now().UTC())
	r.Request.Inputs["odd"] = "a\x00b"
	r.Request.Inputs["decoy"] = map[string]any{"stack": map[string]any{"tenant": "evil"}}
	if _, _, err := s.CreateRun(ctx, r, store.Change{}); err != nil {
		t.Fatal(err)
	}
	// The old replica is a connection of the test's own.
	old, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(ctx)
	if _, err := old.Exec(ctx, `UPDATE runs SET tenant = '', environment = '' WHERE id = $1`, r.ID); err != nil {
		t.Fatal(err)
	}
	var tenant, env string
	if err := old.QueryRow(ctx, `SELECT tenant, environment FROM runs WHERE id = $1`, r.ID).Scan(&tenant, &env); err != nil {
		t.Fatal(err)
	}
	if tenant != r.Stack.Tenant || env != r.Stack.Environment {
		t.Fatalf("tenant %q, environment %q; want %q, %q", tenant, env, r.Stack.Tenant, r.Stack.Environment)
	}
}
