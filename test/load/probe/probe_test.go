package probe

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

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
	before, err := ScrapeHist(http.DefaultClient, srv, "/webhooks/port")
	if err != nil {
		t.Fatal(err)
	}
	// 100 more: 50 within 10 ms, 40 in (10, 20], 9 in (20, 50], 1 above.
	body = page(60, 100, 109, 110)
	after, err := ScrapeHist(http.DefaultClient, srv, "/webhooks/port")
	if err != nil {
		t.Fatal(err)
	}
	h := after.Since(before)
	if h.Total() != 100 {
		t.Fatalf("total %v, want 100", h.Total())
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
		if got := h.Quantile(c.q); got.Round(time.Microsecond) != c.want {
			t.Errorf("quantile(%v) = %s, want %s", c.q, got, c.want)
		}
	}
	if got := h.Within(.02); got != .9 {
		t.Errorf("within 20 ms: %v, want 0.9", got)
	}
	body = "no histogram here\n"
	if _, err := ScrapeHist(http.DefaultClient, srv, "/webhooks/port"); err == nil {
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

// ProtectGenerator raises every thread of the process to nice -10 and puts
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
	what, restore := ProtectGenerator()
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
