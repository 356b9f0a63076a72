package webhook

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/portal/port"
	"github.com/paved-idp/paved/internal/run"
)

// maxErrorLen bounds a Decode error: it quotes only clipped pieces of the
// body, whatever the body's size.
const maxErrorLen = 512

// FuzzVerifyDecode feeds arbitrary bodies and headers through the intake
// path. Neither step may panic; Verify fails only with its sentinels and
// always accepts what Sign produced; Decode fails only with its sentinels
// and otherwise returns a request the rest of paved can rely on.
func FuzzVerifyDecode(f *testing.F) {
	now := strconv.FormatInt(testNow.Unix(), 10)
	for _, name := range []string{"day2_default.json", "create_no_entity.json", "v1_api_triggered.json", "day2_rendered.json", "create_rendered.json"} {
		body := readSample(f, name)
		f.Add(body, now, Sign(testSecret, now, body))
		f.Add(body, now, "v1,AAAA v1,"+Sign(testSecret, now, body)[3:])
	}
	f.Add([]byte(`{}`), now, "v1,")
	f.Add([]byte(`[]`), "", "")
	f.Add([]byte(`{"resourceType":"run","context":{"runId":"r"},"action":{"identifier":1}}`), "abc", "v1,,,,")
	f.Add([]byte(`{"resourceType":"run","context":{"runId":"r","entity":7},"action":"a","payload":{"action":{"trigger":"DELETE"}}}`), now, "v2,x")
	f.Add([]byte(`{"resourceType":"run","RESOURCETYPE":"x","context":{"runId":"r_1","RUNID":"../x"},"action":"a","ACTION":"b","payload":{"action":{"trigger":"CREATE"}}}`), now, "")
	f.Add([]byte(`{"resourceType":"run","context":{"runId":"r/../1"},"action":"a","payload":{"action":{"trigger":"CREATE"}}}`), now, "")
	f.Add([]byte("\xff\xfe"), "99999999999999999999", "v1,"+strings.Repeat("A,", 20))

	vf := Verifier{Secret: testSecret, Now: func() time.Time { return testNow }}
	f.Fuzz(func(t *testing.T, body []byte, ts, sig string) {
		if err := vf.Verify(header(ts, sig), body); err != nil &&
			!errors.Is(err, ErrMissingSignature) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrStaleTimestamp) {
			t.Fatalf("Verify: unexpected error %v", err)
		}
		if err := vf.Verify(header(now, Sign(testSecret, now, body)), body); err != nil {
			t.Fatalf("Verify refused its own signature: %v", err)
		}

		inv, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrNotARun) {
				t.Fatalf("Decode: unexpected error %v", err)
			}
			if n := len(err.Error()); n > maxErrorLen {
				t.Fatalf("Decode: error of %d bytes: %.600s", n, err)
			}
			return
		}
		r := inv.Request
		switch {
		case r.Portal != "port", strings.TrimSpace(r.PortalRunID) == "", strings.TrimSpace(r.Action) == "", r.Inputs == nil:
			t.Fatalf("Decode accepted an incomplete request: %+v", inv)
		case inv.Operation != run.Create && inv.Operation != run.Day2 && inv.Operation != run.Delete:
			t.Fatalf("Decode accepted operation %q", inv.Operation)
		case inv.Operation != run.Create && r.Entity.Identifier == "":
			t.Fatalf("Decode accepted a %s run without an entity", inv.Operation)
		case port.ValidRunID(r.PortalRunID) != nil:
			t.Fatalf("Decode accepted run id %q", r.PortalRunID)
		}
	})
}
