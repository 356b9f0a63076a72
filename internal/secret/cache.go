package secret

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DefaultRefreshInterval is how often a Cache re-reads its secrets when its
// Options name no interval.
const DefaultRefreshInterval = 5 * time.Minute

// refreshTimeout bounds one refresh round, so a hung call cannot stall the
// refresher past the next rounds.
const refreshTimeout = time.Minute

// Value is a resolved secret that may change while paved runs: Get returns
// the current value. A Value formats as its reference, never its value, so
// that printing or logging one by mistake leaks nothing.
type Value struct {
	ref string
	cur atomic.Pointer[string]
}

// NewValue returns a Value that holds v until a Cache refreshes it (tests
// and fixed values use it as it is).
func NewValue(ref, v string) *Value {
	val := &Value{ref: ref}
	val.cur.Store(&v)
	return val
}

// Get returns the current value. It is safe to call from any goroutine.
func (v *Value) Get() string { return *v.cur.Load() }

// Ref is the reference the value was read from.
func (v *Value) Ref() string { return v.ref }

// String is the reference, so fmt and loggers never print the value.
func (v *Value) String() string { return "secret(" + v.ref + ")" }

// GoString is String, for %#v.
func (v *Value) GoString() string { return v.String() }

// Options tune a Cache.
type Options struct {
	// Resolver reads the references. Without an AWS fetcher, the first
	// awssm: reference makes one with NewAWS (the SDK's default chain).
	Resolver Resolver
	// RefreshInterval is how often file: and awssm: references are read
	// again; 0 means DefaultRefreshInterval. env: ones never change.
	RefreshInterval time.Duration
	// Log receives refresh failures and rotations (references, never
	// values); nil means none.
	Log *zap.Logger
	// After is the refresher's clock; nil means time.After.
	After func(time.Duration) <-chan time.Time
}

// Cache resolves each reference once and, while Run runs, reads the file:
// and awssm: ones again every RefreshInterval, so a rotated secret reaches
// every consumer that reads its Value at use. A failed refresh keeps the
// last good value and is logged.
type Cache struct {
	opt Options
	log *zap.Logger

	mu      sync.Mutex
	aws     Fetcher // opt.Resolver.AWS, or made on first use
	entries map[string]*entry
	order   []string // refs in the order first asked for
}

type entry struct {
	val *Value
	// static: some consumer reads the value only at start, so a change
	// needs a restart to reach it.
	static bool
}

// NewCache returns an empty cache.
func NewCache(opt Options) *Cache {
	if opt.RefreshInterval <= 0 {
		opt.RefreshInterval = DefaultRefreshInterval
	}
	if opt.After == nil {
		opt.After = time.After
	}
	log := opt.Log
	if log == nil {
		log = zap.NewNop()
	}
	return &Cache{opt: opt, log: log, aws: opt.Resolver.AWS, entries: map[string]*entry{}}
}

// Value resolves ref, or returns the Value already resolved for it. Use it
// for consumers that call Get at each use.
func (c *Cache) Value(ctx context.Context, ref string) (*Value, error) {
	return c.value(ctx, ref, false)
}

// Static resolves ref for a consumer that reads it only at start (a key
// copied into a struct, a connection string). It is still watched: a change
// is logged as needing a restart.
func (c *Cache) Static(ctx context.Context, ref string) (string, error) {
	v, err := c.value(ctx, ref, true)
	if err != nil {
		return "", err
	}
	return v.Get(), nil
}

func (c *Cache) value(ctx context.Context, ref string, static bool) (*Value, error) {
	c.mu.Lock()
	e, ok := c.entries[ref]
	if ok {
		e.static = e.static || static
		c.mu.Unlock()
		return e.val, nil
	}
	c.mu.Unlock()
	r, err := c.resolver(ctx, ref)
	if err != nil {
		return nil, err
	}
	v, err := r.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[ref]; ok { // resolved meanwhile by another caller
		e.static = e.static || static
		return e.val, nil
	}
	e = &entry{val: NewValue(ref, v), static: static}
	c.entries[ref] = e
	c.order = append(c.order, ref)
	return e.val, nil
}

// resolver is the configured Resolver, with an AWS fetcher made on first
// use when ref needs one and none was given.
func (c *Cache) resolver(ctx context.Context, ref string) (Resolver, error) {
	r := c.opt.Resolver
	p, err := Parse(ref)
	if err != nil || p.Kind != "awssm" {
		return r, nil // Resolve reports a bad reference
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aws == nil {
		a, err := NewAWS(ctx)
		if err != nil {
			return r, fmt.Errorf("secret %s: %w", ref, err)
		}
		c.aws = a
	}
	r.AWS = c.aws
	return r, nil
}

// Refresh reads every file: and awssm: reference again now. A reference
// that fails keeps its last good value; its error is logged and returned
// (joined with the others). One secret named by several references (two
// keys of one JSON secret) is read once per refresh, so they stay a pair.
func (c *Cache) Refresh(ctx context.Context) error {
	c.mu.Lock()
	refs := append([]string(nil), c.order...)
	r := c.opt.Resolver
	if c.aws != nil {
		r.AWS = &onceFetcher{next: c.aws, got: map[string]fetched{}}
	}
	c.mu.Unlock()
	var errs []error
	for _, ref := range refs {
		if p, err := Parse(ref); err != nil || p.Kind == "env" {
			continue // the environment of a running process does not change
		}
		v, err := r.Resolve(ctx, ref)
		c.mu.Lock()
		e := c.entries[ref]
		static := e.static
		c.mu.Unlock()
		if err != nil {
			c.log.Warn("refresh secret failed; keeping the last good value", zap.String("ref", ref), zap.Error(err))
			errs = append(errs, err)
			continue
		}
		if v == e.val.Get() {
			continue
		}
		e.val.cur.Store(&v)
		if static {
			c.log.Warn("secret rotated; part of paved reads it only at start: restart paved to use the new value everywhere", zap.String("ref", ref))
		} else {
			c.log.Info("secret rotated; using the new value", zap.String("ref", ref))
		}
	}
	return errors.Join(errs...)
}

// Run refreshes every RefreshInterval until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.opt.After(c.opt.RefreshInterval):
		}
		rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		_ = c.Refresh(rctx) // logged there
		cancel()
	}
}

// onceFetcher reads each secret once per refresh round.
type onceFetcher struct {
	next Fetcher
	got  map[string]fetched
}

type fetched struct {
	s   string
	err error
}

func (f *onceFetcher) SecretString(ctx context.Context, id string) (string, error) {
	if g, ok := f.got[id]; ok {
		return g.s, g.err
	}
	s, err := f.next.SecretString(ctx, id)
	f.got[id] = fetched{s, err}
	return s, err
}
