package e2e

import (
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/cloudsim"
	h "github.com/paved-idp/paved/test/harness"
)

// Every run is previewed before anything is applied: Port's log shows the
// preview (counts, digest, each resource) before the apply, and its status
// label the counts.
func TestPreviewBeforeApply(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	portRun, ans := e.Press(h.Bucket(h.Dana, "dev", nil))
	if ans.State != string(run.Queued) {
		t.Fatalf("answer %+v", ans)
	}
	r := e.WaitPort(portRun)
	log := h.LogText(r)
	preview := strings.Index(log, "Preview: +2 ~0 -0 (digest sha256:")
	apply := strings.Index(log, "pulumi up --yes")
	if r.Status != "SUCCESS" || preview < 0 || apply < preview || !strings.Contains(log, "+ aws:s3/bucketV2:BucketV2 acme-dev-checkout-receipts (create)") {
		t.Fatalf("Port run %s; log:\n%s", r.Status, log)
	}
	if !strings.Contains(r.Summary, "applied +2 ~0 -0") {
		t.Fatalf("summary %q", r.Summary)
	}
	if got := len(e.Cloud.Resources("acme-dev-checkout")); got != 2 {
		t.Fatalf("the stack holds %d resources, want the bucket and its access block", got)
	}
}

// A dry run ends SUCCESS with what would change, applies nothing and
// writes no entity.
func TestDryRun(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	inv := h.Bucket(h.Dana, "dev", nil)
	inv.Inputs["dryRun"] = true
	portRun, ans := e.Press(inv)
	r := e.WaitPort(portRun)
	if r.Status != "SUCCESS" || r.StatusLabel != "Dry run: +2 ~0 -0" || !strings.Contains(r.Summary, "nothing was applied") {
		t.Fatalf("Port run %s %q %q; log:\n%s", r.Status, r.StatusLabel, r.Summary, h.LogText(r))
	}
	if got := e.Cloud.Resources("acme-dev-checkout"); len(got) != 0 {
		t.Fatalf("a dry run applied %v", got)
	}
	if got := e.Port.Entities("s3_bucket"); len(got) != 0 {
		t.Fatalf("a dry run wrote entities %v", got)
	}
	if e.RunState(ans.RunID) != string(run.Succeeded) {
		t.Fatalf("run %s", e.RunState(ans.RunID))
	}
}

// The approval is bound to the preview: when the stack changes between the
// approved preview and the apply, the apply pipeline's preview differs,
// nothing is applied and the run fails saying so.
func TestApprovedPreviewMustNotChange(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	bucket := cloudsim.Resource{Type: "aws:s3/bucketV2:BucketV2", Name: "acme-prod-checkout-assets", Inputs: map[string]any{"bucket": "acme-prod-checkout-assets"}}
	e.Cloud.Set("acme-prod-checkout", bucket)
	portRun, ans := e.Press(prodDelete)
	e.WaitState(ans.RunID, string(run.AwaitingApproval))
	// Someone adds a table to the stack after the preview was made.
	e.Cloud.Set("acme-prod-checkout", cloudsim.Resource{Type: "aws:dynamodb/table:Table", Name: "acme-prod-checkout-orders", Inputs: map[string]any{"name": "acme-prod-checkout-orders"}})
	if code := e.Post("/api/v1/runs/"+ans.RunID+"/approve", `{"approver": {"email": "lee@acme.example", "teams": ["platform"]}, "reason": "CHG-9"}`); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	r := e.WaitPort(portRun)
	if r.Status != "FAILURE" || !strings.Contains(r.Summary, "the preview changed since it was approved") {
		t.Fatalf("Port run %s %q; log:\n%s", r.Status, r.Summary, h.LogText(r))
	}
	if got := len(e.Cloud.Resources("acme-prod-checkout")); got != 2 {
		t.Fatalf("the stack holds %d resources after a refused apply, want both still", got)
	}
}

// The policy sees the preview: a production change that would replace a
// bucket (its data lost) is refused before anything is applied.
func TestPolicyRefusesThePreview(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{})
	// The bucket exists under another physical name: the change would
	// replace it.
	e.Cloud.Set("acme-prod-checkout", cloudsim.Resource{Type: "aws:s3/bucketV2:BucketV2", Name: "acme-prod-checkout-exports", Inputs: map[string]any{"bucket": "exports-legacy"}})
	portRun, _ := e.Press(h.Bucket(h.Dana, "prod", map[string]any{"bucketName": "exports"}))
	r := e.WaitPort(portRun)
	if r.Status != "FAILURE" || r.StatusLabel != "Refused by policy at preview" ||
		!strings.Contains(r.Summary, "this change would replace aws:s3/bucketV2:BucketV2 acme-prod-checkout-exports in production, losing its data") {
		t.Fatalf("Port run %s %q %q; log:\n%s", r.Status, r.StatusLabel, r.Summary, h.LogText(r))
	}
	if got := e.Cloud.Resources("acme-prod-checkout"); len(got) != 1 || got[0].Inputs["bucket"] != "exports-legacy" {
		t.Fatalf("the stack after a refused preview: %v", got)
	}
	// Nothing was applied, so the entity is not marked (failed or otherwise).
	if got := e.Port.Entities("s3_bucket"); len(got) != 0 {
		t.Fatalf("a refused preview wrote entities %v", got)
	}
}
