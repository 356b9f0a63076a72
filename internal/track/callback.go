package track

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Limits on what a pipeline may post, so one chatty job cannot flood the
// portal or the store.
const (
	MaxLogLines   = 500
	MaxLineLength = 2000
)

// Errors the callbacks return.
var (
	ErrFinished = errors.New("run has finished")
	ErrTooMany  = errors.New("too many log lines")
)

// RecordOutputs stores the Pulumi stack outputs the pipeline posted; they
// become entity properties when the pipeline succeeds.
func (t *Tracker) RecordOutputs(ctx context.Context, id string, outputs map[string]any) error {
	_, err := t.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if r.State.Terminal() {
			return ch, ErrFinished
		}
		if r.Outputs == nil {
			r.Outputs = map[string]any{}
		}
		keys := make([]string, 0, len(outputs))
		for k, v := range outputs {
			r.Outputs[k] = v
			keys = append(keys, k)
		}
		ch.Add(fmt.Sprintf("pipeline posted %d output(s)", len(keys)))
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
	_, err := t.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if r.State.Terminal() {
			return ch, ErrFinished
		}
		for _, l := range lines {
			l = strings.TrimRight(l, "\r\n")
			if len(l) > MaxLineLength {
				l = truncate(l, MaxLineLength) + "…"
			}
			ch.Report(run.Report{Log: l})
		}
		return ch, nil
	})
	if err != nil {
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
