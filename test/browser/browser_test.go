// Package browser drives paved's operator page in a real browser: Debian's
// Chromium under playwright-core (operator.mjs), against the real paved
// binary between the Port and GitLab simulators. It runs only when asked
// (PAVED_BROWSER=1, or PAVED_REQUIRE_BROWSER=1, which also fails instead of
// skipping when node, node_modules or Chromium are missing): .ci/browser.sh.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/portsim"
	h "github.com/paved-idp/paved/test/harness"
	"github.com/paved-idp/paved/test/harness/optin"
)

var pavedBin string

// suite runs with PAVED_BROWSER=1 or PAVED_REQUIRE_BROWSER=1.
var suite = optin.Suite{Name: "BROWSER", Setup: ".ci/browser.sh"}

func TestMain(m *testing.M) { suite.Main(m, &pavedBin) }

const (
	operatorName  = "ops-olivia"
	operatorToken = "e2e-operator-token-7f3a9c"
	liveLine      = "pulumi: ~ aws:s3 bucket acme-dev-checkout-receipts updated (live from the browser test)"
	readyMarker   = "READY_FOR_LOG"
)

// tools finds node, the installed playwright-core and Chromium; a missing
// one skips the test, or fails it under PAVED_REQUIRE_BROWSER=1.
func tools(t *testing.T) (node, chromium, dir string) {
	t.Helper()
	dir = filepath.Join(h.RepoRoot(), "test", "browser")
	node = suite.Tool(t, "node")
	suite.NodeModules(t, dir, "playwright-core")
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		suite.Missing(t, "Chromium is not at %s", chromium)
	}
	return node, chromium, dir
}

func TestOperatorPageInChromium(t *testing.T) {
	suite.SkipUnlessWanted(t)
	node, chromium, dir := tools(t)
	e := h.Start(t, pavedBin, h.Options{Outcome: h.LongPipeline,
		Extra: "operator: {tokens: {" + operatorName + ": env:E2E_OPERATOR_TOKEN}, sessionTTL: 1h}",
		Env:   []string{"E2E_OPERATOR_TOKEN=" + operatorToken}})

	// A run holds stack acme-dev-checkout (its pipeline runs for an hour),
	// a second waits queued behind it; the rest fill the page: another
	// tenant, another action, one the policy refuses, one awaiting approval.
	runningRun := press(t, e, h.Bucket(h.Dana, "dev", nil), "queued")
	e.WaitState(runningRun, "running")
	queuedRun := press(t, e, h.Bucket(h.Dana, "dev", map[string]any{"bucketName": "invoices"}), "queued")
	otherRun := press(t, e, h.Bucket(h.Dana, "staging", map[string]any{"tenant": "globex"}), "queued")
	press(t, e, portsim.Invocation{Action: "add-sqs-queue", Blueprint: "service", Operation: "DAY-2", User: h.Eve, Entity: h.Checkout,
		Inputs: map[string]any{"tenant": "acme", "environment": "staging", "queueName": "orders"}}, "queued")
	press(t, e, h.Bucket(h.Sam, "prod", map[string]any{"bucketName": "exports"}), "rejected")
	// A guarded run is previewed first, then waits for approval.
	guarded := press(t, e, portsim.Invocation{Action: "delete-service", Blueprint: "service", Operation: "DELETE", User: h.Dana, Entity: h.Checkout,
		Inputs: map[string]any{"tenant": "acme", "environment": "prod", "confirm": true, "confirmName": "checkout"}}, "queued")
	e.WaitState(guarded, "awaiting_approval")
	e.WaitState(otherRun, "running")
	if st := e.RunState(queuedRun); st != "queued" {
		t.Fatalf("the second run on the stack is %s, want queued", st)
	}

	// The screenshots the README shows; PAVED_SCREENSHOT_DIR puts them elsewhere.
	shots := os.Getenv("PAVED_SCREENSHOT_DIR")
	if shots == "" {
		shots = filepath.Join(h.RepoRoot(), "docs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "operator.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PAVED_URL="+e.URL, "OPERATOR_TOKEN="+operatorToken, "OPERATOR_NAME="+operatorName,
		"RUNNING_RUN="+runningRun, "QUEUED_RUN="+queuedRun, "OTHER_RUN="+otherRun, "LOG_LINE="+liveLine, "CHROMIUM="+chromium,
		"SCREENSHOT="+filepath.Join(shots, "operator.png"), "SCREENSHOT_RUNS="+filepath.Join(shots, "operator-runs.png"))
	var posted sync.WaitGroup
	sawMarker := false
	out, err := optin.RunScript(t, "operator.mjs", cmd, func(line string) {
		if line == readyMarker && !sawMarker {
			// The page's EventSource is open: this line can only reach it live.
			sawMarker = true
			posted.Add(1)
			go func() { defer posted.Done(); postLog(t, e, runningRun, liveLine) }()
		}
	})
	posted.Wait()
	if err != nil {
		t.Fatalf("operator.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, out.Stdout, out.Stderr)
	}
	if !sawMarker || !strings.Contains(out.Stdout, "OPERATOR_PAGE_OK") {
		t.Fatalf("operator.mjs did not finish its steps:\n%s\nstderr:\n%s", out.Stdout, out.Stderr)
	}

	// What the page did is what paved recorded.
	var got struct {
		State  string `json:"state"`
		Events []struct {
			Message string `json:"message"`
		} `json:"events"`
	}
	if code := e.API("GET", "/api/v1/runs/"+queuedRun, &got); code != http.StatusOK || got.State != "canceled" {
		t.Fatalf("queued run after the page's cancel: %d %s", code, got.State)
	}
	var msgs []string
	for _, ev := range got.Events {
		msgs = append(msgs, ev.Message)
	}
	if !strings.Contains(strings.Join(msgs, "\n"), "canceled by operator:"+operatorName) {
		t.Fatalf("events of the canceled run do not name the operator: %q", msgs)
	}
	if st := e.RunState(runningRun); st != "running" {
		t.Fatalf("the running run is %s: the page changed a run it was not asked to", st)
	}
}

// press sends a Port action and checks paved's first answer.
func press(t *testing.T, e *h.Env, inv portsim.Invocation, state string) string {
	t.Helper()
	_, a := e.Press(inv)
	if a.Code != http.StatusAccepted || a.State != state {
		t.Fatalf("%s: answer %+v, want 202 %s", inv.Action, a, state)
	}
	return a.RunID
}

// postLog posts a line as the run's pipeline would, with its run token.
func postLog(t *testing.T, e *h.Env, id, line string) {
	body, _ := json.Marshal(map[string][]string{"lines": {line}})
	req, _ := http.NewRequest("POST", e.URL+"/api/v1/runs/"+id+"/logs", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+run.Token([]byte(h.RunKey), id))
	req.Header.Set("Content-Type", "application/json")
	if a, err := e.TryDo(req); err != nil || a.Code != http.StatusAccepted {
		t.Errorf("post the live log line: %v %s", err, fmt.Sprint(a))
	}
}
