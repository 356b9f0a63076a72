package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
	"github.com/paved-idp/paved/internal/store/storetest"
	"github.com/paved-idp/paved/internal/telemetry"
)

func TestStoreMetrics(t *testing.T) {
	st := sqlitetest.Open(t)
	r := storetest.NewRun("p1", "svc", time.Now().UTC())
	if _, _, err := st.CreateRun(context.Background(), r, store.Change{Tasks: []store.NewTask{{Kind: store.KindDispatch}}}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newStoreCollector(st))
	want := `
# HELP paved_outbox_pending Open outbox tasks by kind (dispatch, report, cancel).
# TYPE paved_outbox_pending gauge
paved_outbox_pending{kind="cancel"} 0
paved_outbox_pending{kind="dispatch"} 1
paved_outbox_pending{kind="report"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "paved_outbox_pending"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "paved_runs"); err != nil || n != 10 {
		t.Fatalf("paved_runs series = %d, %v", n, err)
	}
}

func TestOutboxOldestDueAge(t *testing.T) {
	st := sqlitetest.Open(t)
	created := time.Now().UTC()
	r := storetest.NewRun("p1", "svc", created)
	if _, _, err := st.CreateRun(context.Background(), r, *(&store.Change{}).Report(run.Report{Log: "hello"})); err != nil {
		t.Fatal(err)
	}
	c := newStoreCollector(st)
	c.now = func() time.Time { return created.Add(90 * time.Second) } // the scrape comes 90 s later
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	got, err := testutil.GatherAndCount(reg, "paved_outbox_oldest_due_seconds")
	if err != nil || got != 3 {
		t.Fatalf("series = %d, %v", got, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ages := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "paved_outbox_oldest_due_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			ages[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	// The report was due when written (within the test's own run time).
	if a := ages[store.KindReport]; a < 85 || a > 95 {
		t.Errorf("report age %.1fs, want ~90s", a)
	}
	if ages[store.KindDispatch] != 0 || ages[store.KindCancel] != 0 {
		t.Errorf("empty kinds have ages %v", ages)
	}
}

func TestFinishCounterCountsEachFinalTransitionOnce(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	st := finishCounter{Store: sqlitetest.Open(t), m: m}
	queued := storetest.NewRun("p1", "svc", time.Now().UTC())
	rejected := storetest.NewRun("p2", "svc2", time.Now().UTC())
	rejected.State = run.Rejected
	for _, r := range []*run.Run{queued, rejected} {
		if _, _, err := st.CreateRun(ctx, r, store.Change{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := st.CreateRun(ctx, storetest.NewRun("p2", "svc2", time.Now().UTC()), store.Change{}); err != nil {
		t.Fatal(err) // a repeated delivery is not a second rejection
	}
	cancel := func(r *run.Run) (store.Change, error) { return store.Change{}, r.MoveTo(run.Canceled, time.Now()) }
	if _, err := st.Update(ctx, queued.ID, cancel); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, queued.ID, cancel); err == nil {
		t.Fatal("a second cancel was allowed")
	}
	noop := func(*run.Run) (store.Change, error) { return store.Change{}, store.ErrNoChange }
	if _, err := st.Update(ctx, queued.ID, noop); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP paved_runs_finished_total Runs that reached a final state, by action and state (rejected, succeeded, failed, canceled, timed_out).
# TYPE paved_runs_finished_total counter
paved_runs_finished_total{action="add-s3-bucket",state="canceled"} 1
paved_runs_finished_total{action="add-s3-bucket",state="rejected"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "paved_runs_finished_total"); err != nil {
		t.Fatal(err)
	}
}
