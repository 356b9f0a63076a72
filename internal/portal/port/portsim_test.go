package port

import (
	"context"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/portsim"
)

// TestAgainstPortsim runs the client against the Port simulator, which
// follows Port's API reference rather than this client: the user answer
// carries team names and teamsIdentifiers, and UserTeams must pick the
// identifiers, the values an entity's team holds.
func TestAgainstPortsim(t *testing.T) {
	sim := portsim.New(portsim.Config{
		ClientID: testClientID, ClientSecret: testClientSecret, AnyBlueprint: true,
		Users: map[string]portsim.User{
			"dana@example.com": {FirstName: "Dana", Teams: []string{"Payments EU", "Platform"},
				TeamIdentifiers: []string{"payments_eu", "platform"}},
			"sam@example.com": {Teams: []string{"web"}}, // identifiers default to the names
		},
	})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL, testClientID, testClientSecret, Options{HTTPClient: srv.Client()})
	ctx := context.Background()

	for email, want := range map[string][]string{
		"dana@example.com": {"payments_eu", "platform"},
		"sam@example.com":  {"web"},
	} {
		got, err := c.UserTeams(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("UserTeams(%s) = %v, want %v", email, got, want)
		}
	}
	if _, err := c.UserTeams(ctx, "nobody@example.com"); !IsPermanent(err) {
		t.Errorf("unknown user: err = %v, want a permanent error", err)
	}

	// A whole report on a run the simulator created, ending it once.
	id, err := sim.CreateRun(portsim.Invocation{Action: "create_service", Blueprint: "service",
		User: portsim.Invoker{Email: "dana@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidRunID(id); err != nil {
		t.Fatalf("the simulator's run id: %v", err)
	}
	rep := run.Report{Log: "done", Final: run.Success, Summary: "created",
		Entity: &run.EntityUpsert{Blueprint: "service", Identifier: "checkout", Team: []string{"payments_eu"}}}
	if err := c.Report(ctx, id, rep); err != nil {
		t.Fatal(err)
	}
	if done, err := c.Finished(ctx, id); err != nil || !done {
		t.Fatalf("Finished = %v, %v", done, err)
	}
	r, _ := sim.Run(id)
	if r.Status != portsim.StatusSuccess || r.Summary != "created" || len(r.Logs) != 1 || len(r.Entities) != 1 {
		t.Errorf("run in the simulator: %+v", r)
	}

	// News of a stack (untied) changes an entity that is there and creates
	// none.
	for _, id := range []string{"checkout", "gone"} {
		news := run.Report{Untied: true, Entity: &run.EntityUpsert{Blueprint: "service", Identifier: id, Properties: map[string]any{"status": "expiring"}}}
		if err := c.Report(ctx, "", news); err != nil {
			t.Fatal(err)
		}
	}
	if got := sim.Entities("service"); len(got) != 1 || got[0].Identifier != "checkout" || got[0].Properties["status"] != "expiring" || !reflect.DeepEqual(got[0].Team, []string{"payments_eu"}) {
		t.Fatalf("entities after untied news: %+v", got)
	}

	// A destroyed stack's entity deleted, tied to no run; a second deletion
	// (a retry whose first answer was lost) finds it gone and succeeds.
	del := run.Report{Delete: &run.EntityRef{Blueprint: "service", Identifier: "checkout"}}
	for range 2 {
		if err := c.Report(ctx, "", del); err != nil {
			t.Fatal(err)
		}
	}
	if got := sim.Entities("service"); len(got) != 0 || !reflect.DeepEqual(sim.Deleted(), []string{"service/checkout"}) {
		t.Fatalf("entities after the deletion %v, deleted %v", got, sim.Deleted())
	}
	if err := c.Report(ctx, id, run.Report{Delete: del.Delete, Log: "x"}); err == nil {
		t.Fatal("a deletion with a log line was sent")
	}
}
