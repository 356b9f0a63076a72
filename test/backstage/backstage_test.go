// Package backstage runs the paved:run scaffolder action (deploy/backstage,
// TypeScript) against the real paved binary between the Port and GitLab
// simulators: its jest suite, with npm-installed Backstage packages, drives
// paved's API as Backstage's scaffolder would. It runs only when asked
// (PAVED_BACKSTAGE=1, or PAVED_REQUIRE_BACKSTAGE=1, which also fails instead
// of skipping when node, npm or node_modules are missing): .ci/backstage.sh.
package backstage

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	h "github.com/paved-idp/paved/test/harness"
	"github.com/paved-idp/paved/test/harness/optin"
)

var pavedBin string

var suite = optin.Suite{Name: "BACKSTAGE", Setup: ".ci/backstage.sh"}

func TestMain(m *testing.M) { suite.Main(m, &pavedBin) }

// The API clients' tokens: secrets of the test world, which neither paved's
// log nor the suite's output may hold.
const (
	backstageToken = "e2e-backstage-token-5d1e"
	limitedToken   = "e2e-limited-token-90ab"
)

// jestResult is the part of jest's --json report the test reads.
type jestResult struct {
	Success         bool `json:"success"`
	NumTotalTests   int  `json:"numTotalTests"`
	NumPassedTests  int  `json:"numPassedTests"`
	NumFailedTests  int  `json:"numFailedTests"`
	NumPendingTests int  `json:"numPendingTests"`
	NumTodoTests    int  `json:"numTodoTests"`
	TestResults     []struct {
		Name             string `json:"name"`
		AssertionResults []struct {
			FullName string `json:"fullName"`
			Status   string `json:"status"`
		} `json:"assertionResults"`
	} `json:"testResults"`
}

func TestPavedRunAction(t *testing.T) {
	suite.SkipUnlessWanted(t)
	dir := filepath.Join(h.RepoRoot(), "deploy", "backstage")
	suite.Tool(t, "node")
	npm := suite.Tool(t, "npm")
	suite.NodeModules(t, dir, "jest", "ts-jest", "typescript", "@backstage/plugin-scaffolder-node", "@backstage/plugin-scaffolder-node-test-utils")

	// Backstage's client, and one limited to add-sqs-queue.
	e := h.Start(t, pavedBin, h.Options{APIClients: map[string]h.APIClient{
		"backstage": {Token: backstageToken},
		"limited":   {Token: limitedToken, Actions: []string{"add-sqs-queue"}},
	}})

	report := filepath.Join(t.TempDir(), "jest.json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// --forceExit: a failed test may leave its step waiting on a run; the
	// report says it failed, and nothing must hang the suite.
	cmd := exec.CommandContext(ctx, npm, "test", "--", "--ci", "--runInBand", "--forceExit", "--json", "--outputFile="+report)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PAVED_URL="+e.URL, "PAVED_TOKEN="+backstageToken, "PAVED_LIMITED_TOKEN="+limitedToken,
		"PAVED_ADMIN_TOKEN="+h.APIToken, "NO_COLOR=1", "FORCE_COLOR=0")
	out, err := optin.RunScript(t, "npm test", cmd, nil)
	t.Logf("npm test (stderr):\n%s", out.Stderr)
	if err != nil {
		t.Fatalf("npm test: %v", err)
	}
	for _, secret := range []string{backstageToken, limitedToken} {
		if strings.Contains(out.Stdout+out.Stderr, secret) {
			t.Errorf("the suite's output holds an API client's token")
		}
	}

	// Every test ran (none skipped: PAVED_URL reached the suite) and passed.
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("jest wrote no report: %v", err)
	}
	var res jestResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("jest's report: %v", err)
	}
	var names []string
	for _, f := range res.TestResults {
		for _, a := range f.AssertionResults {
			names = append(names, a.Status+": "+a.FullName)
		}
	}
	sort.Strings(names)
	t.Logf("jest: %d tests\n%s", res.NumTotalTests, strings.Join(names, "\n"))
	if !res.Success || res.NumFailedTests != 0 || res.NumPendingTests != 0 || res.NumTodoTests != 0 || res.NumPassedTests != res.NumTotalTests {
		t.Fatalf("jest: %d passed, %d failed, %d skipped of %d", res.NumPassedTests, res.NumFailedTests, res.NumPendingTests, res.NumTotalTests)
	}
	if !strings.Contains(strings.Join(names, "\n"), "passed: paved:run against paved submits a recovered task once") {
		t.Fatalf("the suite against paved did not run")
	}

	// What paved holds: only Backstage's runs, each under its own key, from
	// the client that sent it; the limited client only its own action; and
	// never more than one pipeline per run.
	var list struct {
		Runs []struct {
			ID             string `json:"id"`
			State          string `json:"state"`
			ApprovedDigest string `json:"approvedDigest"`
			Request        struct {
				Portal      string `json:"portal"`
				PortalRunID string `json:"portalRunId"`
				Action      string `json:"action"`
				Caller      string `json:"caller"`
			} `json:"request"`
		} `json:"runs"`
	}
	if code := e.API("GET", "/api/v1/runs?limit=1000", &list); code != http.StatusOK {
		t.Fatalf("list runs: %d", code)
	}
	if len(list.Runs) == 0 {
		t.Fatal("paved holds no run")
	}
	keys := map[string]string{}
	for _, r := range list.Runs {
		q := r.Request
		if q.Portal != "backstage" || !strings.HasPrefix(q.PortalRunID, "backstage:") {
			t.Errorf("run %s: portal %q, key %q; want Backstage's", r.ID, q.Portal, q.PortalRunID)
		}
		if prev, dup := keys[q.PortalRunID]; dup {
			t.Errorf("runs %s and %s share the key %s", prev, r.ID, q.PortalRunID)
		}
		keys[q.PortalRunID] = r.ID
		switch {
		case q.Caller == "backstage":
		case q.Caller == "limited" && q.Action == "add-sqs-queue":
		default:
			t.Errorf("run %s of %s was recorded for caller %q", r.ID, q.Action, q.Caller)
		}
	}
	// One pipeline a run; an approved run has two: its preview's, then the
	// apply's.
	want := map[string]int{}
	for _, r := range list.Runs {
		want[r.ID] = 1
		if r.ApprovedDigest != "" {
			want[r.ID] = 2
		}
	}
	for id, n := range e.GitLab.RunIDCounts() {
		if n != want[id] {
			t.Errorf("run %s has %d pipelines, want %d", id, n, want[id])
		}
	}
}
