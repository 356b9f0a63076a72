package gitlab

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/paved-idp/paved/internal/gitlab/ratecap"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
)

// These tests run in a synctest bubble: the clock only moves when every
// goroutine of the test waits on it, so the times the simulator sees
// requests arrive are exactly the times the client let them go, however
// slow or busy the machine. The client reaches the simulator in-process
// (inProcess), since a real listener would keep the bubble from ever
// going idle.

// inProcess is a RoundTripper that serves each request with h, in the
// calling goroutine.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// arrivals is a middleware in front of the simulator that records when
// each request reached it. A non-nil answer429 answers the first request
// with a 429 carrying its headers instead.
type arrivals struct {
	next      http.Handler
	answer429 func() http.Header

	mu    sync.Mutex
	times []time.Time
	paths []string
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.times = append(a.times, time.Now())
	a.paths = append(a.paths, r.URL.Path)
	first := len(a.times) == 1
	a.mu.Unlock()
	if first && a.answer429 != nil {
		for k, v := range a.answer429() {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	a.next.ServeHTTP(w, r)
}

func (a *arrivals) snapshot() ([]time.Time, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.times...), append([]string(nil), a.paths...)
}

// bubble starts a simulator behind an arrivals recorder and a client
// reaching it in-process; call it inside synctest.Test.
func bubble(t *testing.T, cfg gitlabsim.Config, rec *arrivals, opt Options) (*gitlabsim.Sim, *Client) {
	t.Helper()
	cfg.Token, cfg.Decide = token, hold
	sim := gitlabsim.New(cfg)
	t.Cleanup(sim.Close) // runs inside the bubble, before it ends
	rec.next = sim
	opt.HTTPClient = &http.Client{Transport: inProcess{rec}}
	c, err := New("http://gitlab.test", token, opt)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

// TestCapCountsRetries: issue #8. With a fifth of GitLab's answers 5xx and
// every failed read retried, twenty callers reading as fast as the client
// lets them for five minutes never put more than the cap's requests into
// any window of a minute (of ratecap.Span, in fact). Before the fix the cap
// counted calls and the retries beneath them went uncounted.
func TestCapCountsRetries(t *testing.T) {
	const perMinute, callers, run = 600, 20, 5 * time.Minute
	synctest.Test(t, func(t *testing.T) {
		rec := &arrivals{}
		// In the bubble a request takes no time, so the window hands out
		// its whole cap in a burst of a few milliseconds and then every
		// waiter waits for the next Span: an attempt waits up to a Span
		// (ratecap.Span; at most callers of the cap's slots are ever
		// reserved ahead), not the two seconds a slot that twenty callers
		// on ten a second would suggest. A call whose retries run past the
		// end of the next burst needs a third window, 124 s after it began,
		// which the default call deadline (4 × 30 s + 3 × 5 ms) does not
		// cover: it failed "the next request slot … frees after this
		// request's deadline" about one run in 150. A per-attempt Timeout
		// of a Span and a second (the attempts themselves take no time)
		// puts the call deadline past 4 × Span + 3 × RetryWaitMax, the most
		// four attempts can wait, so a call can only fail with a final 500.
		sim, c := bubble(t, gitlabsim.Config{Seed: 8, Faults: gitlabsim.Faults{ServerErrorRate: 0.2}}, rec,
			Options{RequestsPerMinute: perMinute, Timeout: ratecap.Span + time.Second, Retries: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
		p, err := sim.CreatePipeline(gitlabsim.NewPipeline{Project: "grp/svc", Ref: "main",
			Variables: []gitlabsim.Variable{{Key: RunIDVariable, Value: "r_1"}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		end := time.Now().Add(run)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var unexpected []error
		for i := range callers {
			wg.Go(func() {
				for time.Now().Before(end) {
					var err error
					if i%2 == 0 {
						_, err = c.Pipeline(ctx, "grp/svc", p.ID)
					} else {
						_, _, err = c.FindByRunID(ctx, "grp/svc", "main", p.CreatedAt, "r_1", 0)
					}
					// A call fails only when all four attempts drew a 5xx.
					if code, _ := statusOf(err); err != nil && code != http.StatusInternalServerError {
						mu.Lock()
						unexpected = append(unexpected, err)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		for _, err := range unexpected {
			t.Errorf("call failed: %v", err)
		}

		times, _ := rec.snapshot()
		// The busiest window of a minute (and of ratecap.Span, the margin
		// the limiter keeps) that ends at an arrival.
		busiest := 0
		for i, j := 0, 0; j < len(times); j++ {
			for times[j].Sub(times[i]) >= ratecap.Span {
				i++
			}
			busiest = max(busiest, j-i+1)
		}
		st := sim.Stats()
		t.Logf("%d requests (%d answered 5xx) in %v; busiest 60 s window: %d, cap %d", len(times), st.ServerErrors, run, busiest, perMinute)
		if busiest > perMinute {
			t.Errorf("busiest 60 s window held %d requests, cap %d", busiest, perMinute)
		}
		// Not a bound on speed: in the bubble the callers are always
		// waiting for a slot, so the load reaches the cap; a test that did
		// not get there would prove nothing.
		if busiest < perMinute*9/10 || st.ServerErrors == 0 {
			t.Errorf("the load never reached the cap (busiest window %d, %d retried 5xx)", busiest, st.ServerErrors)
		}
	})
}

// TestRateLimitPausesEveryCaller: one caller's request is answered 429
// with a reset; a second caller that starts right after it sends nothing
// before the reset, and neither does the first caller's retry. Both then
// succeed.
func TestRateLimitPausesEveryCaller(t *testing.T) {
	tests := []struct {
		name    string
		headers func() http.Header
		pause   time.Duration
		waitMax time.Duration
	}{
		{"retry-after", func() http.Header { return http.Header{"Retry-After": {"7"}} }, 7 * time.Second, 30 * time.Second},
		{"ratelimit-reset", func() http.Header {
			// The bubble's clock starts on a whole second.
			return http.Header{"Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(4*time.Second).Unix(), 10)}}
		}, 4 * time.Second, 30 * time.Second},
		{"capped at RetryWaitMax", func() http.Header { return http.Header{"Retry-After": {"3600"}} }, 5 * time.Second, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &arrivals{answer429: tt.headers}
				sim, c := bubble(t, gitlabsim.Config{}, rec,
					Options{Retries: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: tt.waitMax})
				p, err := sim.CreatePipeline(gitlabsim.NewPipeline{Project: "grp/svc", Ref: "main"})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				start := time.Now()
				first := make(chan error, 1)
				go func() {
					_, err := c.Pipeline(ctx, "grp/svc", p.ID)
					first <- err
				}()
				synctest.Wait() // the first caller got its 429 and backs off
				if times, _ := rec.snapshot(); len(times) != 1 {
					t.Fatalf("%d requests before the second caller, want the one answered 429", len(times))
				}
				// A cancel pulled during the pause ends the wait and sends nothing.
				cctx, cancel := context.WithCancel(ctx)
				canceled := make(chan error, 1)
				go func() {
					_, err := c.Cancel(cctx, "grp/svc", p.ID)
					canceled <- err
				}()
				synctest.Wait()
				cancel()
				if err := <-canceled; !errors.Is(err, context.Canceled) {
					t.Errorf("call canceled during the pause: %v", err)
				}
				// A call whose deadline falls before the reset fails at once.
				dctx, dcancel := context.WithTimeout(ctx, tt.pause/2)
				_, err = c.Pipeline(dctx, "grp/svc", p.ID)
				dcancel()
				if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 0 {
					t.Errorf("call with a deadline before the reset: %v after %v", err, time.Since(start))
				}

				got, err := c.Pipeline(ctx, "grp/svc", p.ID)
				if err != nil || got.ID != p.ID {
					t.Fatalf("second caller: %+v, %v", got, err)
				}
				if err := <-first; err != nil {
					t.Fatalf("first caller: %v", err)
				}
				times, paths := rec.snapshot()
				if len(times) != 3 {
					t.Fatalf("requests %v, want the 429, its retry and the second caller's", paths)
				}
				for i, at := range times[1:] {
					if d := at.Sub(start); d < tt.pause {
						t.Errorf("request %d (%s) sent %v after the 429, before its reset of %v", i+2, paths[i+1], d, tt.pause)
					}
				}
			})
		})
	}
}
