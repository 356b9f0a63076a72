package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// fakeAfter is an injected wait: it records each wait asked for and lets
// the loop go on at once.
type fakeAfter struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeAfter) after(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func TestLoopWakesAndDrains(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := NewWaker()
	var ticks atomic.Int32
	rounds := make(chan int32, 10)
	done := make(chan struct{})
	never := func(time.Duration) <-chan time.Time { return nil } // only wakes start a round
	go func() {
		defer close(done)
		Loop(ctx, Options{Interval: time.Hour, Drain: time.Second, Wake: w, After: never}, func(context.Context) (bool, error) {
			n := ticks.Add(1)
			if n%3 == 0 {
				rounds <- n
				return false, nil
			}
			return true, nil
		})
	}()
	// The first round drains (3 ticks); a wake runs another round.
	if n := <-rounds; n != 3 {
		t.Fatalf("first round ended after %d ticks, want 3", n)
	}
	w.Wake()
	if n := <-rounds; n != 6 {
		t.Fatalf("second round ended after %d ticks, want 6", n)
	}
	cancel()
	<-done
	if n := ticks.Load(); n != 6 {
		t.Fatalf("ticks = %d, want 6 (two drained rounds)", n)
	}
}

// A failing tick backs off, more with each failure in a row, up to the cap,
// and tells OnError each time; a success returns to the interval.
func TestLoopBacksOffWhileTicksFail(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeAfter{}
	var failures []int
	n := 0
	Loop(ctx, Options{Interval: time.Second, MaxBackoff: 16 * time.Second, After: f.after,
		OnError: func(_ error, k int, _ time.Duration) { failures = append(failures, k) },
	}, func(context.Context) (bool, error) {
		n++
		switch {
		case n <= 8:
			return false, errors.New("store is down")
		case n == 9:
			return false, nil
		}
		cancel()
		return false, nil
	})
	if len(f.waits) != 9 {
		t.Fatalf("waits = %v, want 9", f.waits)
	}
	for i, d := range f.waits[:8] {
		want := min(time.Second<<i, 16*time.Second)
		if d < want/2 || d > want {
			t.Fatalf("wait after failure %d = %v, want in [%v, %v] (all: %v)", i+1, d, want/2, want, f.waits)
		}
	}
	if f.waits[8] != time.Second {
		t.Fatalf("after a success the loop waited %v, want the interval", f.waits[8])
	}
	if fmt.Sprint(failures) != "[1 2 3 4 5 6 7 8]" {
		t.Fatalf("OnError heard failures %v", failures)
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

// The context a tick gets survives the loop's ctx (the tick in flight may
// finish its work) and ends when the drain runs out.
func TestTickContextOutlivesStopByDrain(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started, canceled := make(chan struct{}), make(chan struct{})
	var errAtEnd atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		Loop(ctx, Options{Interval: time.Hour, Drain: time.Millisecond}, func(tc context.Context) (bool, error) {
			close(started)
			<-canceled
			<-tc.Done() // ends only when the drain runs out
			errAtEnd.Store(fmt.Sprint(tc.Err()))
			return false, nil
		})
	}()
	<-started
	cancel()
	close(canceled)
	<-done
	if got := errAtEnd.Load(); got != "context canceled" {
		t.Fatalf("tick context at the end: %v", got)
	}
	// With a long drain the tick's context must outlive the loop's.
	ctx2, cancel2 := context.WithCancel(context.Background())
	started2, checked := make(chan struct{}), make(chan string, 1)
	done2 := make(chan struct{})
	go func() {
		defer close(done2)
		Loop(ctx2, Options{Interval: time.Hour, Drain: time.Hour}, func(tc context.Context) (bool, error) {
			close(started2)
			<-ctx2.Done()
			checked <- fmt.Sprint(tc.Err())
			return false, nil
		})
	}()
	<-started2
	cancel2()
	<-done2
	if got := <-checked; got != "<nil>" {
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
	gate := make(chan struct{})
	var together sync.Once
	next := func(context.Context) (int, bool, error) { v, ok := <-tasks; return v, ok, nil }
	n, err := Pool(context.Background(), nil, 4, next, func(context.Context, int) {
		cur := inFlight.Add(1)
		for old := most.Load(); cur > old && !most.CompareAndSwap(old, cur); old = most.Load() {
		}
		// The first task waits for a second to start beside it: a pool
		// that ran one at a time would hang here (and the test time out).
		if cur >= 2 {
			together.Do(func() { close(gate) })
		}
		<-gate
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

// A round with nothing to do asks once and starts no goroutine; with one
// task, no more workers than it needs ask.
func TestPoolStartsWorkersOnlyForWork(t *testing.T) {
	var asks atomic.Int32
	none := func(context.Context) (int, bool, error) { asks.Add(1); return 0, false, nil }
	n, err := Pool(context.Background(), nil, 8, none, func(context.Context, int) {})
	if n != 0 || err != nil || asks.Load() != 1 {
		t.Fatalf("idle round: took %d, err %v, asked %d times; want 0, nil, 1 (no worker started)", n, err, asks.Load())
	}
	asks.Store(0)
	left := atomic.Int32{}
	left.Store(1)
	one := func(context.Context) (int, bool, error) {
		asks.Add(1)
		return 7, left.Add(-1) >= 0, nil
	}
	if n, err := Pool(context.Background(), nil, 8, one, func(context.Context, int) {}); n != 1 || err != nil || asks.Load() != 3 {
		t.Fatalf("one task: took %d, err %v, asked %d times; want 1, nil, 3 (the caller twice, one started worker once)", n, err, asks.Load())
	}
	boom := errors.New("claim failed")
	failing := func(context.Context) (int, bool, error) { return 0, false, boom }
	if _, err := Pool(context.Background(), nil, 8, failing, func(context.Context, int) {}); !errors.Is(err, boom) {
		t.Fatalf("a failing next: err %v, want %v", err, boom)
	}
}

func TestBatchesClaimManyAndHandOutOne(t *testing.T) {
	pending := []int{1, 2, 3, 4, 5}
	claims := 0
	b := &Batches[int]{N: 2, Claim: func(_ context.Context, n int) ([]int, error) {
		claims++
		k := min(n, len(pending))
		got := pending[:k]
		pending = pending[k:]
		return got, nil
	}}
	var got []int
	for {
		v, ok, err := b.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, v)
		if v == 3 {
			break // stop early: 4 is claimed but not handed out
		}
	}
	if fmt.Sprint(got) != "[1 2 3]" || claims != 2 {
		t.Fatalf("got %v in %d claims", got, claims)
	}
	if left := b.Left(); fmt.Sprint(left) != "[4]" {
		t.Fatalf("left %v, want [4] to hand back", left)
	}
	if b.Left() != nil {
		t.Fatal("Left twice returned tasks twice")
	}
}
