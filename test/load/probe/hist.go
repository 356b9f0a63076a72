package probe

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hist is paved's own histogram of one route's latency
// (paved_http_request_seconds, from the router's first middleware to the
// answer written): cumulative counts by upper bound, +Inf last.
type Hist struct {
	bounds []float64
	counts []float64
}

// ScrapeHist reads route's POST histogram from paved's /metrics.
func ScrapeHist(client *http.Client, baseURL, route string) (Hist, error) {
	resp, err := client.Get(baseURL + "/metrics")
	if err != nil {
		return Hist{}, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Hist{}, fmt.Errorf("scrape metrics: HTTP %d", resp.StatusCode)
	}
	var h Hist
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
			return Hist{}, fmt.Errorf("scrape metrics: bad bucket line %q", sc.Text())
		}
		bound, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		count, err2 := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err1 != nil || err2 != nil {
			return Hist{}, fmt.Errorf("scrape metrics: bad bucket line %q", sc.Text())
		}
		h.bounds, h.counts = append(h.bounds, bound), append(h.counts, count)
	}
	if err := sc.Err(); err != nil {
		return Hist{}, fmt.Errorf("scrape metrics: %w", err)
	}
	if len(h.bounds) == 0 || !math.IsInf(h.bounds[len(h.bounds)-1], 1) || !slices.IsSorted(h.bounds) {
		return Hist{}, fmt.Errorf("scrape metrics: no histogram for POST %s", route)
	}
	return h, nil
}

// Since is the histogram of the requests observed after earlier.
func (h Hist) Since(earlier Hist) Hist {
	d := Hist{bounds: h.bounds, counts: slices.Clone(h.counts)}
	if slices.Equal(earlier.bounds, h.bounds) {
		for i := range d.counts {
			d.counts[i] -= earlier.counts[i]
		}
	}
	return d
}

func (h Hist) Total() float64 { return h.counts[len(h.counts)-1] }

// Quantile interpolates linearly within the bucket that holds q, as
// Prometheus's histogram_quantile does; in the +Inf bucket it answers the
// highest finite bound (a floor).
func (h Hist) Quantile(q float64) time.Duration {
	n := h.Total()
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

// Within is the share of requests answered within bound (which should be
// one of the histogram's bounds).
func (h Hist) Within(bound float64) float64 {
	for i, b := range h.bounds {
		if b >= bound && h.Total() > 0 {
			return h.counts[i] / h.Total()
		}
	}
	return math.NaN()
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
