package gitlab

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/gitlab/naming"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
)

// tally counts the requests a client makes by kind ("name" for a list by
// name, "list" for others, "variables", "get", "create") and by whether
// GitLab answered 2xx.
type tally struct {
	mu     sync.Mutex
	ok, no map[string]int
}

func newTally() *tally { return &tally{ok: map[string]int{}, no: map[string]int{}} }

func (c *tally) RoundTrip(r *http.Request) (*http.Response, error) {
	kind := "get"
	switch p := r.URL.EscapedPath(); {
	case r.Method == http.MethodPost:
		kind = "create"
	case strings.HasSuffix(p, "/pipelines") && r.URL.Query().Has("name"):
		kind = "name"
	case strings.HasSuffix(p, "/pipelines"):
		kind = "list"
	case strings.HasSuffix(p, "/variables"):
		kind = "variables"
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && resp.StatusCode/100 == 2 {
		c.ok[kind]++
	} else {
		c.no[kind]++
	}
	return resp, err
}

// counts returns the 2xx and the failed requests of kind so far.
func (c *tally) counts(kind string) (ok, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok[kind], c.no[kind]
}

// fill creates n pipelines on main in project, the i-th carrying run id
// "r_<i>", without going through the client.
func fill(t *testing.T, sim *gitlabsim.Sim, project string, n int) []gitlabsim.Pipeline {
	t.Helper()
	out := make([]gitlabsim.Pipeline, 0, n)
	for i := 0; i < n; i++ {
		p, err := sim.CreatePipeline(gitlabsim.NewPipeline{Project: project, Ref: "main",
			Variables: []gitlabsim.Variable{{Key: RunIDVariable, Value: "r_" + strconv.Itoa(i)}}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestReconcileByNameIsOneRequest: with 1,000 runs' pipelines in the
// project and a fifth of GitLab's answers failing, finding a run's pipeline
// is one successful request and reads no variables.
func TestReconcileByNameIsOneRequest(t *testing.T) {
	counts := newTally()
	sim, c := setup(t, gitlabsim.Config{Seed: 7}, Options{HTTPClient: &http.Client{Transport: counts}})
	since := time.Now()
	all := fill(t, sim, "grp/svc", 1000)
	sim.SetFaults(gitlabsim.Faults{ServerErrorRate: 0.2})

	for _, i := range []int{0, 517, 999} {
		before, _ := counts.counts("name")
		p, found, err := c.FindByRunID(context.Background(), "grp/svc", "main", since, "r_"+strconv.Itoa(i), 0)
		if err != nil || !found || p.ID != all[i].ID || p.Name != naming.PipelineName("r_"+strconv.Itoa(i)) {
			t.Fatalf("run %d: %+v, %v, %v; want pipeline #%d", i, p, found, err, all[i].ID)
		}
		if after, _ := counts.counts("name"); after-before != 1 {
			t.Errorf("run %d: %d successful lookups by name, want 1", i, after-before)
		}
	}
	for _, kind := range []string{"list", "variables", "get"} {
		if ok, failed := counts.counts(kind); ok+failed != 0 {
			t.Errorf("made %d %s requests besides the lookups by name", ok+failed, kind)
		}
	}
}

// TestFallbackScanResumesAcrossFailures: in a project whose pipelines have
// no name, the scan reads their variables; every error surfaces (no
// retries) and the caller simply asks again, as the dispatcher does. Each
// page is listed once and each pipeline's variables read once: the scan
// resumes where it stopped instead of restarting, which could never get
// through 1,010 requests in a row at a 20 % failure rate.
func TestFallbackScanResumesAcrossFailures(t *testing.T) {
	counts := newTally()
	sim, c := setup(t, gitlabsim.Config{Seed: 11, NoWorkflowName: true}, Options{Retries: -1, HTTPClient: &http.Client{Transport: counts}})
	since := time.Now()
	all := fill(t, sim, "grp/svc", 1000) // ten pages of 100; r_999 is the last one
	sim.SetFaults(gitlabsim.Faults{ServerErrorRate: 0.2})

	attempts, errs := 0, 0
	for {
		attempts++
		if attempts > 5000 {
			t.Fatalf("no result after %d attempts", attempts)
		}
		p, found, err := c.FindByRunID(context.Background(), "grp/svc", "main", since, "r_999", 0)
		if err != nil {
			if IsPermanent(err) {
				t.Fatal(err)
			}
			errs++
			continue
		}
		if !found || p.ID != all[999].ID || p.RunID != "r_999" {
			t.Fatalf("found %v %+v, want pipeline #%d", found, p, all[999].ID)
		}
		break
	}
	pages, _ := counts.counts("list")
	if pages != 10 {
		t.Errorf("listed %d pages in all, want each of the 10 once", pages)
	}
	if vars, _ := counts.counts("variables"); vars != 1000 {
		t.Errorf("read variables successfully %d times, want once per pipeline (1000)", vars)
	}
	t.Logf("%d attempts, %d of them failed; %d pages listed", attempts, errs, pages)
}

// TestFallbackScanResumesAfterAMiss: a scan that found nothing keeps its
// place, so the next reconcile of the same run lists only the last page
// (which has grown) and reads only the new pipeline's variables.
func TestFallbackScanResumesAfterAMiss(t *testing.T) {
	counts := newTally()
	sim, c := setup(t, gitlabsim.Config{NoWorkflowName: true}, Options{HTTPClient: &http.Client{Transport: counts}})
	ctx := context.Background()
	since := time.Now()
	fill(t, sim, "grp/svc", 250)
	if _, found, err := c.FindByRunID(ctx, "grp/svc", "main", since, "r_late", 0); err != nil || found {
		t.Fatalf("found %v, %v; want nothing yet", found, err)
	}
	listsBefore, _ := counts.counts("list")
	varsBefore, _ := counts.counts("variables")
	late, err := sim.CreatePipeline(gitlabsim.NewPipeline{Project: "grp/svc", Ref: "main",
		Variables: []gitlabsim.Variable{{Key: RunIDVariable, Value: "r_late"}}})
	if err != nil {
		t.Fatal(err)
	}
	p, found, err := c.FindByRunID(ctx, "grp/svc", "main", since, "r_late", 0)
	if err != nil || !found || p.ID != late.ID {
		t.Fatalf("found %v %+v, %v; want #%d", found, p, err, late.ID)
	}
	lists, _ := counts.counts("list")
	vars, _ := counts.counts("variables")
	// Page 3 again (the lookup by name aside), and the new pipeline's variables.
	if lists-listsBefore != 1 || vars-varsBefore != 1 {
		t.Errorf("second reconcile listed %d pages and read %d variables, want 1 and 1", lists-listsBefore, vars-varsBefore)
	}
	c.mu.Lock()
	n := len(c.cursors)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("%d cursors left after the run's pipeline was found", n)
	}
}

// TestFoundByNameOnlyOnTheRunsRef: a named pipeline on another ref is not
// the run's, even if a list answers with it (GitLab's ref filter also
// matches reserved merge-request refs).
func TestFoundByNameOnlyOnTheRunsRef(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		var list []map[string]any
		if r.URL.Query().Get("name") != "" {
			list = append(list, map[string]any{"id": 9, "project_id": 5, "ref": "refs/merge-requests/1/head",
				"name": naming.PipelineName("r_1"), "source": "api", "status": "running"})
		}
		_ = json.NewEncoder(w).Encode(list)
	}))
	defer srv.Close()
	c, err := New(srv.URL, token, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p, found, err := c.FindByRunID(context.Background(), "5", "main", time.Now(), "r_1", 0); err != nil || found {
		t.Fatalf("found %v %+v, %v; want nothing", found, p, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) != 2 || !strings.Contains(queries[0], "name=paved+r_1") || !strings.Contains(queries[0], "source=api") ||
		!strings.Contains(queries[0], "ref=main") || !strings.Contains(queries[1], "created_after=") ||
		!strings.Contains(queries[1], "order_by=id") || !strings.Contains(queries[1], "sort=asc") {
		t.Errorf("queries %q: want a lookup by name, then the fallback scan by id ascending", queries)
	}
}

func TestCursorsAreBounded(t *testing.T) {
	c, err := New("http://gitlab.invalid", token, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < maxCursors+50; i++ {
		c.saveCursor(cursorKey{"p", "main", "r_" + strconv.Itoa(i)}, &cursor{page: 2})
	}
	if n := len(c.cursors); n != maxCursors {
		t.Fatalf("%d cursors, want at most %d", n, maxCursors)
	}
	last := cursorKey{"p", "main", "r_" + strconv.Itoa(maxCursors+49)}
	if got := c.loadCursor(last, time.Time{}); got.page != 2 {
		t.Errorf("the latest cursor was evicted: %+v", got)
	}
}

// ignoreNameFilter serves GitLab as 16.3 to 16.8 are without the
// pipeline_name_search flag (doc/api/pipelines.md, "List project
// pipelines": `name` in the response is generally available from 16.3, in
// the request from 16.9): every pipeline is listed with its name, and the
// name filter is dropped.
func ignoreNameFilter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		q.Del("name")
		r = r.Clone(r.Context())
		r.URL.RawQuery = q.Encode()
		next.ServeHTTP(w, r)
	})
}

// TestScanJudgesNamedPipelinesByTheirName: where GitLab ignores the name
// filter, the lookup by name finds nothing and the scan walks every page,
// but a pipeline named "paved <run id>" is judged by its name: the other
// runs' are skipped and the run's own adopted without reading any variables.
func TestScanJudgesNamedPipelinesByTheirName(t *testing.T) {
	counts := newTally()
	sim, c := setupServed(t, gitlabsim.Config{}, Options{HTTPClient: &http.Client{Transport: counts}}, ignoreNameFilter)
	ctx := context.Background()
	since := time.Now()
	all := fill(t, sim, "grp/svc", 1000)

	p, found, err := c.FindByRunID(ctx, "grp/svc", "main", since, "r_999", 0)
	if err != nil || !found || p.ID != all[999].ID || p.RunID != "r_999" || !p.RunIDFromName || p.Ref != "main" {
		t.Fatalf("found %v %+v, %v; want #%d, proven by its name", found, p, err, all[999].ID)
	}
	if _, found, err := c.FindByRunID(ctx, "grp/svc", "main", since, "r_nope", 0); err != nil || found {
		t.Fatalf("r_nope: found %v, %v", found, err)
	}
	lists, _ := counts.counts("list")
	names, _ := counts.counts("name")
	if names != 2 || lists != 20 {
		t.Errorf("%d lookups by name and %d pages listed, want 2 and each run's 10 pages", names, lists)
	}
	for _, kind := range []string{"variables", "get"} {
		if ok, failed := counts.counts(kind); ok+failed != 0 {
			t.Errorf("%d %s requests, want none: every pipeline is named", ok+failed, kind)
		}
	}
}

// namedBy creates a pipeline on main in grp/svc carrying runID whose name
// (in a project named by workflow:name "$PIPELINE_NAME") is name, "" for none.
func namedBy(t *testing.T, sim *gitlabsim.Sim, runID, name string) gitlabsim.Pipeline {
	t.Helper()
	vars := []gitlabsim.Variable{{Key: RunIDVariable, Value: runID}}
	if name != "" {
		vars = append(vars, gitlabsim.Variable{Key: "PIPELINE_NAME", Value: name})
	}
	p, err := sim.CreatePipeline(gitlabsim.NewPipeline{Project: "grp/svc", Ref: "main", Variables: vars})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != name {
		t.Fatalf("pipeline named %q, want %q", p.Name, name)
	}
	return p
}

// TestScanReadsVariablesOfUnnamedPipelinesOnly: among named pipelines, the
// unnamed ones still have their PAVED_RUN_ID read, and the run's unnamed
// pipeline is found by it; no named pipeline's variables are read.
func TestScanReadsVariablesOfUnnamedPipelinesOnly(t *testing.T) {
	counts := newTally()
	sim, c := setup(t, gitlabsim.Config{WorkflowName: "$PIPELINE_NAME"}, Options{HTTPClient: &http.Client{Transport: counts}})
	since := time.Now()
	var want gitlabsim.Pipeline
	for i := 0; i < 250; i++ {
		id := "r_" + strconv.Itoa(i)
		switch {
		case i == 155:
			want = namedBy(t, sim, "r_ours", "")
		case i == 100:
			// Judged by its name, which says another run's: never the
			// run's, whatever its variables say.
			namedBy(t, sim, "r_ours", naming.PipelineName("r_other"))
		case i%10 == 0:
			namedBy(t, sim, id, "")
		default:
			namedBy(t, sim, id, naming.PipelineName(id))
		}
	}
	p, found, err := c.FindByRunID(context.Background(), "grp/svc", "main", since, "r_ours", 0)
	if err != nil || !found || p.ID != want.ID || p.RunID != "r_ours" || p.RunIDFromName {
		t.Fatalf("found %v %+v, %v; want #%d by its variables", found, p, err, want.ID)
	}
	// The unnamed pipelines up to the run's: 0, 10, …, 150 but 100, and its own.
	if ok, failed := counts.counts("variables"); ok != 16 || failed != 0 {
		t.Errorf("read variables %d times (%d failed), want the 16 unnamed pipelines' up to the run's", ok, failed)
	}
	if lists, _ := counts.counts("list"); lists != 2 {
		t.Errorf("listed %d pages, want 2", lists)
	}
}

// TestNoScanOnceTheRefNamesItsRuns: when GitLab filters by name and the ref's
// pipelines since the dispatch all carry their run's name, a lookup by name
// that finds nothing is the answer: the first reconcile lists one page to
// see that, later ones none. A pipeline without a name seen since then puts
// the scan back, which finds it by its variables.
func TestNoScanOnceTheRefNamesItsRuns(t *testing.T) {
	counts := newTally()
	sim, c := setup(t, gitlabsim.Config{WorkflowName: "$PIPELINE_NAME"}, Options{HTTPClient: &http.Client{Transport: counts}})
	ctx := context.Background()
	since := time.Now()
	for i := 0; i < 250; i++ {
		namedBy(t, sim, "r_"+strconv.Itoa(i), naming.PipelineName("r_"+strconv.Itoa(i)))
	}
	for i, runID := range []string{"r_lost", "r_lost", "r_also_lost"} {
		if _, found, err := c.FindByRunID(ctx, "grp/svc", "main", since, runID, 0); err != nil || found {
			t.Fatalf("%s: found %v, %v; want nothing", runID, found, err)
		}
		if lists, _ := counts.counts("list"); lists != 1 {
			t.Errorf("after %d reconciles %d pages listed, want the first reconcile's 1", i+1, lists)
		}
	}
	if ok, failed := counts.counts("variables"); ok+failed != 0 {
		t.Errorf("%d variables reads, want none", ok+failed)
	}

	// The ref's configuration lost the name: a pipeline without one, seen
	// as the poller or a hook's check sees it.
	unnamed := namedBy(t, sim, "r_unnamed", "")
	if _, err := c.Pipeline(ctx, "grp/svc", unnamed.ID); err != nil {
		t.Fatal(err)
	}
	p, found, err := c.FindByRunID(ctx, "grp/svc", "main", since, "r_unnamed", 0)
	if err != nil || !found || p.ID != unnamed.ID || p.RunIDFromName {
		t.Fatalf("found %v %+v, %v; want #%d by its variables", found, p, err, unnamed.ID)
	}
	if ok, _ := counts.counts("variables"); ok != 1 {
		t.Errorf("%d variables reads, want the unnamed pipeline's", ok)
	}
}

// A run dispatched twice (its preview's pipeline, then after an approval
// its apply's) is found by its second pipeline when the first is excluded
// by id, by name as by variables.
func TestFindSkipsAnEarlierDispatchsPipeline(t *testing.T) {
	for _, name := range []string{naming.PipelineName("r_twice"), ""} {
		sim, c := setup(t, gitlabsim.Config{WorkflowName: "$PIPELINE_NAME"}, Options{})
		since := time.Now()
		first := namedBy(t, sim, "r_twice", name)
		second := namedBy(t, sim, "r_twice", name)
		if p, found, err := c.FindByRunID(context.Background(), "grp/svc", "main", since, "r_twice", 0); err != nil || !found || p.ID != first.ID {
			t.Fatalf("named %q, after nothing: %v %+v %v, want #%d", name, found, p, err, first.ID)
		}
		if p, found, err := c.FindByRunID(context.Background(), "grp/svc", "main", since, "r_twice", first.ID); err != nil || !found || p.ID != second.ID {
			t.Fatalf("named %q, after #%d: %v %+v %v, want #%d", name, first.ID, found, p, err, second.ID)
		}
		if _, found, err := c.FindByRunID(context.Background(), "grp/svc", "main", since, "r_twice", second.ID); err != nil || found {
			t.Fatalf("named %q, after both: %v %v", name, found, err)
		}
	}
}
