package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/paved-idp/paved/internal/run"
)

// lastEventSeq is a run's last event seq (no row when it has none): its
// last row's seq plus the events grouped after it (migration 007). One seek
// to the run's last row, as MAX(seq) was.
const lastEventSeq = `SELECT seq + COALESCE(json_array_length(more), 0) FROM run_events WHERE run_id = ? ORDER BY seq DESC LIMIT 1`

// groupEvents encodes the events after the first for one run_events row;
// ok is false when they are better written a row each: a single event, or
// a message JSON would not carry byte for byte (invalid UTF-8 becomes
// U+FFFD), so that Events reads back exactly what was written.
func groupEvents(events []string) (string, bool) {
	if len(events) < 2 {
		return "", false
	}
	for _, m := range events {
		if !utf8.ValidString(m) {
			return "", false
		}
	}
	b, err := json.Marshal(events[1:])
	if err != nil {
		return "", false
	}
	return string(b), true
}

// appendMore appends the events grouped after first in its row, each one
// seq on, with first's time and state.
func appendMore(out []run.Event, first run.Event, more sql.NullString) ([]run.Event, error) {
	if !more.Valid {
		return out, nil
	}
	var msgs []string
	if err := json.Unmarshal([]byte(more.String), &msgs); err != nil {
		return out, fmt.Errorf("decode grouped events after seq %d: %w", first.Seq, err)
	}
	for i, m := range msgs {
		e := first
		e.Seq, e.Message = first.Seq+int64(i)+1, m
		out = append(out, e)
	}
	return out, nil
}
