package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
	"github.com/paved-idp/paved/internal/store/storetest"
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
