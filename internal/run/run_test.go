package run

import (
	"encoding/hex"
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestTransitions(t *testing.T) {
	legal := [][2]State{{Received, Queued}, {Received, Rejected}, {Queued, Dispatching}, {Dispatching, Running}, {Running, Succeeded}, {Running, TimedOut}, {AwaitingApproval, Queued}}
	for _, p := range legal {
		r := &Run{ID: "r", State: p[0]}
		if err := r.MoveTo(p[1], time.Now()); err != nil || r.State != p[1] {
			t.Fatalf("%s→%s: %v", p[0], p[1], err)
		}
	}
	illegal := [][2]State{{Succeeded, Running}, {Rejected, Queued}, {Queued, Succeeded}, {Received, Running}, {Failed, Failed}}
	for _, p := range illegal {
		r := &Run{ID: "r", State: p[0]}
		err := r.MoveTo(p[1], time.Now())
		if !errors.Is(err, ErrIllegalTransition) || r.State != p[0] {
			t.Fatalf("%s→%s allowed: %v", p[0], p[1], err)
		}
	}
	for _, s := range []State{Rejected, Succeeded, Failed, Canceled, TimedOut} {
		if !s.Terminal() {
			t.Fatalf("%s not terminal", s)
		}
	}
	if Running.Terminal() || Queued.Terminal() {
		t.Fatal("running/queued terminal")
	}
}

func TestToken(t *testing.T) {
	key := []byte("k")
	tok := Token(key, "r_1")
	if !ValidToken(key, "r_1", tok) || ValidToken(key, "r_2", tok) || ValidToken([]byte("other"), "r_1", tok) || ValidToken(key, "r_1", "") {
		t.Fatal("token checks wrong")
	}
	if a, b := NewID(), NewID(); a == b || len(a) != 34 {
		t.Fatal("ids not unique or wrong length")
	}
}

func TestNewIDSortsByCreationTime(t *testing.T) {
	first := NewID()
	if len(first) != 34 || first[:2] != "r_" {
		t.Fatalf("id %q: want r_ and 32 hex digits", first)
	}
	if _, err := hex.DecodeString(first[2:]); err != nil {
		t.Fatalf("id %q: %v", first, err)
	}
	// A millisecond later (or more), every id sorts after the first; ids of
	// the same millisecond differ in their random part.
	start := time.Now()
	for time.Now().UnixMilli() == start.UnixMilli() {
		runtime.Gosched()
	}
	seen := map[string]bool{first: true}
	for range 1000 {
		id := NewID()
		if id <= first {
			t.Fatalf("%q made after %q sorts before it", id, first)
		}
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
	}
}
