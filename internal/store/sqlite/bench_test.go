package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
	"github.com/paved-idp/paved/internal/store/storetest"
)

// BenchmarkReportDelivery measures the store's share of delivering one
// report: claim it, then complete it.
func BenchmarkReportDelivery(b *testing.B) {
	ctx := context.Background()
	st := sqlitetest.Open(b)
	for i := 0; i < b.N; i++ {
		var ch store.Change
		ch.Report(run.Report{Log: "line"})
		if _, _, err := st.CreateRun(ctx, storetest.NewRun(fmt.Sprint(i), fmt.Sprint("svc-", i%50), time.Now().UTC()), ch); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tasks, err := st.Claim(ctx, store.KindReport, time.Minute, 1)
		if err != nil || len(tasks) != 1 {
			b.Fatalf("claim: %v %d", err, len(tasks))
		}
		if err := st.Complete(ctx, tasks[0].ID); err != nil {
			b.Fatal(err)
		}
	}
}
