package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/postgres"
	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
)

// BenchmarkClaimBacklog measures one claim of a batch of 32 due reports
// (then handing them back) with a backlog of 1k, 10k and 100k open report
// tasks, ten per run, as the SQLite store's benchmark of the same name
// does. Flat is the target.
func BenchmarkClaimBacklog(b *testing.B) {
	for _, backlog := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(backlog), func(b *testing.B) {
			ctx := context.Background()
			dsn := pgtest.DSN(b)
			s, err := postgres.Open(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			fill(b, s, backlog/10, 10, "svc")
			analyze(b, connect(b, dsn))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tasks, err := s.Claim(ctx, store.KindReport, time.Minute, 32)
				if err != nil || len(tasks) != 32 {
					b.Fatalf("claim: %v %d", err, len(tasks))
				}
				ids := make([]int64, len(tasks))
				for j, t := range tasks {
					ids[j] = t.ID
				}
				if err := s.Release(ctx, ids...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
