package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/cloudsim"
	"github.com/paved-idp/paved/internal/sim/portsim"
	"github.com/paved-idp/paved/internal/waitfor"
	h "github.com/paved-idp/paved/test/harness"
)

// prodDelete is Dana deleting checkout's production deployment: guarded by
// the shipped policy (a production DELETE).
var prodDelete = portsim.Invocation{Action: "delete-service", Blueprint: "service", Operation: "DELETE", User: h.Dana, Entity: h.Checkout,
	Inputs: map[string]any{"tenant": "acme", "environment": "prod", "confirm": true, "confirmName": "checkout"}}

// A production delete waits for approval, Port shows who must approve, and
// the approvers decide from Port itself with paved-approve-run (a
// synchronous webhook: paved's answer is the verdict): someone the policy
// does not name and the asker are refused, a platform member approves, and
// the run then goes through to SUCCESS with the approval in its Port log.
func TestApprovalFromPort(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	e.Cloud.Set("acme-prod-checkout", cloudsim.Resource{Type: "aws:s3/bucketV2:BucketV2", Name: "acme-prod-checkout-assets", Inputs: map[string]any{"bucket": "acme-prod-checkout-assets"}})
	portRun, ans := e.Press(prodDelete)
	if ans.State != string(run.Queued) {
		t.Fatalf("production delete is %s (%v), want queued: previewed before anyone approves", ans.State, ans.Reasons)
	}
	e.WaitState(ans.RunID, string(run.AwaitingApproval))
	waitfor.Until(t, "Port's status label to name the approvers and the preview", func() bool {
		r, _ := e.Port.Run(portRun)
		return strings.Contains(r.StatusLabel, "Awaiting approval by operator:*, payments, platform of +0 ~0 -1")
	})
	if len(e.Cloud.Resources("acme-prod-checkout")) != 1 {
		t.Fatal("the stack changed before the approval")
	}

	decide := func(who portsim.Invoker, decision string) h.Answer {
		_, a := e.Press(portsim.Invocation{Action: run.ApproveRunAction, Blueprint: "service", Operation: "DAY-2", User: who, Entity: h.Checkout,
			Inputs: map[string]any{"runId": ans.RunID, "decision": decision, "reason": "change window CHG-7"}})
		return a
	}
	if a := decide(h.Sam, "approve"); a.Code != http.StatusForbidden {
		t.Fatalf("sam (team web) approving: %d", a.Code)
	}
	if a := decide(h.Dana, "approve"); a.Code != http.StatusForbidden {
		t.Fatalf("dana approving her own run: %d", a.Code)
	}
	if st := e.RunState(ans.RunID); st != string(run.AwaitingApproval) {
		t.Fatalf("after two refusals the run is %s", st)
	}
	if a := decide(h.Lee, "approve"); a.Code != http.StatusOK {
		t.Fatalf("lee (platform) approving: %d", a.Code)
	}
	r := e.WaitPort(portRun)
	if r.Status != "SUCCESS" || !strings.Contains(h.LogText(r), "approved by lee@acme.example at ") || !strings.Contains(h.LogText(r), ": change window CHG-7") {
		t.Fatalf("Port run %s, log:\n%s", r.Status, h.LogText(r))
	}
	if left := e.Cloud.Resources("acme-prod-checkout"); len(left) != 0 {
		t.Fatalf("after the approved delete the stack holds %v", left)
	}
	if n := e.GitLab.RunIDCounts()[ans.RunID]; n != 2 {
		t.Fatalf("pipelines of the run: %d, want 2 (the preview's, then the apply's)", n)
	}
	if a := decide(h.Lee, "approve"); a.Code != http.StatusOK {
		t.Fatalf("Port sending the same approval again: %d", a.Code)
	}
	if a := decide(h.Lee, "deny"); a.Code != http.StatusConflict {
		t.Fatalf("deciding otherwise afterwards: %d", a.Code)
	}
}

// A production delete destroys data: without the service's name typed in
// confirmName it is refused at once, before any pipeline.
func TestProductionDeleteNeedsTheTypedName(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	inv := prodDelete
	inv.Inputs = map[string]any{"tenant": "acme", "environment": "prod", "confirm": true, "confirmName": "checkuot"}
	portRun, ans := e.Press(inv)
	if ans.State != string(run.Rejected) || !strings.Contains(strings.Join(ans.Reasons, " "), "type the service's name, checkout, in confirmName") {
		t.Fatalf("answer %+v", ans)
	}
	if r := e.WaitPort(portRun); r.Status != "FAILURE" {
		t.Fatalf("Port run %s", r.Status)
	}
	if n := e.GitLab.RunIDCounts()[ans.RunID]; n != 0 {
		t.Fatalf("%d pipelines for a refused delete", n)
	}
}
