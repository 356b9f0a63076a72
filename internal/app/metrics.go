package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
)

// storeStats is what the metrics read from the store at each scrape.
type storeStats interface {
	CountByState(ctx context.Context) (map[run.State]int, error)
	Pending(ctx context.Context, kind string) (int, error)
	Backlog(ctx context.Context, kind string) (store.Backlog, error)
}

// storeCollector exposes runs by state and the outbox backlog, read at
// scrape time so every replica reports the shared truth.
type storeCollector struct {
	st      storeStats
	now     func() time.Time
	runs    *prometheus.Desc
	pending *prometheus.Desc
	oldest  *prometheus.Desc
	up      *prometheus.Desc
}

func newStoreCollector(st storeStats) *storeCollector {
	return &storeCollector{
		st:      st,
		now:     time.Now,
		runs:    prometheus.NewDesc("paved_runs", "Runs by state.", []string{"state"}, nil),
		pending: prometheus.NewDesc("paved_outbox_pending", "Open outbox tasks by kind (dispatch, report, cancel).", []string{"kind"}, nil),
		oldest: prometheus.NewDesc("paved_outbox_oldest_due_seconds",
			"How long the oldest claimable outbox task of a kind has been due (0: none is due); growing means the workers fall behind.", []string{"kind"}, nil),
		up: prometheus.NewDesc("paved_store_up", "1 when the store answered the scrape.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.runs
	ch <- c.pending
	ch <- c.oldest
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
		b, err := c.st.Backlog(ctx, kind)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(b.Depth), kind)
		age := 0.0
		if !b.OldestDue.IsZero() {
			age = max(0, c.now().Sub(b.OldestDue).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, kind)
	}
}

// finishCounter counts runs reaching their final state where every
// transition is committed, the store, so that no path (intake, dispatch,
// tracking, cancel, timeout) is missed or counted twice.
type finishCounter struct {
	Store
	m *telemetry.Metrics
}

func (s finishCounter) CreateRun(ctx context.Context, r *run.Run, ch store.Change) (*run.Run, bool, error) {
	out, created, err := s.Store.CreateRun(ctx, r, ch)
	if err == nil && created {
		s.m.RunFinished(out) // rejected at intake
	}
	return out, created, err
}

func (s finishCounter) Update(ctx context.Context, id string, fn func(*run.Run) (store.Change, error)) (*run.Run, error) {
	var from run.State
	out, err := s.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		from = r.State
		return fn(r)
	})
	if err == nil && out != nil && !from.Terminal() {
		s.m.RunFinished(out)
	}
	return out, err
}
