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

// TestWindowServesInOrder: callers waiting for slots get them in the order
// they asked, one Span apart under a cap of one — none is overtaken, so
// none can starve while later callers are served.
func TestWindowServesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWindow(1)
		start := time.Now()
		if err := w.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		const callers = 5
		got := make(chan int, callers)
		at := make([]time.Duration, callers)
		for i := range callers {
			go func() {
				if err := w.Wait(ctx); err != nil {
					t.Error(err)
				}
				at[i] = time.Since(start)
				got <- i
			}()
			synctest.Wait() // caller i asks before caller i+1
		}
		for want := range callers {
			if i := <-got; i != want {
				t.Fatalf("slot %d went to caller %d, want %d (first come, first served)", want+1, i, want)
			}
			if want := time.Duration(want+1) * Span; at[want/Span-1] != want {
				t.Fatalf("caller served after %v, want %v", at[want/Span-1], want)
			}
		}
	})
}

// TestWindowCancelledSlot: a caller whose context ends while it waits
// gives its slot back when nobody asked after it, and leaves it unused
// when somebody did (the later caller keeps its place: the cap holds
// whatever the cancellations).
func TestWindowCancelledSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWindow(1)
		start := time.Now()
		if err := w.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		wait := func(ctx context.Context) chan error {
			done := make(chan error, 1)
			go func() { done <- w.Wait(ctx) }()
			synctest.Wait()
			return done
		}
		ctx, cancel := context.WithCancel(context.Background())
		last := wait(ctx)
		cancel()
		if err := <-last; !errors.Is(err, context.Canceled) || time.Since(start) != 0 {
			t.Fatalf("cancelled wait: %v after %v; want Canceled at once", err, time.Since(start))
		}
		// Given back: the next caller has the slot one Span on.
		ctx, cancel = context.WithCancel(context.Background())
		first := wait(ctx)
		second := wait(context.Background())
		cancel() // not the last slot given: it stays unused
		if err := <-first; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait: %v", err)
		}
		if err := <-second; err != nil || time.Since(start) != 2*Span {
			t.Fatalf("caller after a cancelled one: %v after %v; want its own slot at %v", err, time.Since(start), 2*Span)
		}
	})
}
