// Package worker holds what paved's background workers share: the tick loop
// and the retry delay.
package worker

import (
	"context"
	"math/rand/v2"
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
