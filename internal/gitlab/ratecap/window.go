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

// window lets no Span hold more than n requests. It remembers the times
// of the last n slots (a ring), and gives each caller, in the order they
// ask, the next slot: now, or once the slot n before it is Span old.
// The slot is the caller's from the moment it asks (a reservation), so
// callers are served first come, first served: none can starve behind
// later ones, as they could when every waiter woke to race for a slot
// that had freed.
//
// A token bucket refilling at n/60 a second would keep the cap too, but it
// makes a backlog trickle: 1,000 queued triggers under a cap of 2,000 a
// minute would take half a minute although the cap allows them all at once.
// The window spends the minute's allowance as it is asked for, and then
// waits for the minute to roll on — which is exactly what the cap is.
type window struct {
	cap  int
	mu   sync.Mutex
	sent []time.Time // ring of the last cap slots given; zero: never used
	next int         // the oldest slot, the next to reuse
}

// newWindow is the window for a cap of perMinute (nil for 0: no cap).
func newWindow(perMinute int) *window {
	if perMinute <= 0 {
		return nil
	}
	return &window{cap: perMinute, sent: make([]time.Time, perMinute)}
}

// Wait takes the next slot and waits for its time. A slot whose time comes
// after ctx's deadline is not taken: Wait fails at once. A caller whose ctx
// ends while it waits gives its slot back if it was the last one given,
// and otherwise leaves it unused (sending less never breaks the cap).
func (w *window) Wait(ctx context.Context) error {
	w.mu.Lock()
	now := time.Now()
	at := now
	if oldest := w.sent[w.next]; !oldest.IsZero() && now.Before(oldest.Add(Span)) {
		at = oldest.Add(Span)
	}
	if deadline, ok := ctx.Deadline(); ok && deadline.Before(at) {
		w.mu.Unlock()
		return fmt.Errorf("gitlab: the next request slot under the cap of %d a minute frees after this request's deadline: %w", w.cap, context.DeadlineExceeded)
	}
	slot, prev := w.next, w.sent[w.next]
	w.sent[slot] = at
	w.next = (slot + 1) % len(w.sent)
	w.mu.Unlock()
	if !at.After(now) {
		return nil
	}
	timer := time.NewTimer(at.Sub(now))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		w.giveBack(slot, at, prev)
		return fmt.Errorf("gitlab: wait for a request slot under the cap of %d a minute: %w", w.cap, ctx.Err())
	}
}

// giveBack returns an unused slot when no later caller has taken one
// since; otherwise the slot stays unused.
func (w *window) giveBack(slot int, at, prev time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next == (slot+1)%len(w.sent) && w.sent[slot].Equal(at) {
		w.sent[slot], w.next = prev, slot
	}
}
