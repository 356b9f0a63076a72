// Package worker holds what paved's background workers share: the tick loop
// and the retry delay.
package worker

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Loop calls tick every interval, and at once when wake fires, until ctx
// ends. A tick that reports more work (busy) is followed by another at once.
// The context a tick gets outlives ctx by drain, so that work in flight at
// shutdown can finish instead of being cut off halfway.
func Loop(ctx context.Context, interval, drain time.Duration, wake <-chan struct{}, tick func(context.Context) (busy bool)) {
	taskCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(drain, cancel) })
	defer stop()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for ctx.Err() == nil && tick(taskCtx) {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// Waker is a non-blocking, coalescing wake-up signal.
type Waker chan struct{}

// NewWaker makes a Waker.
func NewWaker() Waker { return make(Waker, 1) }

// Wake signals without blocking; signals that pile up fold into one.
func (w Waker) Wake() {
	select {
	case w <- struct{}{}:
	default:
	}
}

// Backoff is the delay before retry number attempt (1-based): exponential
// from base, capped at max, with full jitter in its upper half so that many
// failing tasks do not retry in step.
func Backoff(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

// Pool runs n workers that each take one task at a time with next and
// handle it, until next finds nothing, next fails, or stop fires; a slow
// task holds up only its own worker. It returns how many tasks were taken
// and the first error of next.
func Pool[T any](ctx context.Context, stop <-chan struct{}, n int, next func(context.Context) (T, bool, error), handle func(context.Context, T)) (int, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		taken int
		first error
	)
	for range max(n, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !Stopped(stop) && ctx.Err() == nil {
				t, ok, err := next(ctx)
				if err != nil || !ok {
					mu.Lock()
					if first == nil && ctx.Err() == nil { // not an error to stop at shutdown
						first = err
					}
					mu.Unlock()
					return
				}
				mu.Lock()
				taken++
				mu.Unlock()
				handle(ctx, t)
			}
		}()
	}
	wg.Wait()
	return taken, first
}

// Stopped reports whether stop has fired (a nil stop never does).
func Stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
