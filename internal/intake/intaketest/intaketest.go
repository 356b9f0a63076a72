// Package intaketest gives the tests of intake and of the gate after it the
// same world, so that neither sets it up again: the shipped actions and
// policy, a fresh store and a portal's teams lookup. It does not import
// intake, whose own tests use it.
package intaketest

import (
	"context"
	"errors"
	"testing"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/policy"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
)

// Teams is a portal's teams lookup; a user it does not list fails, as a
// portal that does not answer would.
type Teams map[string][]string

// UserTeams looks email up.
func (t Teams) UserTeams(_ context.Context, email string) ([]string, error) {
	if ts, ok := t[email]; ok {
		return ts, nil
	}
	return nil, errors.New("port: get user: 503 Service Unavailable")
}

// World is what a request meets.
type World struct {
	Store   *sqlite.Store
	Catalog *catalog.Catalog
	Policy  *policy.Engine
	// Teams knows dana (payments, the checkout service's team) and sam (web).
	Teams Teams
}

// New loads the shipped actions and policy, with environments dev and prod
// (production) and tenant acme, over an empty store. Their paths are from
// the package under test, as go test runs it: internal/<package>.
func New(t testing.TB) World {
	t.Helper()
	cat, err := catalog.Load("../../actions")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(context.Background(), "../../actions/policy", policy.Data{
		Environments: []policy.Environment{{Name: "dev"}, {Name: "prod", Production: true}}, Tenants: []string{"acme"}})
	if err != nil {
		t.Fatal(err)
	}
	return World{Store: sqlitetest.Open(t), Catalog: cat, Policy: pol,
		Teams: Teams{"dana@acme.example": {"payments"}, "sam@acme.example": {"web"}}}
}

// BucketReq asks, as user, for a bucket on acme's checkout service in env.
func BucketReq(id, user, env string) run.Request {
	return run.Request{Portal: "port", PortalRunID: id, Action: "add-s3-bucket", User: run.User{Email: user},
		Entity: run.Entity{Identifier: "checkout", Blueprint: "service", Team: []string{"payments"}},
		Inputs: map[string]any{"tenant": "acme", "environment": env, "bucketName": "receipts"}}
}
