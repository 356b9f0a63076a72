package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// storeStats is what the metrics read from the store at each scrape.
type storeStats interface {
	CountByState(ctx context.Context) (map[run.State]int, error)
	Pending(ctx context.Context, kind string) (int, error)
}

// storeCollector exposes runs by state and the outbox backlog, read at
// scrape time so every replica reports the shared truth.
type storeCollector struct {
	st      storeStats
	runs    *prometheus.Desc
	pending *prometheus.Desc
	up      *prometheus.Desc
}

func newStoreCollector(st storeStats) *storeCollector {
	return &storeCollector{
		st:      st,
		runs:    prometheus.NewDesc("paved_runs", "Runs by state.", []string{"state"}, nil),
		pending: prometheus.NewDesc("paved_outbox_pending", "Open outbox tasks by kind (dispatch, report, cancel).", []string{"kind"}, nil),
		up:      prometheus.NewDesc("paved_store_up", "1 when the store answered the scrape.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.runs
	ch <- c.pending
	ch <- c.up
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.st.CountByState(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, s := range []run.State{run.Received, run.Rejected, run.AwaitingApproval, run.Queued, run.Dispatching, run.Running, run.Succeeded, run.Failed, run.Canceled, run.TimedOut} {
		ch <- prometheus.MustNewConstMetric(c.runs, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
	for _, kind := range []string{store.KindDispatch, store.KindReport, store.KindCancel} {
		if n, err := c.st.Pending(ctx, kind); err == nil {
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n), kind)
		}
	}
}
