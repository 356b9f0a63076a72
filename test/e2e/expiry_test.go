package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/sim/portsim"
	"github.com/paved-idp/paved/internal/waitfor"
	h "github.com/paved-idp/paved/test/harness"
)

// An ephemeral stack (create-service with a ttl) shows its expiry on its
// entity, is shown expiring WarnBefore it, can be given a new TTL from
// Port (paved-extend-ttl, answered at once), and at expiry is destroyed by
// a run of paved's own through the normal path: previewed, applied by the
// pipeline, its entity marked destroyed. The shortest TTL is a minute, so
// this test takes about that.
func TestEphemeralStackExpires(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{Extra: "expiry: {warnBefore: 50s, interval: 1s}"})
	create := portsim.Invocation{Action: "create-service", Blueprint: "service", Operation: "CREATE", User: h.Dana,
		Inputs: map[string]any{"name": "cart", "team": "payments", "language": "go", "tenant": "acme", "environment": "dev", "ttl": "1m"}}

	// Too long for staging: refused, saying the bound.
	long := create
	long.Inputs = map[string]any{"name": "cart", "team": "payments", "language": "go", "tenant": "acme", "environment": "staging", "ttl": "4d"}
	if _, ans := e.Press(long); ans.State != "rejected" || !strings.Contains(strings.Join(ans.Reasons, " "), `environment "staging" allows: at most 72h`) {
		t.Fatalf("a 4d ttl in staging: %+v", ans)
	}

	portRun, ans := e.Press(create)
	if r := e.WaitPort(portRun); r.Status != "SUCCESS" || !strings.Contains(h.LogText(r), "ephemeral") {
		t.Fatalf("create: Port run %s\n%s", r.Status, h.LogText(r))
	}
	cart := func() map[string]any {
		for _, en := range e.Port.Entities("service") {
			if en.Identifier == "cart" {
				return en.Properties
			}
		}
		return nil
	}
	// The scheduler shows the expiry on the stack's own entities (the
	// service is this stack's alone).
	waitfor.Until(t, "the entity to show its expiry", func() bool { _, ok := cart()["expiresAt"].(string); return ok })
	first, err := time.Parse(time.RFC3339, cart()["expiresAt"].(string))
	if err != nil || first.Before(time.Now().Add(30*time.Second)) {
		t.Fatalf("entity after the create: %v (%v)", cart(), err)
	}
	waitfor.Until(t, "the portal to be warned of the expiry", func() bool { return cart()["status"] == "expiring" })

	// A new TTL from Port, answered at once.
	extend := portsim.Invocation{Action: "paved-extend-ttl", Blueprint: "service", Operation: "DAY-2", User: h.Dana,
		Entity: &portsim.Entity{Identifier: "cart", Title: "cart", Blueprint: "service", Team: []string{"payments"}},
		Inputs: map[string]any{"tenant": "acme", "environment": "dev", "ttl": "1m"}}
	if _, got := e.Press(extend); got.Code != http.StatusOK {
		t.Fatalf("extend: %+v", got)
	}
	waitfor.Until(t, "the entity to show the new expiry", func() bool {
		at, err := time.Parse(time.RFC3339, cart()["expiresAt"].(string))
		return err == nil && at.After(first) && cart()["status"] == "ready"
	})
	// Too long an extension is refused with the policy's reason.
	extend.Inputs = map[string]any{"tenant": "acme", "environment": "dev", "ttl": "30d"}
	if _, got := e.Press(extend); got.Code != http.StatusForbidden || !strings.Contains(got.Error, "at most 336h") {
		t.Fatalf("extend by 30d: %+v", got)
	}

	// The new expiry is a minute away, the warning 50 s before it.
	waitfor.Within(t, 2*time.Minute, "the expired stack to be destroyed", func() bool { return cart()["status"] == "destroyed" })
	if res := e.Cloud.Resources("acme-dev-cart"); len(res) != 0 {
		t.Fatalf("the cloud still holds %v", res)
	}
	var runs struct {
		Runs []struct {
			ID        string `json:"id"`
			Operation string `json:"operation"`
			State     string `json:"state"`
			Request   struct {
				Portal string `json:"portal"`
			} `json:"request"`
		} `json:"runs"`
	}
	if code := e.API("GET", "/api/v1/runs?limit=10", &runs); code != http.StatusOK {
		t.Fatalf("list runs: %d", code)
	}
	destroys := 0
	for _, r := range runs.Runs {
		if r.Request.Portal == "paved" && r.Operation == "DELETE" {
			destroys++
			if r.State != "succeeded" {
				t.Fatalf("the destroy run %s is %s", r.ID, r.State)
			}
		}
	}
	if destroys != 1 {
		t.Fatalf("%d destroy runs, want 1 (runs %+v); created by %s", destroys, runs.Runs, ans.RunID)
	}
}
