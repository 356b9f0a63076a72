package load

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A busy box, made by the harness so that anyone can re-run it:
// PAVED_LOAD_BUSY=N starts N processes that spin for the whole run, at
// the default priority, beside paved (the neighbours of a shared machine).

// startNeighbours starts n spinning processes at nice 0 and stops them when
// t ends.
func startNeighbours(t *testing.T, n int) {
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start a busy neighbour: %v", err)
		}
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, 0)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	if n > 0 {
		note("%d busy neighbours spin beside paved for the whole run (PAVED_LOAD_BUSY)", n)
	}
}

func busyNeighbours(t *testing.T) int {
	v := os.Getenv("PAVED_LOAD_BUSY")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("PAVED_LOAD_BUSY=%q: want a number of spinning processes", v)
	}
	return n
}

// protectGenerator raises this process's threads (the load generator and
// the simulators) to nice -10 for an open-loop trial, so that on a busy box
// the sender keeps its schedule and the latency measured is paved's, not
// the instrument's. Linux nice is per thread; threads started later inherit
// it from the thread that starts them. PAVED_LOAD_PROTECT=0 leaves the
// generator at its priority (as rounds one to nine measured). It returns
// what it did and the function that puts every thread back.
func protectGenerator() (string, func()) {
	if os.Getenv("PAVED_LOAD_PROTECT") == "0" {
		return "generator not protected (PAVED_LOAD_PROTECT=0)", func() {}
	}
	before := map[int]int{}
	for _, tid := range threads() {
		nice, err := threadNice(tid)
		if err != nil {
			continue // the thread has ended
		}
		err = syscall.Setpriority(syscall.PRIO_PROCESS, tid, -10)
		if err == syscall.ESRCH {
			continue // ended since it was read
		}
		before[tid] = nice
		if err != nil {
			for tid, nice := range before {
				_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
			}
			return fmt.Sprintf("generator not protected (%v: needs root or CAP_SYS_NICE)", err), func() {}
		}
	}
	return "generator at nice -10", func() {
		base := 0
		for _, nice := range before {
			base = nice
			break
		}
		for _, tid := range threads() {
			nice, ok := before[tid]
			if !ok {
				nice = base // started during the trial
			}
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
		}
	}
}

func threads() []int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil
	}
	var tids []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids
}

// threadNice reads a thread's nice value (field 19 of its stat).
func threadNice(tid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // the name may hold spaces
	if len(fields) < 17 {
		return 0, fmt.Errorf("thread %d: short stat", tid)
	}
	return strconv.Atoi(fields[16])
}

// serverHist is paved's own histogram of one route's latency
// (paved_http_request_seconds, from the router's first middleware to the
// answer written): cumulative counts by upper bound, +Inf last.
type serverHist struct {
	bounds []float64
	counts []float64
}

// scrapeHist reads route's POST histogram from paved's /metrics.
func scrapeHist(baseURL, route string) (serverHist, error) {
	resp, err := loadClient.Get(baseURL + "/metrics")
	if err != nil {
		return serverHist{}, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverHist{}, fmt.Errorf("scrape metrics: HTTP %d", resp.StatusCode)
	}
	var h serverHist
	want := `paved_http_request_seconds_bucket{method="POST",route="` + route + `",le="`
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), want)
		if !ok {
			continue
		}
		le, rest, ok := strings.Cut(line, `"} `)
		if !ok {
			return serverHist{}, fmt.Errorf("scrape metrics: bad bucket line %q", sc.Text())
		}
		bound, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		count, err2 := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err1 != nil || err2 != nil {
			return serverHist{}, fmt.Errorf("scrape metrics: bad bucket line %q", sc.Text())
		}
		h.bounds, h.counts = append(h.bounds, bound), append(h.counts, count)
	}
	if err := sc.Err(); err != nil {
		return serverHist{}, fmt.Errorf("scrape metrics: %w", err)
	}
	if len(h.bounds) == 0 || !math.IsInf(h.bounds[len(h.bounds)-1], 1) || !slices.IsSorted(h.bounds) {
		return serverHist{}, fmt.Errorf("scrape metrics: no histogram for POST %s", route)
	}
	return h, nil
}

// since is the histogram of the requests observed after earlier.
func (h serverHist) since(earlier serverHist) serverHist {
	d := serverHist{bounds: h.bounds, counts: slices.Clone(h.counts)}
	if slices.Equal(earlier.bounds, h.bounds) {
		for i := range d.counts {
			d.counts[i] -= earlier.counts[i]
		}
	}
	return d
}

