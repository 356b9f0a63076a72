package preview

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/run"
)

func parseFile(t *testing.T, destroy bool) run.Preview {
	t.Helper()
	f, err := os.Open("testdata/preview.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := Parse(f, destroy, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseSummarisesPulumiPreview(t *testing.T) {
	p := parseFile(t, false)
	want := []run.PreviewResource{
		{Op: run.OpReplace, Type: "aws:rds/cluster:Cluster", Name: "acme-prod-checkout-db"},
		{Op: run.OpCreate, Type: "aws:s3/bucketV2:BucketV2", Name: "acme-prod-checkout-assets"},
		{Op: run.OpDelete, Type: "aws:sns/topic:Topic", Name: "acme-prod-checkout-events"},
		{Op: run.OpUpdate, Type: "aws:sqs/queue:Queue", Name: "acme-prod-checkout-orders"},
	}
	if !reflect.DeepEqual(p.Resources, want) {
		t.Fatalf("resources:\n got %+v\nwant %+v", p.Resources, want)
	}
	if got := p.Label(); got != "+1 ~1 -1 (1 replace)" {
		t.Fatalf("label %q", got)
	}
	if !strings.HasPrefix(p.Digest, "sha256:") || len(p.Digest) != len("sha256:")+64 {
		t.Fatalf("digest %q", p.Digest)
	}
	if lines := p.Lines(); len(lines) != 5 || !strings.Contains(lines[1], "+- aws:rds/cluster:Cluster acme-prod-checkout-db (replace)") {
		t.Fatalf("lines: %q", lines)
	}
}

// The digest is the change's: the same change printed in another order
// digests the same; another value, another operation or a destroy does not.
func TestDigestBindsTheChange(t *testing.T) {
	raw, err := os.ReadFile("testdata/preview.json")
	if err != nil {
		t.Fatal(err)
	}
	base := parseFile(t, false).Digest
	digest := func(s string, destroy bool) string {
		t.Helper()
		p, err := Parse(strings.NewReader(s), destroy, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p.Digest
	}
	// Reordered steps (the update moved first).
	doc := string(raw)
	i, j := strings.Index(doc, `        {
            "op": "update"`), strings.Index(doc, `        {
            "op": "replace"`)
	reordered := doc[:strings.Index(doc, `"steps": [`)+len(`"steps": [`)] + "\n" + doc[i:j] + doc[strings.Index(doc, `"steps": [`)+len(`"steps": [`)+1:i] + doc[j:]
	if got := digest(reordered, false); got != base {
		t.Errorf("reordered steps digest %s, want %s", got, base)
	}
	for name, changed := range map[string]string{
		"another input value": strings.Replace(doc, `"visibilityTimeoutSeconds": 60`, `"visibilityTimeoutSeconds": 90`, 1),
		"another operation":   strings.Replace(doc, `"op": "delete",`, `"op": "same",`, 1),
		"another resource":    strings.Replace(doc, `acme-prod-checkout-assets"`, `acme-prod-checkout-static"`, 2),
	} {
		if got := digest(changed, false); got == base {
			t.Errorf("%s: same digest", name)
		}
	}
	if got := digest(doc, true); got == base {
		t.Error("a destroy preview digests like the update")
	}
}

func TestParseRefusesWhatIsNotAPreview(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":      "Previewing update (acme-prod-checkout):",
		"another JSON":  `{"outputs": {}}`,
		"a bad URN":     `{"steps": [{"op": "create", "urn": "bucket"}]}`,
		"a failed run":  `{"steps": [], "diagnostics": [{"severity": "error", "message": "aws:s3: AccessDenied\n"}]}`,
		"an empty file": ``,
	} {
		if _, err := Parse(strings.NewReader(doc), false, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	p, err := Parse(strings.NewReader(`{"steps": [{"op": "same", "urn": "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s"}], "changeSummary": {"same": 1}}`), false, nil)
	if err != nil || len(p.Resources) != 0 || p.Label() != "+0 ~0 -0" {
		t.Fatalf("no changes: %+v, %v", p, err)
	}
}

// A refresh's steps may come as "refresh": a diff is an update, a missing
// new state a delete, neither no change.
func TestParseReadsRefreshSteps(t *testing.T) {
	doc := `{"steps": [
		{"op": "refresh", "urn": "urn:pulumi:s::p::aws:s3/bucketV2:BucketV2::b", "oldState": {"type": "aws:s3/bucketV2:BucketV2"}, "newState": {"type": "aws:s3/bucketV2:BucketV2", "inputs": {"versioning": false}}, "diffReasons": ["versioning"], "detailedDiff": {"versioning": {"kind": "update"}}},
		{"op": "refresh", "urn": "urn:pulumi:s::p::aws:sqs/queue:Queue::q", "oldState": {"type": "aws:sqs/queue:Queue"}},
		{"op": "refresh", "urn": "urn:pulumi:s::p::aws:sns/topic:Topic::t", "oldState": {"type": "aws:sns/topic:Topic"}, "newState": {"type": "aws:sns/topic:Topic"}}
	], "changeSummary": {"update": 1, "delete": 1, "same": 1}}`
	p, err := Parse(strings.NewReader(doc), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []run.PreviewResource{{Op: run.OpUpdate, Type: "aws:s3/bucketV2:BucketV2", Name: "b"}, {Op: run.OpDelete, Type: "aws:sqs/queue:Queue", Name: "q"}}
	if !reflect.DeepEqual(p.Resources, want) {
		t.Fatalf("resources %+v", p.Resources)
	}
}
