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

// BenchmarkClaimBacklog measures one claim of a batch of 32 due reports
// (then handing them back) with a backlog of 1k, 10k and 100k open report
// tasks, ten per run: only each run's oldest may be claimed, so most of the
// backlog is tasks waiting behind their run's head. Flat is the target.
func BenchmarkClaimBacklog(b *testing.B) {
	for _, backlog := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(backlog), func(b *testing.B) {
			ctx := context.Background()
			st := sqlitetest.Open(b)
			fill(b, st, backlog/10, 10)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tasks, err := st.Claim(ctx, store.KindReport, time.Minute, 32)
				if err != nil || len(tasks) != 32 {
					b.Fatalf("claim: %v %d", err, len(tasks))
				}
				ids := make([]int64, len(tasks))
				for j, t := range tasks {
					ids[j] = t.ID
				}
				if err := st.Release(ctx, ids...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fill stores runs runs with perRun report tasks each, many at once so the
// store's group commit keeps the set-up short.
func fill(b *testing.B, st interface {
	CreateRun(ctx context.Context, r *run.Run, ch store.Change) (*run.Run, bool, error)
}, runs, perRun int) {
	b.Helper()
	ctx := context.Background()
	jobs := make(chan int)
	errs := make(chan error, 64)
	for range 64 {
		go func() {
			for i := range jobs {
				var ch store.Change
				for j := range perRun {
					ch.Report(run.Report{Log: fmt.Sprint("line ", j)})
				}
				_, _, err := st.CreateRun(ctx, storetest.NewRun(fmt.Sprint("fill-", i), fmt.Sprint("svc-", i), time.Now().UTC()), ch)
				errs <- err
			}
		}()
	}
	go func() {
		for i := range runs {
			jobs <- i
		}
		close(jobs)
	}()
	for range runs {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}
