package track

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"unicode/utf8"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Limits on what a pipeline may post, so one chatty job cannot flood the
// portal or the store. Per-run totals are the Tracker's MaxLogLines and
// MaxOutputBytes.
const (
	MaxLogLines   = 500 // per call
	MaxLineLength = 2000

	DefaultMaxRunLogLines = 10000
	DefaultMaxOutputBytes = 256 << 10
)

// Errors the callbacks return.
var (
	ErrFinished = store.ErrFinished
	ErrTooMany  = errors.New("too many log lines")
	// ErrTooLarge means a run's total log lines or outputs would pass its cap.
	ErrTooLarge = store.ErrLimit
)

// RecordOutputs stores the Pulumi stack outputs the pipeline posted; they
// become entity properties when the pipeline succeeds.
// Outputs merge into those posted before; the merged whole may not pass
// MaxOutputBytes of JSON, or nothing of this post is kept (ErrTooLarge).
func (t *Tracker) RecordOutputs(ctx context.Context, id string, outputs map[string]any) error {
	limit := t.MaxOutputBytes
	if limit <= 0 {
		limit = DefaultMaxOutputBytes
	}
	_, err := t.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if r.State.Terminal() {
			return ch, ErrFinished
		}
		merged := make(map[string]any, len(r.Outputs)+len(outputs))
		maps.Copy(merged, r.Outputs)
		maps.Copy(merged, outputs)
		b, err := json.Marshal(merged)
		if err != nil {
			return ch, fmt.Errorf("encode outputs: %w", err)
		}
		if len(b) > limit {
			return ch, fmt.Errorf("%w: the run's outputs would be %d bytes of JSON, over the cap of %d", ErrTooLarge, len(b), limit)
		}
		r.Outputs = merged
		ch.Add(fmt.Sprintf("pipeline posted %d output(s)", len(outputs)))
		return ch, nil
	})
	if err != nil {
		return fmt.Errorf("record outputs of run %s: %w", id, err)
	}
	return nil
}

// AppendLogs queues the pipeline's log lines for the portal, in order.
func (t *Tracker) AppendLogs(ctx context.Context, id string, lines []string) error {
	if len(lines) > MaxLogLines {
		return fmt.Errorf("append logs to run %s: %w: %d, at most %d per call", id, ErrTooMany, len(lines), MaxLogLines)
	}
	limit := t.MaxLogLines
	if limit <= 0 {
		limit = DefaultMaxRunLogLines
	}
	clean := make([]string, len(lines))
	for i, l := range lines {
		l = strings.TrimRight(l, "\r\n")
		if len(l) > MaxLineLength {
			l = truncate(l, MaxLineLength) + "…"
		}
		clean[i] = l
	}
	if err := t.Store.AppendLogs(ctx, id, clean, limit); err != nil {
		return fmt.Errorf("append logs to run %s: %w", id, err)
	}
	if t.Reported != nil {
		t.Reported()
	}
	return nil
}

func truncate(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
