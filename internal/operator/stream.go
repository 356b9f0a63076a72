package operator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// streamBatch is how many log lines one store read takes.
const streamBatch = 500

// stream sends a run's log as server-sent events: one event per line, its
// id the line's seq, so that EventSource resumes after the last line it
// had (Last-Event-ID) when it reconnects. The first connection starts after
// ?after=, the lines the page already shows. The stream ends (event "end")
// once the run has finished and every line has been sent.
func (u *ui) stream(w http.ResponseWriter, r *http.Request, s session) {
	rn, ok := u.findRun(w, r, s)
	if !ok {
		return
	}
	after, err := resumeAt(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, id := r.Context(), rn.ID
	rc := http.NewResponseController(w)
	// The server's write timeout is for ordinary answers; a log stream
	// lasts as long as its run. Not every writer supports this (tests').
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // a proxy must pass events on at once
	w.WriteHeader(http.StatusOK)
	out := bufio.NewWriter(w)
	flush := func() bool { return out.Flush() == nil && rc.Flush() == nil }
	fmt.Fprint(out, "retry: 2000\n\n")
	if !flush() {
		return
	}
	poll, beat := time.NewTicker(u.poll), time.NewTicker(u.heartbeat)
	defer poll.Stop()
	defer beat.Stop()
	for {
		// The state is read before the lines: a finished run takes no more
		// lines, so a run seen finished has all of its lines stored already.
		cur, err := u.runs.Run(ctx, id)
		if err != nil {
			u.streamFailed(ctx.Err(), id, err)
			return
		}
		lines, err := u.runs.Logs(ctx, id, after, streamBatch)
		if err != nil {
			u.streamFailed(ctx.Err(), id, err)
			return
		}
		for _, l := range lines {
			b, err := json.Marshal(l)
			if err != nil {
				u.log.Error("operator page: encode a log line", zap.String("run", id), zap.Error(err))
				return
			}
			fmt.Fprintf(out, "id: %d\ndata: %s\n\n", l.Seq, b)
			after = l.Seq
		}
		switch {
		case len(lines) == streamBatch:
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
		}
		select {
		case <-ctx.Done():
			return
		case <-u.cfg.Done:
			return
		case <-poll.C:
		case <-beat.C:
			fmt.Fprint(out, ": still here\n\n") // keeps proxies from closing an idle stream
			if !flush() {
				return
			}
		}
	}
}

// resumeAt is the seq after which a stream starts: the Last-Event-ID a
// reconnecting EventSource sends, else the page's ?after=.
func resumeAt(r *http.Request) (int64, error) {
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

// streamFailed logs a store failure, unless the operator simply left.
func (u *ui) streamFailed(gone error, id string, err error) {
	if gone == nil {
		u.log.Error("operator page: log stream", zap.String("run", id), zap.Error(err))
	}
}
