package worker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestBackoffGrowsAndCaps(t *testing.T) {
	for attempt := 1; attempt <= 12; attempt++ {
		want := time.Second << (attempt - 1)
		if want > time.Minute {
			want = time.Minute
		}
		for i := 0; i < 50; i++ {
			d := Backoff(attempt, time.Second, time.Minute)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestLoopWakesAndDrains(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := NewWaker()
	var ticks atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		Loop(ctx, time.Hour, time.Second, w, func(context.Context) bool { return ticks.Add(1)%3 != 0 })
	}()
	// The first round drains (3 ticks); a wake runs another round.
	deadline := time.Now().Add(5 * time.Second)
	for ticks.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	w.Wake()
	for ticks.Load() < 6 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if n := ticks.Load(); n != 6 {
		t.Fatalf("ticks = %d, want 6 (two drained rounds)", n)
	}
}

func TestWakesFold(t *testing.T) {
	w := NewWaker()
	w.Wake()
	w.Wake()
	if len(w) != 1 {
		t.Fatalf("%d pending wakes, want 1", len(w))
	}
}

func TestTickContextOutlivesStopByDrain(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	var tickErr atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		Loop(ctx, time.Hour, 50*time.Millisecond, nil, func(tc context.Context) bool {
			close(started)
			<-release
			tickErr.Store(fmt.Sprint(tc.Err()))
			<-tc.Done() // ends only when the drain runs out
			return false
		})
	}()
	<-started
	cancel()
	time.Sleep(10 * time.Millisecond)
	close(release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("tick context never ended after the drain")
	}
	if got := tickErr.Load(); got != "<nil>" {
		t.Fatalf("tick context ended at once with the loop (%v); want it to last the drain", got)
	}
}

func TestPoolRunsTasksSideBySideUntilNoneIsLeft(t *testing.T) {
	tasks := make(chan int, 20)
	for i := 0; i < 20; i++ {
		tasks <- i
	}
	close(tasks)
	var inFlight, most, handled atomic.Int32
	next := func(context.Context) (int, bool, error) { v, ok := <-tasks; return v, ok, nil }
	n, err := Pool(context.Background(), nil, 4, next, func(context.Context, int) {
		cur := inFlight.Add(1)
		for old := most.Load(); cur > old && !most.CompareAndSwap(old, cur); old = most.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		inFlight.Add(-1)
		handled.Add(1)
	})
	if err != nil || n != 20 || handled.Load() != 20 {
		t.Fatalf("took %d, handled %d, err %v; want 20", n, handled.Load(), err)
	}
	if most.Load() < 2 {
		t.Fatalf("at most %d task(s) at once; want workers side by side", most.Load())
	}
	stop := make(chan struct{})
	close(stop)
	if n, _ := Pool(context.Background(), stop, 4, next, func(context.Context, int) {}); n != 0 {
		t.Fatalf("took %d tasks after stop", n)
	}
}
