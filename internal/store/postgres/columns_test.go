package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/storetest"
)

// A writer that leaves tenant and environment empty (a replica older than
// migration 005) has them filled from the run's own stack, not from a
// request input that looks like one, nor from a \u0000 the json holds.
func TestStackColumnsFilledFromTheRunsStack(t *testing.T) {
	ctx := context.Background()
	s := openInternal(t)
	r := storetest.NewRun("cols", "svc", time.Now().UTC())
	r.Request.Inputs["odd"] = "a\x00b"
	r.Request.Inputs["decoy"] = map[string]any{"stack": map[string]any{"tenant": "evil"}}
	if _, _, err := s.CreateRun(ctx, r, store.Change{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE runs SET tenant = '', environment = '' WHERE id = $1`, r.ID); err != nil {
		t.Fatal(err)
	}
	var tenant, env string
	if err := s.pool.QueryRow(ctx, `SELECT tenant, environment FROM runs WHERE id = $1`, r.ID).Scan(&tenant, &env); err != nil {
		t.Fatal(err)
	}
	if tenant != r.Stack.Tenant || env != r.Stack.Environment {
		t.Fatalf("tenant %q, environment %q; want %q, %q", tenant, env, r.Stack.Tenant, r.Stack.Environment)
	}
}
