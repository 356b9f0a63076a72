package ratecap

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestWindow: a backlog gets the whole minute's allowance at once, the
// request after it waits until the first slot is Span old, and a
// caller whose deadline comes before that fails at once.
func TestWindow(t *testing.T) {
	if newWindow(0) != nil || newWindow(-1) != nil {
		t.Error("no cap should mean no limiter")
	}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWindow(5)
		start := time.Now()
		for i := range 5 {
			if err := w.Wait(ctx); err != nil || time.Since(start) != 0 {
				t.Fatalf("slot %d: %v after %v; want at once", i, err, time.Since(start))
			}
		}
		short, cancel := context.WithTimeout(ctx, Span/2)
		defer cancel()
		if err := w.Wait(short); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 0 {
			t.Fatalf("sixth slot with a deadline before it frees: %v after %v; want DeadlineExceeded at once", err, time.Since(start))
		}
		time.Sleep(time.Second) // in the bubble: the clock moves, nothing else
		if err := w.Wait(ctx); err != nil || time.Since(start) != Span {
			t.Fatalf("sixth slot: %v after %v; want it when the first is %v old", err, time.Since(start), Span)
		}
		// The second slot was taken at the same instant as the first.
		if err := w.Wait(ctx); err != nil || time.Since(start) != Span {
			t.Fatalf("seventh slot: %v after %v; want %v", err, time.Since(start), Span)
		}
	})
}
