package stackentity

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
)

// A stack's own entities: those of its succeeded runs since its last
// delete, from the catalog's portal, less those a live other stack also
// wrote (the service entity of a service in two environments) — until that
// other stack is deleted.
func TestOwned(t *testing.T) {
	ctx := context.Background()
	st := sqlitetest.Open(t)
	cat, err := catalog.Load("../../actions")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	add := func(portal, action string, op run.Operation, env string, inputs map[string]any) {
		t.Helper()
		at = at.Add(time.Second)
		in := map[string]any{"tenant": "acme", "environment": env, "name": "cart"}
		for k, v := range inputs {
			in[k] = v
		}
		r := &run.Run{ID: run.NewID(), Request: run.Request{Portal: portal, PortalRunID: fmt.Sprint(at.Unix()), Action: action, Inputs: in,
			Entity: run.Entity{Identifier: "cart", Blueprint: "service"}}, Operation: op, Stack: run.Stack{Tenant: "acme", Environment: env, Service: "cart"},
			State: run.Succeeded, CreatedAt: at, UpdatedAt: at}
		if _, _, err := st.CreateRun(ctx, r, store.Change{}); err != nil {
			t.Fatal(err)
		}
	}
	f := Finder{Store: st, Catalog: cat, Portal: "port"}
	owned := func(env string) string {
		t.Helper()
		refs, err := f.Owned(ctx, run.Stack{Tenant: "acme", Environment: env, Service: "cart"}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(refs)
	}
	// An earlier life of the dev stack, ended by a delete.
	add("port", "add-s3-bucket", run.Day2, "dev", map[string]any{"bucketName": "old"})
	add("port", "delete-service", run.Delete, "dev", nil)
	add("port", "create-service", run.Create, "dev", nil)
	add("port", "add-s3-bucket", run.Day2, "dev", map[string]any{"bucketName": "receipts"})
	add("backstage", "add-s3-bucket", run.Day2, "dev", map[string]any{"bucketName": "notinport"})
	add("port", "create-service", run.Create, "staging", nil)

	if got, want := owned("dev"), "[{s3_bucket acme-dev-cart-receipts}]"; got != want {
		t.Fatalf("dev's own entities %s, want %s (the service is staging's too)", got, want)
	}
	add("port", "delete-service", run.Delete, "staging", nil)
	if got, want := owned("dev"), "[{s3_bucket acme-dev-cart-receipts} {service cart}]"; got != want {
		t.Fatalf("dev's own entities once staging is deleted %s, want %s", got, want)
	}
}
