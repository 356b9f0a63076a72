package demo

import (
	"bytes"
	"context"
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
	for _, want := range []string{
		"SUCCESS (Done)", "FAILURE (Refused by policy)", "FAILURE (Invalid inputs)", "FAILURE (Pipeline failed)",
		`"duplicate":true`, "s3_bucket/acme-dev-checkout-receipts", "2 pipeline(s) created for 2 distinct paved run(s)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
