package gate

import (
	"testing"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/intake"
	"github.com/paved-idp/paved/internal/intake/intaketest"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
)

// setup is a gate and the intake that records the runs it judges, over one
// store, as paved wires them.
func setup(t testing.TB) (*Service, *intake.Service, *sqlite.Store) {
	t.Helper()
	w := intaketest.New(t)
	in := &intake.Service{Store: w.Store, Catalog: w.Catalog, Policy: w.Policy, Teams: w.Teams, Log: zap.NewNop()}
	s := &Service{Store: w.Store, Catalog: w.Catalog, Policy: w.Policy, Teams: w.Teams, Log: zap.NewNop()}
	return s, in, w.Store
}

var bucketReq = intaketest.BucketReq

func reports(t *testing.T, st *sqlite.Store) []run.Report { return sqlitetest.Reports(t, st) }

func deleteReq(id string) run.Request {
	return run.Request{Portal: "port", PortalRunID: id, Action: "delete-service", User: run.User{Email: "dana@acme.example"},
		Entity: run.Entity{Identifier: "checkout", Blueprint: "service", Team: []string{"payments"}},
		Inputs: map[string]any{"tenant": "acme", "environment": "prod", "confirm": true, "confirmName": "checkout"}}
}
