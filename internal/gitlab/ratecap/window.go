// Package ratecap keeps paved's GitLab requests under a cap: an
// http.RoundTripper beneath client-go's retry loop, so that every attempt
// counts, with a sliding window of requests a minute and a pause for all
// callers after a 429.
package ratecap

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Span is the span no more than the cap's requests may fall in: a
// minute, plus a margin for the time between taking a slot and the request
// reaching GitLab (a slow connect must not let two requests a minute apart
// at paved land 59.9 s apart at GitLab).
const Span = time.Minute + 2*time.Second

// window lets no Span hold more than n requests. It remembers when
// each of the last n slots was taken (a ring) and gives the next slot once
// the oldest of them is Span old.
//
// A token bucket refilling at n/60 a second would keep the cap too, but it
// makes a backlog trickle: 1,000 queued triggers under a cap of 2,000 a
// minute would take half a minute although the cap allows them all at once.
// The window spends the minute's allowance as it is asked for, and then
// waits for the minute to roll on — which is exactly what the cap is.
type window struct {
	cap  int
	mu   sync.Mutex
	sent []time.Time // ring of the last cap slots; zero: never used
	next int         // the oldest slot, the next to reuse
}

// newWindow is the window for a cap of perMinute (nil for 0: no cap).
func newWindow(perMinute int) *window {
	if perMinute <= 0 {
		return nil
	}
	return &window{cap: perMinute, sent: make([]time.Time, perMinute)}
}

// Wait takes a slot, waiting until one is free. A slot that frees only
// after ctx's deadline fails at once.
func (w *window) Wait(ctx context.Context) error {
	for {
		w.mu.Lock()
		now := time.Now()
		free := w.sent[w.next].Add(Span)
		if w.sent[w.next].IsZero() || !now.Before(free) {
			w.sent[w.next] = now
			w.next = (w.next + 1) % len(w.sent)
			w.mu.Unlock()
			return nil
		}
		w.mu.Unlock()
		if deadline, ok := ctx.Deadline(); ok && deadline.Before(free) {
			return fmt.Errorf("gitlab: the next request slot under the cap of %d a minute frees after this request's deadline: %w", w.cap, context.DeadlineExceeded)
		}
		timer := time.NewTimer(free.Sub(now))
		select {
		case <-timer.C:
			// Another caller may have taken it: look again.
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("gitlab: wait for a request slot under the cap of %d a minute: %w", w.cap, ctx.Err())
		}
	}
}
