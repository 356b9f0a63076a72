package load

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// glRequest is one request paved made to GitLab, as the proxy saw it.
type glRequest struct {
	at     time.Time // arrival, before any hold
	kind   string
	status int
}

// gitlabProxy sits between paved and the GitLab simulator (paved's
// gitlab.baseURL points at it through PAVED_GITLAB_BASEURL): it
// timestamps and classifies every request, and can hold requests (the
// gate) until it is opened. The simulator is bound after the harness has
// made it; requests wait for that.
type gitlabProxy struct {
	URL string

	mu    sync.Mutex
	reqs  []glRequest
	gate  chan struct{} // closed: open
	sim   http.Handler
	bound chan struct{}
}

func newGitLabProxy(t *testing.T) *gitlabProxy {
	p := &gitlabProxy{gate: make(chan struct{}), bound: make(chan struct{})}
	close(p.gate)
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *gitlabProxy) bind(sim http.Handler) {
	p.mu.Lock()
	p.sim = sim
	p.mu.Unlock()
	close(p.bound)
}

// hold makes later requests wait until release.
func (p *gitlabProxy) hold() {
	p.mu.Lock()
	p.gate = make(chan struct{})
	p.mu.Unlock()
}

func (p *gitlabProxy) release() {
	p.mu.Lock()
	close(p.gate)
	p.mu.Unlock()
}

func (p *gitlabProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	i := len(p.reqs)
	p.reqs = append(p.reqs, glRequest{at: time.Now(), kind: kindOf(r)})
	gate := p.gate
	p.mu.Unlock()
	for _, wait := range []chan struct{}{gate, p.bound} {
		select {
		case <-wait:
		case <-r.Context().Done():
			return
		}
	}
	p.mu.Lock()
	sim := p.sim
	p.mu.Unlock()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	sim.ServeHTTP(sw, r)
	p.mu.Lock()
	p.reqs[i].status = sw.status
	p.mu.Unlock()
}

// kindOf names a GitLab API request by what it does.
func kindOf(r *http.Request) string {
	path := r.URL.EscapedPath()
	switch {
	case r.Method == http.MethodPost && (strings.HasSuffix(path, "/pipeline") || strings.HasSuffix(path, "/trigger/pipeline")):
		return "create"
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/cancel"):
		return "cancel"
	case r.Method == http.MethodGet && strings.HasSuffix(path, "/pipelines"):
		return "list"
	case r.Method == http.MethodGet && strings.HasSuffix(path, "/variables"):
		return "variables"
	case r.Method == http.MethodGet && strings.Contains(path, "/pipelines/"):
		return "get"
	}
	return r.Method + " other"
}

func (p *gitlabProxy) requests() []glRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.reqs)
}

// maxInWindow is the largest number of requests whose arrivals fall in
// any window of length w (half-open: [t, t+w)).
func maxInWindow(reqs []glRequest, w time.Duration) int {
	at := make([]time.Time, len(reqs))
	for i, r := range reqs {
		at[i] = r.at
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	best, i := 0, 0
	for j := range at {
		for at[j].Sub(at[i]) >= w {
			i++
		}
		best = max(best, j-i+1)
	}
	return best
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// hookRelay stands where GitLab's webhook workers do: the simulator
// delivers its pipeline hooks to the relay (one at a time, as its sender
// does), the relay answers at once and forwards each to paved from a
// number of workers, as GitLab sends hooks from many Sidekiq workers. A
// pipeline's hooks go through one worker, in order, as the simulator sent
// them; a failed delivery is retried twice, as the simulator would.
type hookRelay struct {
	URL    string
	target string
	queues []chan relayed

	mu      sync.Mutex
	records []relayRecord
}

type relayed struct {
	header http.Header
	body   []byte
	got    time.Time
	id     int64
	status string
}

// relayRecord is one forwarded hook and paved's answer.
type relayRecord struct {
	pipeline  int64
	status    string
	got, done time.Time
	code      int
	answer    string
	err       string
}

func newHookRelay(t *testing.T, target string, workers, queue int) *hookRelay {
	rl := &hookRelay{target: target, queues: make([]chan relayed, workers)}
	var wg sync.WaitGroup
	for i := range rl.queues {
		rl.queues[i] = make(chan relayed, queue)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range rl.queues[i] {
				rl.forward(j)
			}
		}()
	}
	srv := httptest.NewServer(http.HandlerFunc(rl.serve))
	t.Cleanup(func() {
		srv.Close()
		for _, q := range rl.queues {
			close(q)
		}
		wg.Wait()
	})
	rl.URL = srv.URL
	return rl
}

func (rl *hookRelay) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var hook struct {
		Attrs struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		} `json:"object_attributes"`
	}
	_ = json.Unmarshal(body, &hook)
	j := relayed{header: r.Header.Clone(), body: body, got: time.Now(), id: hook.Attrs.ID, status: hook.Attrs.Status}
	rl.queues[int(uint64(hook.Attrs.ID)%uint64(len(rl.queues)))] <- j
	w.WriteHeader(http.StatusOK)
}

func (rl *hookRelay) forward(j relayed) {
	rec := relayRecord{pipeline: j.id, status: j.status, got: j.got}
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(10<<attempt) * time.Millisecond)
		}
		req, _ := http.NewRequest(http.MethodPost, rl.target, bytes.NewReader(j.body))
		for _, k := range []string{"Content-Type", "X-Gitlab-Event", "X-Gitlab-Token", "X-Gitlab-Event-Uuid", "X-Gitlab-Webhook-Uuid", "X-Gitlab-Instance", "Idempotency-Key", "User-Agent"} {
			if v := j.header.Get(k); v != "" {
				req.Header.Set(k, v)
			}
		}
		resp, err := loadClient.Do(req)
		if err != nil {
			rec.err = err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		rec.code, rec.answer, rec.err = resp.StatusCode, strings.TrimSpace(string(b)), ""
		if resp.StatusCode < 500 {
			break
		}
	}
	rec.done = time.Now()
	rl.mu.Lock()
	rl.records = append(rl.records, rec)
	rl.mu.Unlock()
}

func (rl *hookRelay) snapshot() []relayRecord {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return slices.Clone(rl.records)
}
