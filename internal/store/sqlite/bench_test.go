package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
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

// BenchmarkCreateRun measures what the single writer pays for a new run:
// the run alone, with four events, with two tasks, and with both (the
// intake's shape), from 32 callers so that group commit batches them.
func BenchmarkCreateRun(b *testing.B) {
	for _, shape := range []struct {
		name          string
		events, tasks int
	}{{"run", 0, 0}, {"run+4ev", 4, 0}, {"run+2task", 0, 2}, {"intake", 4, 2}} {
		b.Run(shape.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "p.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var n atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					var ch store.Change
					for j := range shape.events {
						ch.Add(fmt.Sprintf("event number %d of the intake, about this long", j))
					}
					if shape.tasks > 0 {
						ch.Report(run.Report{StatusLabel: "Queued: 3 runs ahead on acme/dev/svc", Log: "paved accepted run r_x: add-s3-bucket on stack acme/dev/svc"})
						ch.Tasks = append(ch.Tasks, store.NewTask{Kind: store.KindDispatch, Payload: struct{}{}})
					}
					r := storetest.NewRun(fmt.Sprint("p-", i), fmt.Sprint("svc-", i%256), time.Now().UTC())
					if _, _, err := s.CreateRun(ctx, r, ch); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
