package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/sim/portsim"
	h "github.com/paved-idp/paved/test/harness"
)

// entityWrites are the statuses a Port run wrote onto its entity, in order.
func entityWrites(t *testing.T, r portsim.RunRecord) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range r.Events {
		if ev.Kind != "entity" || ev.Status >= 300 {
			continue
		}
		var body struct {
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal([]byte(ev.Detail), &body); err != nil {
			t.Fatalf("entity write %q: %v", ev.Detail, err)
		}
		out = append(out, body.Properties)
	}
	return out
}

// The entity a run manages carries its lifecycle state, kept current at
// each transition: provisioning while the pipeline runs, then ready (with
// the outputs) or failed (with the reason), with the last run's page and
// pipeline, for the portal's dashboards.
func TestEntityShowsItsState(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})

	portRun, ans := e.Press(h.Bucket(h.Dana, "dev", nil))
	r := e.WaitPort(portRun)
	writes := entityWrites(t, r)
	if len(writes) != 2 || writes[0]["status"] != "provisioning" || writes[1]["status"] != "ready" {
		t.Fatalf("entity writes of a successful run: %v", writes)
	}
	ents := e.Port.Entities("s3_bucket")
	if len(ents) != 1 {
		t.Fatalf("entities %v", ents)
	}
	p := ents[0].Properties
	if p["status"] != "ready" || p["lastRun"] != e.URL+"/ui/runs/"+ans.RunID || !strings.Contains(p["pipelineUrl"].(string), "/-/pipelines/") ||
		p["arn"] != "arn:aws:s3:::acme-dev-checkout-receipts" || p["lastRunAt"] == nil {
		t.Fatalf("entity after success: %v", p)
	}

	// A failing pipeline marks its entity failed, with the reason.
	fail := portsim.Invocation{Action: "add-sqs-queue", Blueprint: "service", Operation: "DAY-2", User: h.Dana, Entity: h.Checkout,
		Inputs: map[string]any{"tenant": "acme", "environment": "staging", "queueName": "payment-events"}}
	portRun, _ = e.Press(fail)
	r = e.WaitPort(portRun)
	writes = entityWrites(t, r)
	if len(writes) != 2 || writes[0]["status"] != "provisioning" || writes[1]["status"] != "failed" {
		t.Fatalf("entity writes of a failed run: %v", writes)
	}
	queues := e.Port.Entities("sqs_queue")
	if len(queues) != 1 || queues[0].Properties["status"] != "failed" || !strings.Contains(queues[0].Properties["statusReason"].(string), "failed in job(s) provision") {
		t.Fatalf("entity after failure: %v", queues)
	}
	if _, ok := queues[0].Properties["arn"]; ok {
		t.Fatal("a failed run wrote outputs")
	}
}

// The pipeline's cost estimate reaches the portal run (its log and status
// label) and the entity (monthlyCost): a service's two pods requesting
// 250m CPU and 256Mi each cost 2 × (0.25 × 0.04048 + 0.25 × 0.004445) × 730
// a month at the shipped prices.
func TestCostEstimateReachesThePortal(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	portRun, _ := e.Press(portsim.Invocation{Action: "create-service", Blueprint: "service", Operation: "CREATE", User: h.Dana,
		Inputs: map[string]any{"name": "cart", "team": "payments", "language": "go", "tenant": "acme", "environment": "dev", "replicas": 2}})
	r := e.WaitPort(portRun)
	if r.Status != "SUCCESS" || !strings.Contains(h.LogText(r), "estimated cost $16.40/month (+$16.40)") {
		t.Fatalf("Port run %s:\n%s", r.Status, h.LogText(r))
	}
	for _, en := range e.Port.Entities("service") {
		if en.Identifier == "cart" {
			if got := en.Properties["monthlyCost"]; got != 16.4 {
				t.Fatalf("monthlyCost %v (%T)", got, got)
			}
			return
		}
	}
	t.Fatal("no entity cart")
}

// A DELETE marks the stack's own entities destroyed: the bucket of the dev
// stack, and the service entity only once no other stack of the service is
// left (while staging still runs it, the service is not destroyed).
func TestDeleteMarksTheStacksOwnEntities(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	cart := &portsim.Entity{Identifier: "cart", Title: "cart", Blueprint: "service", Team: []string{"payments"}}
	press := func(inv portsim.Invocation) portsim.RunRecord {
		t.Helper()
		portRun, _ := e.Press(inv)
		r := e.WaitPort(portRun)
		if r.Status != "SUCCESS" {
			t.Fatalf("%s: Port run %s\n%s", inv.Action, r.Status, h.LogText(r))
		}
		return r
	}
	create := func(env string) portsim.Invocation {
		return portsim.Invocation{Action: "create-service", Blueprint: "service", Operation: "CREATE", User: h.Dana,
			Inputs: map[string]any{"name": "cart", "team": "payments", "language": "go", "tenant": "acme", "environment": env}}
	}
	del := func(env string) portsim.Invocation {
		return portsim.Invocation{Action: "delete-service", Blueprint: "service", Operation: "DELETE", User: h.Dana, Entity: cart,
			Inputs: map[string]any{"tenant": "acme", "environment": env, "confirm": true}}
	}
	status := func(bp, id string) any {
		for _, en := range e.Port.Entities(bp) {
			if en.Identifier == id {
				return en.Properties["status"]
			}
		}
		return nil
	}
	press(create("staging"))
	press(create("dev"))
	press(portsim.Invocation{Action: "add-s3-bucket", Blueprint: "service", Operation: "DAY-2", User: h.Dana, Entity: cart,
		Inputs: map[string]any{"tenant": "acme", "environment": "dev", "bucketName": "receipts"}})

	r := press(del("dev"))
	var seen []any
	for _, w := range entityWrites(t, r) {
		seen = append(seen, w["status"])
	}
	// destroying once paved lets the destroy apply, then destroyed: for the
	// bucket, the dev stack's only entity of its own.
	if fmt.Sprint(seen) != "[destroying destroyed]" {
		t.Fatalf("the delete's entity writes: %v", seen)
	}
	if got := status("s3_bucket", "acme-dev-cart-receipts"); got != "destroyed" {
		t.Fatalf("the dev stack's bucket after its delete: %v", got)
	}
	if got := status("service", "cart"); got != "ready" {
		t.Fatalf("the service, still in staging, after the dev delete: %v", got)
	}
	press(del("staging"))
	if got := status("service", "cart"); got != "destroyed" {
		t.Fatalf("the service after its last stack's delete: %v", got)
	}
}
