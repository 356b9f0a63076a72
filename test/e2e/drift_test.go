package e2e

import (
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/sim/cloudsim"
	"github.com/paved-idp/paved/internal/waitfor"
	h "github.com/paved-idp/paved/test/harness"
)

// Drift checks run on schedule through the stack's queue, never apply
// anything, and write what they find onto the stack's entities: in sync,
// then, once the cloud was changed behind Pulumi's back, drifted with the
// resource.
func TestDriftIsCheckedAndShown(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{Extra: "drift: {interval: 1s, environments: [dev]}"})
	portRun, _ := e.Press(h.Bucket(h.Dana, "dev", nil))
	if r := e.WaitPort(portRun); r.Status != "SUCCESS" {
		t.Fatalf("Port run %s", r.Status)
	}
	bucket := func() map[string]any {
		for _, en := range e.Port.Entities("s3_bucket") {
			if en.Identifier == "acme-dev-checkout-receipts" {
				return en.Properties
			}
		}
		return nil
	}
	waitfor.Until(t, "a drift check to find the stack in sync", func() bool { return bucket()["drift"] == "in sync" })
	if p := bucket(); p["status"] != "ready" || p["driftCheckedAt"] == nil {
		t.Fatalf("entity after an in-sync check: %v", p)
	}

	// Someone turns versioning off in the console.
	name := "acme-dev-checkout-receipts"
	before := e.Cloud.Resources("acme-dev-checkout")
	var changed cloudsim.Resource
	for _, r := range before {
		if r.Type == "aws:s3/bucketV2:BucketV2" {
			changed = r
		}
	}
	changed.Inputs["versioning"] = false
	e.Cloud.Drift("acme-dev-checkout", changed)
	waitfor.Until(t, "a drift check to find the bucket changed", func() bool {
		d, _ := bucket()["drift"].(string)
		return strings.HasPrefix(d, "drifted: ~1 -0 (aws:s3/bucketV2:BucketV2 "+name+" changed")
	})
	if p := bucket(); p["status"] != "drifted" {
		t.Fatalf("entity after drift: %v", p)
	}
	// Nothing was applied: the cloud still has the console's change.
	for _, r := range e.Cloud.Resources("acme-dev-checkout") {
		if r.Type == "aws:s3/bucketV2:BucketV2" && r.Inputs["versioning"] != false {
			t.Fatalf("a drift check changed the bucket: %v", r.Inputs)
		}
	}
	// Paved's own runs went to no Port run: Port knows only the one pressed.
	if n := len(e.Port.Runs()); n != 1 {
		t.Fatalf("Port holds %d runs, want 1", n)
	}
}
