package router

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// buckets resolve the few milliseconds a webhook's answer takes finely
// enough to read a tail from, and still reach the slow API calls.
var buckets = []float64{.001, .0025, .005, .0075, .01, .015, .02, .025, .035, .05, .1, .25, .5, 1, 2.5, 5, 10}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paved_http_requests_total", Help: "HTTP requests by route and status."}, []string{"method", "route", "status"}),
		latency:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paved_http_request_seconds", Help: "HTTP request latency by route.", Buckets: buckets}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(d.Seconds())
}
