// Package faults is the Port simulator's (package portsim) gate in front of its API: latency,
// Port's rate limit and its x-ratelimit-* headers, and injected failures.
package faults

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/paved-idp/paved/internal/sim/portsim/internal/wire"
)

// Faults injects failures into API answers. Draws come from a PRNG seeded with Seed, so a
// given sequence of requests always meets the same faults.
type Faults struct {
	Seed uint64
	// ErrorRate is the fraction of requests answered 500 before anything is applied.
	ErrorRate float64
	// LostResponseRate is the fraction of requests that ARE applied but answered 502, as when
	// a proxy times out after the backend committed: retries then meet their own effects.
	LostResponseRate float64
	// RateLimitRate is the fraction of requests answered 429 with x-ratelimit-remaining 0.
	RateLimitRate float64
	// Latency is added to every API request. The wait ends early, and the request is
	// dropped, when net/http notices the client gave up, which it does only for a request
	// whose body has been read: a held request with a body (POST, PATCH) is still applied
	// when the wait ends, like a server finishing work after its client timed out.
	Latency time.Duration
	// SlowRate is the fraction of requests held for SlowLatency before they are handled:
	// set it past the client's timeout to make calls time out (see Latency for which
	// of them are still applied).
	SlowRate    float64
	SlowLatency time.Duration
}

// Gate applies Faults and the rate limit to API requests. It is safe for concurrent use.
type Gate struct {
	faults *Faults          // the simulator's configuration, read at each request
	limit  int              // requests allowed per period
	period time.Duration    // length of a rate-limit window
	now    func() time.Time // the simulator's clock
	record func(r *http.Request, status int, at time.Time)

	mu       sync.Mutex
	rand     *rand.Rand // fault draws only, so IDs do not shift which requests fail
	window   time.Time  // start of the current rate-limit window
	inWindow int
}

// New returns a gate allowing limit requests per period, injecting *f (read at each request), reading the time from
// now and reporting every request, with the status answered, to record.
func New(f *Faults, limit int, period time.Duration, now func() time.Time, record func(r *http.Request, status int, at time.Time)) *Gate {
	return &Gate{faults: f, limit: limit, period: period, now: now, record: record,
		rand: rand.New(rand.NewPCG(f.Seed, 0x9e3779b97f4a7c15))}
}

type fault int

const (
	faultNone fault = iota
	faultRateLimited
	faultError
	faultLost
)

// Middleware records every call (through the gate's record func), adds latency, counts the rate-limit window, sets Port's
// x-ratelimit-* headers on every answer and injects the configured faults.
func (g *Gate) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		start := g.now()
		defer func() { g.record(r, sw.status, start) }()
		d := g.faults.Latency
		if g.slow() {
			d += g.faults.SlowLatency
		}
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		f, remaining, reset := g.admit()
		h := sw.Header()
		h.Set("x-ratelimit-period", strconv.Itoa(int(g.period/time.Second)))
		h.Set("x-ratelimit-limit", strconv.Itoa(g.limit))
		h.Set("x-ratelimit-remaining", strconv.Itoa(remaining))
		h.Set("x-ratelimit-reset", strconv.Itoa(reset))
		r.Body = http.MaxBytesReader(sw, r.Body, wire.MaxBody)
		switch f {
		case faultRateLimited:
			// docs silent on the 429 body; it follows Port's general error shape.
			wire.WriteErr(sw, http.StatusTooManyRequests, "rate_limit_exceeded",
				fmt.Sprintf("rate limit of %d requests per %s exceeded; retry in %d s", g.limit, g.period, reset))
		case faultError:
			wire.WriteErr(sw, http.StatusInternalServerError, "internal_error", "An internal error occurred")
		case faultLost:
			next.ServeHTTP(&discardWriter{h: http.Header{}}, r)
			wire.WriteErr(sw, http.StatusBadGateway, "bad_gateway", "upstream answer lost (injected); the request was applied")
		default:
			next.ServeHTTP(sw, r)
		}
	})
}

// admit counts the request in the rate-limit window and draws its fault.
func (g *Gate) slow() bool {
	if g.faults.SlowRate <= 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rand.Float64() < g.faults.SlowRate
}

func (g *Gate) admit() (f fault, remaining, reset int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if g.window.IsZero() || !now.Before(g.window.Add(g.period)) {
		g.window, g.inWindow = now, 0
	}
	g.inWindow++
	reset = int(math.Ceil(g.window.Add(g.period).Sub(now).Seconds()))
	remaining = max(g.limit-g.inWindow, 0)
	fz := g.faults
	x := g.rand.Float64()
	switch {
	case g.inWindow > g.limit || x < fz.RateLimitRate:
		return faultRateLimited, 0, reset
	case x < fz.RateLimitRate+fz.ErrorRate:
		return faultError, remaining, reset
	case x < fz.RateLimitRate+fz.ErrorRate+fz.LostResponseRate:
		return faultLost, remaining, reset
	}
	return faultNone, remaining, reset
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// discardWriter swallows the real answer of a request whose response is "lost".
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header { return d.h }

func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func (d *discardWriter) WriteHeader(int) {}
