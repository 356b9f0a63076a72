package runreport

import (
	"context"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/portal/port"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/portsim"
)

const (
	testClientID     = "client-id-abc"
	testClientSecret = "client-secret-xyz-0123456789"
)

// simClient is a *port.Client speaking to a fresh Port simulator.
func simClient(t *testing.T, cfg portsim.Config) (*portsim.Sim, *port.Client) {
	cfg.ClientID, cfg.ClientSecret = testClientID, testClientSecret
	sim := portsim.New(cfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return sim, port.NewClient(srv.URL, testClientID, testClientSecret, port.Options{HTTPClient: srv.Client()})
}

// TestAgainstPortsim delivers reports through the real client to the Port
// simulator, which follows Port's API reference rather than this package.
func TestAgainstPortsim(t *testing.T) {
	sim, c := simClient(t, portsim.Config{AnyBlueprint: true})
	ctx := context.Background()

	// A whole report on a run the simulator created, ending it once.
	id, err := sim.CreateRun(portsim.Invocation{Action: "create_service", Blueprint: "service",
		User: portsim.Invoker{Email: "dana@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := port.ValidRunID(id); err != nil {
		t.Fatalf("the simulator's run id: %v", err)
	}
	rep := run.Report{Log: "done", Final: run.Success, Summary: "created",
		Entity: &run.EntityUpsert{Blueprint: "service", Identifier: "checkout", Team: []string{"payments_eu"}}}
	if err := Report(ctx, c, id, rep); err != nil {
		t.Fatal(err)
	}
	if done, err := Finished(ctx, c, id); err != nil || !done {
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
		if err := Report(ctx, c, "", news); err != nil {
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
		if err := Report(ctx, c, "", del); err != nil {
			t.Fatal(err)
		}
	}
	if got := sim.Entities("service"); len(got) != 0 || !reflect.DeepEqual(sim.Deleted(), []string{"service/checkout"}) {
		t.Fatalf("entities after the deletion %v, deleted %v", got, sim.Deleted())
	}
	if err := Report(ctx, c, id, run.Report{Delete: del.Delete, Log: "x"}); err == nil {
		t.Fatal("a deletion with a log line was sent")
	}
}

// TestErrorsClipWebhookContent: a blueprint from a webhook body names the
// call in its error, clipped, when Port refuses the call and quotes the
// blueprint back. (port's test of the same name covers the URL.)
func TestErrorsClipWebhookContent(t *testing.T) {
	_, c := simClient(t, portsim.Config{}) // no blueprint is known: 404
	huge := strings.Repeat("x", 500<<10)
	err := Report(context.Background(), c, "r_1", run.Report{Entity: &run.EntityUpsert{Blueprint: huge, Identifier: "svc"}})
	if !port.IsPermanent(err) || len(err.Error()) > 600 || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %.700v, want a short 404", err)
	}
}
