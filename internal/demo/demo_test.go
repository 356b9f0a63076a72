package demo

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs `paved demo` as `make demo` does; Run itself fails unless
// every scenario ends in Port as expected, exactly once.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), &out, Options{ActionsDir: "../../actions", PolicyDir: "../../actions/policy"})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if _, entities, _ := strings.Cut(out.String(), "Entities written back:"); strings.Contains(entities, "acme-dev-checkout-orders") {
		t.Errorf("the dry run wrote its entity back:\n%s", out.String())
	}
	// One pipeline per paved run, drift checks included.
	if m := regexp.MustCompile(`GitLab: (\d+) pipeline\(s\) created for (\d+) distinct paved run\(s\)`).FindStringSubmatch(out.String()); m == nil || m[1] != m[2] {
		t.Errorf("pipelines per run: %v", m)
	}
	for _, want := range []string{
		"SUCCESS (Done)", "FAILURE (Refused by policy)", "FAILURE (Invalid inputs)", "FAILURE (Pipeline failed)",
		`"duplicate":true`, "s3_bucket/acme-dev-checkout-receipts",
		// The drift check finds the console's change.
		`status=drifted drift="drifted: ~1 -0 (aws:s3/bucketV2:BucketV2 acme-dev-checkout-receipts changed)"`,
		// Every pipeline previews first; the dry run ends with its preview.
		"Preview: +2 ~0 -0 (digest sha256:", "+ aws:s3/bucketV2:BucketV2 acme-dev-checkout-receipts (create)",
		"SUCCESS (Dry run: +2 ~0 -0)", "Dry run: the change would be +2 ~0 -0; nothing was applied",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
