// Package logstream sends a run's log as server-sent events, for the
// operator page and for API callers (Backstage's paved:run step): one event
// per line, its id the line's seq, so a client that reconnects resumes
// after the last line it had (Last-Event-ID). The stream ends with an
// "end" event, whose data is the run's final state, once the run has
// finished and every line has been sent.
package logstream

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Source reads a run and its log.
type Source interface {
	Run(ctx context.Context, id string) (*run.Run, error)
	Logs(ctx context.Context, id string, after int64, limit int) ([]store.LogLine, error)
}

// Options tune a stream; zero values take the defaults.
type Options struct {
	Poll      time.Duration   // how often the store is read (500 ms)
	Heartbeat time.Duration   // a comment this often keeps proxies from closing an idle stream (15 s)
	Done      <-chan struct{} // closed when paved shuts down: the stream ends, clients reconnect
	Log       *zap.Logger
}

// batch is how many log lines one store read takes.
const batch = 500

// ResumeAt is the seq after which a stream starts: the Last-Event-ID a
// reconnecting EventSource sends, else ?after=.
func ResumeAt(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("after")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("the stream resumes after a log line's number, not %.20q", v)
	}
	return n, nil
}

// Serve streams run id's log lines after seq after until the run has
// finished, the client leaves or opt.Done closes. The caller has checked
// that the run exists and may be read.
func Serve(w http.ResponseWriter, r *http.Request, src Source, id string, after int64, opt Options) {
	if opt.Poll <= 0 {
		opt.Poll = 500 * time.Millisecond
	}
	if opt.Heartbeat <= 0 {
		opt.Heartbeat = 15 * time.Second
	}
	if opt.Log == nil {
		opt.Log = zap.NewNop()
	}
	ctx := r.Context()
	failed := func(err error) {
		if ctx.Err() == nil { // not merely a client that left
			opt.Log.Error("log stream", zap.String("run_id", id), zap.Error(err))
		}
	}
	rc := http.NewResponseController(w)
	// The server's write timeout is for ordinary answers; a log stream
	// lasts as long as its run. Not every writer supports this (tests').
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy must pass events on at once
	w.WriteHeader(http.StatusOK)
	out := bufio.NewWriter(w)
	flush := func() bool { return out.Flush() == nil && rc.Flush() == nil }
	fmt.Fprint(out, "retry: 2000\n\n")
	if !flush() {
		return
	}
	poll, beat := time.NewTicker(opt.Poll), time.NewTicker(opt.Heartbeat)
	defer poll.Stop()
	defer beat.Stop()
	for {
		// The state is read before the lines: a finished run takes no more
		// lines, so a run seen finished has all of its lines stored already.
		cur, err := src.Run(ctx, id)
		if err != nil {
			failed(err)
			return
		}
		lines, err := src.Logs(ctx, id, after, batch)
		if err != nil {
			failed(err)
			return
		}
		for _, l := range lines {
			b, err := json.Marshal(l)
			if err != nil {
				failed(fmt.Errorf("encode log line %d: %w", l.Seq, err))
				return
			}
			fmt.Fprintf(out, "id: %d\ndata: %s\n\n", l.Seq, b)
			after = l.Seq
		}
		switch {
		case len(lines) == batch:
			if !flush() {
				return
			}
			continue // more may be waiting: read on without pausing
		case len(lines) == 0 && cur.State.Terminal():
			fmt.Fprintf(out, "event: end\ndata: %s\n\n", cur.State)
			flush()
			return
		case len(lines) > 0:
			if !flush() {
				return
			}
			if cur.State.Terminal() {
				continue // every line is stored: the next read ends the stream
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-opt.Done:
			return
		case <-poll.C:
		case <-beat.C:
			fmt.Fprint(out, ": still here\n\n")
			if !flush() {
				return
			}
		}
	}
}
