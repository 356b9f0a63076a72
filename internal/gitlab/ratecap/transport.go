package ratecap

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Options tune a Transport.
type Options struct {
	// PerMinute caps the requests in any window (0: no cap).
	PerMinute int
	// Timeout bounds one attempt, from when it is sent.
	Timeout time.Duration
	// MaxPause is the longest one 429 pauses every caller.
	MaxPause time.Duration
	// OnWait, when set, hears of every wait for a slot or a 429's reset.
	OnWait func(time.Duration)
}

// New is the capping RoundTripper in front of next.
func New(next http.RoundTripper, opt Options) http.RoundTripper {
	return &capTransport{next: next, limiter: newWindow(opt.PerMinute), timeout: opt.Timeout, maxPause: opt.MaxPause, onWait: opt.OnWait}
}

// RetryAfter is how long a 429's headers ask to wait: Retry-After (seconds
// or a date), else RateLimit-Reset (Unix seconds).
func RetryAfter(h http.Header) (time.Duration, bool) {
	if s, err := strconv.ParseInt(h.Get("Retry-After"), 10, 64); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(h.Get("Retry-After")); err == nil {
		return max(0, time.Until(t)), true
	}
	if u, err := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64); err == nil && u > 0 {
		return max(0, time.Until(time.Unix(u, 0))), true
	}
	return 0, false
}

// capTransport is the http.RoundTripper beneath client-go's retry loop
// (go-retryablehttp calls it once per attempt, retries included, and once
// per redirect hop), so everything it does applies to every HTTP request
// that leaves paved, not to every call:
//
//   - it waits for a slot under Options.RequestsPerMinute (limiter; nil is
//     unlimited). client-go's own limiter, which it consults once per call
//     and not per retry, is left unlimited (see New), so nothing is counted
//     twice;
//   - after a 429 it holds back every attempt of every caller of the
//     Client until GitLab's Retry-After / RateLimit-Reset has passed (the
//     pause), not only the retrying one;
//   - it times each attempt (Options.Timeout) from when the attempt is
//     sent, so the waits above do not eat into it. The waits are bounded by
//     the caller's context instead.
type capTransport struct {
	next     http.RoundTripper
	limiter  *window       // nil: no cap
	timeout  time.Duration // one attempt, from when it is sent
	maxPause time.Duration // the longest one 429 pauses the client (Options.RetryWaitMax)
	onWait   func(time.Duration)

	mu          sync.Mutex
	pausedUntil time.Time
}

// RoundTrip waits for the pause and a slot, then sends the attempt.
func (t *capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	queued := time.Now()
	err := t.await(req.Context())
	// A free slot answers at once; anything longer was a wait.
	if waited := time.Since(queued); t.onWait != nil && waited > time.Millisecond {
		t.onWait(waited)
	}
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, err
	}
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		t.pause(resp.Header)
	}
	// The timeout covers reading the body too; closing it ends the attempt.
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// await returns when the attempt may be sent: no pause is on and it holds
// a slot under the cap.
func (t *capTransport) await(ctx context.Context) error {
	for {
		if err := t.waitPause(ctx); err != nil {
			return err
		}
		if t.limiter != nil {
			if err := t.limiter.Wait(ctx); err != nil {
				return err
			}
		}
		if !t.pausedAt(time.Now()) {
			return nil
		}
		// A 429 came while this attempt queued for its slot. The slot goes
		// unused (sending less never breaks the cap) and the attempt waits
		// the pause out and queues afresh: sending now would go into the
		// pause, and holding the slot until the pause ends would let every
		// slot handed out during the pause go out at once when it ends.
	}
}

// waitPause waits until no pause is on. A pause that ends after ctx's
// deadline fails at once, as window.Wait does.
func (t *capTransport) waitPause(ctx context.Context) error {
	for {
		t.mu.Lock()
		until := t.pausedUntil
		t.mu.Unlock()
		d := time.Until(until)
		if d <= 0 {
			return nil
		}
		if deadline, ok := ctx.Deadline(); ok && deadline.Before(until) {
			return fmt.Errorf("gitlab: GitLab's rate limit resets after this request's deadline: %w", context.DeadlineExceeded)
		}
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
			// Another 429 may have moved the end: look again.
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("gitlab: wait for GitLab's rate limit to reset: %w", ctx.Err())
		}
	}
}

// pause holds back every attempt until the reset a 429 carries (capped at
// maxPause, as the retrying caller's own backoff is; see backoff). A 429
// without a reset pauses nobody but the caller, which backs off.
func (t *capTransport) pause(h http.Header) {
	d, ok := RetryAfter(h)
	if !ok || d <= 0 {
		return
	}
	until := time.Now().Add(min(d, t.maxPause))
	t.mu.Lock()
	if until.After(t.pausedUntil) {
		t.pausedUntil = until
	}
	t.mu.Unlock()
}

func (t *capTransport) pausedAt(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return now.Before(t.pausedUntil)
}

// cancelOnClose ends an attempt's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
