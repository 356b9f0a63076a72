package intake

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkSubmit is intake's share of a webhook: schema, policy and the
// durable record, with 32 submissions in flight (the store's group commit
// lets them share transactions).
func BenchmarkSubmit(b *testing.B) {
	s, _ := setup(b)
	var n atomic.Int64
	b.SetParallelism(16) // x GOMAXPROCS goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			req := bucketReq(fmt.Sprint("bench-", i), "dana@acme.example", "dev")
			req.Entity.Identifier = fmt.Sprint("svc-", i%64)
			if _, _, err := s.Submit(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