func (h serverHist) total() float64 { return h.counts[len(h.counts)-1] }

// quantile interpolates linearly within the bucket that holds q, as
// Prometheus's histogram_quantile does; in the +Inf bucket it answers the
// highest finite bound (a floor).
func (h serverHist) quantile(q float64) time.Duration {
	n := h.total()
	if n == 0 {
		return 0
	}
	rank := q * n
	lower, below := 0.0, 0.0
	for i, c := range h.counts {
		if c >= rank {
			if math.IsInf(h.bounds[i], 1) {
				return seconds(lower)
			}
			if c == below {
				return seconds(h.bounds[i])
			}
			return seconds(lower + (h.bounds[i]-lower)*(rank-below)/(c-below))
		}
		lower, below = h.bounds[i], c
	}
	return seconds(lower)
}

// within is the share of requests answered within bound (which should be
// one of the histogram's bounds).
func (h serverHist) within(bound float64) float64 {
	for i, b := range h.bounds {
		if b >= bound && h.total() > 0 {
			return h.counts[i] / h.total()
		}
	}
	return math.NaN()
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// TestServerHist checks the histogram reader against a /metrics page in
// Prometheus's text format, and its quantiles against hand-computed ones.
func TestServerHist(t *testing.T) {
	page := func(counts ...int) string {
		var b strings.Builder
		b.WriteString("# TYPE paved_http_request_seconds histogram\n")
		b.WriteString(`paved_http_request_seconds_bucket{method="GET",route="/readyz",le="0.01"} 99` + "\n")
		for i, le := range []string{"0.01", "0.02", "0.05", "+Inf"} {
			fmt.Fprintf(&b, "paved_http_request_seconds_bucket{method=\"POST\",route=\"/webhooks/port\",le=%q} %d\n", le, counts[i])
		}
		b.WriteString(`paved_http_request_seconds_count{method="POST",route="/webhooks/port"} 0` + "\n")
		return b.String()
	}
	var body string
	srv := newTextServer(t, func() string { return body })
	body = page(10, 10, 10, 10)
	before, err := scrapeHist(srv, "/webhooks/port")
	if err != nil {
		t.Fatal(err)
	}
	// 100 more: 50 within 10 ms, 40 in (10, 20], 9 in (20, 50], 1 above.
	body = page(60, 100, 109, 110)
	after, err := scrapeHist(srv, "/webhooks/port")
	if err != nil {
		t.Fatal(err)
	}
	h := after.since(before)
	if h.total() != 100 {
		t.Fatalf("total %v, want 100", h.total())
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{.5, 10 * time.Millisecond},   // the 50th of 100 is the last within 10 ms
		{.7, 15 * time.Millisecond},   // half-way through (10, 20]
		{.99, 50 * time.Millisecond},  // the 99th is the last of (20, 50]
		{.999, 50 * time.Millisecond}, // in +Inf: the highest finite bound
	} {
		if got := h.quantile(c.q); got.Round(time.Microsecond) != c.want {
			t.Errorf("quantile(%v) = %s, want %s", c.q, got, c.want)
		}
	}
	if got := h.within(.02); got != .9 {
		t.Errorf("within 20 ms: %v, want 0.9", got)
	}
	body = "no histogram here\n"
	if _, err := scrapeHist(srv, "/webhooks/port"); err == nil {
		t.Error("a page without the histogram was read without an error")
	}
}

// newTextServer serves body() at /metrics and returns its base URL.
func newTextServer(t *testing.T, body func() string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body())
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// protectGenerator raises every thread of the process to nice -10 and puts
// each back afterwards.
func TestProtectGeneratorRenicesEveryThreadAndBack(t *testing.T) {
	t.Setenv("PAVED_LOAD_PROTECT", "")
	niceOf := func() map[int]int {
		out := map[int]int{}
		for _, tid := range threads() {
			if n, err := threadNice(tid); err == nil {
				out[tid] = n
			}
		}
		return out
	}
	before := niceOf()
	what, restore := protectGenerator()
	if strings.Contains(what, "not protected") {
		t.Skip(what) // not root, no CAP_SYS_NICE
	}
	for tid, n := range niceOf() {
		if _, old := before[tid]; old && n != -10 {
			t.Errorf("thread %d at nice %d during the trial, want -10", tid, n)
		}
	}
	restore()
	for tid, n := range niceOf() {
		if was, old := before[tid]; old && n != was {
			t.Errorf("thread %d at nice %d after the trial, want %d again", tid, n, was)
		}
	}
}
