// Package worker holds what paved's background workers share: the tick loop
// and the retry delay.
package worker

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Options tune Loop.
type Options struct {
	// Interval is the wait between rounds when there is no news.
	Interval time.Duration
	// Drain is how long the context a tick gets outlives Loop's ctx, so
	// that work in flight at shutdown can finish instead of being cut off.
	Drain time.Duration
	// Wake, when it fires, starts a round at once.
	Wake <-chan struct{}
	// MaxBackoff caps the wait after failed rounds; 0 means a minute.
	MaxBackoff time.Duration
	// OnError hears of each failed round: the error, how many rounds in a
	// row failed, and the wait before the next.
	OnError func(err error, failures int, wait time.Duration)
	// After waits; nil means time.After. Tests inject their own.
	After func(time.Duration) <-chan time.Time
}

// Every calls round at once and then every interval until ctx ends, and
// logs a failed round as what: for schedulers (drift checks, expiries)
// whose next round is the retry.
func Every(ctx context.Context, interval time.Duration, log *zap.Logger, what string, round func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := round(ctx); err != nil && ctx.Err() == nil {
			log.Warn(what, zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Loop calls tick every Interval, and at once when Wake fires, until ctx
// ends. A tick that reports more work (busy) is followed by another at
// once. A tick that fails is retried after a backoff that grows with each
// failure in a row (up to MaxBackoff, wakes ignored): a broken store or a
// down GitLab is not hammered, nor the log flooded.
func Loop(ctx context.Context, o Options, tick func(context.Context) (busy bool, err error)) {
	taskCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(o.Drain, cancel) })
	defer stop()
	after := o.After
	if after == nil {
		after = time.After
	}
	maxBackoff := o.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = time.Minute
	}
	interval := max(o.Interval, time.Millisecond)
	failures := 0
	for ctx.Err() == nil {
		busy, err := tick(taskCtx)
		if ctx.Err() != nil {
			return
		}
		wake := o.Wake
		wait := interval
		switch {
		case err != nil:
			failures++
			wait = Backoff(failures, interval, max(maxBackoff, interval))
			wake = nil
			if o.OnError != nil {
				o.OnError(err, failures, wait)
			}
		case busy:
			failures = 0
			continue
		default:
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-after(wait):
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

// Pool runs up to n workers that each take one task at a time with next
// and handle it, until next finds nothing, next fails, or stop fires; a
// slow task holds up only its own worker. The first worker is the caller's
// goroutine, and each worker that takes a task starts the next one (up to
// n) before handling it: a round that finds no work, as most rounds woken
// by new work of another kind do, starts no goroutine at all. It returns
// how many tasks were taken and the first error of next.
func Pool[T any](ctx context.Context, stop <-chan struct{}, n int, next func(context.Context) (T, bool, error), handle func(context.Context, T)) (int, error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		taken   int
		started = 1
		first   error
	)
	var work func()
	work = func() {
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
			grow := started < max(n, 1)
			if grow {
				started++
				wg.Add(1)
			}
			mu.Unlock()
			if grow {
				go func() { defer wg.Done(); work() }()
			}
			handle(ctx, t)
		}
	}
	work()
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

// Batches hands out, one at a time as Pool's next wants them, tasks that
// are claimed many at a time: one claim (one transaction) per batch of n
// instead of one per task.
type Batches[T any] struct {
	Claim func(ctx context.Context, n int) ([]T, error)
	N     int

	mu  sync.Mutex
	buf []T
}

// Next returns the next claimed task, claiming a new batch when none is left.
func (b *Batches[T]) Next(ctx context.Context) (T, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var zero T
	if len(b.buf) == 0 {
		got, err := b.Claim(ctx, max(b.N, 1))
		if err != nil || len(got) == 0 {
			return zero, false, err
		}
		b.buf = got
	}
	t := b.buf[0]
	b.buf = b.buf[1:]
	return t, true, nil
}

// Left takes the tasks claimed but never handed out (Pool stopped early),
// for the caller to hand back.
func (b *Batches[T]) Left() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	left := b.buf
	b.buf = nil
	return left
}

// HandBack returns claimed tasks that were not handled (the worker stops,
// or was cut off mid-task) so the next start, or another replica, takes
// them at once instead of after their lease. It runs on a context that
// outlives the worker's; a failure only costs waiting for the lease.
func HandBack(ctx context.Context, release func(context.Context, ...int64) error, log *zap.Logger, ids ...int64) {
	if len(ids) == 0 {
		return
	}
	if err := release(context.WithoutCancel(ctx), ids...); err != nil {
		log.Warn("hand back unhandled tasks", zap.Int64s("tasks", ids), zap.Error(err))
	}
}
