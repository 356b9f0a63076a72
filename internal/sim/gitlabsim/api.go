package gitlabsim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/sim/gitlabsim/engine"
	"github.com/paved-idp/paved/internal/sim/gitlabsim/wire"
)

const apiPrefix = "/api/v4/projects/"

// ServeHTTP serves the simulated REST API under /api/v4.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	f := s.faults
	s.lastRoot = webRoot(r)
	s.mu.Unlock()
	// Paths arrive with the project path URL-encoded ("group%2Fproj"), so
	// split the escaped path and unescape the project id alone.
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(path, apiPrefix) {
		wire.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
		return
	}
	parts := strings.Split(strings.TrimPrefix(path, apiPrefix), "/")
	pid, err := url.PathUnescape(parts[0])
	if err != nil {
		wire.WriteJSON(w, http.StatusNotFound, wire.Msg("404 Project Not Found"))
		return
	}
	rest := strings.Join(parts[1:], "/")
	isCreate := r.Method == http.MethodPost && (rest == "pipeline" || rest == "trigger/pipeline")
	if isCreate {
		s.count(func(st *Stats) { st.CreateCalls++ })
	}
	if f.Latency > 0 && !wait(r.Context(), f.Latency) {
		return
	}
	if s.roll(f.SlowRate) && !wait(r.Context(), f.SlowLatency) {
		return
	}
	// Rack::Attack throttles before authentication, so the 429 comes first.
	if s.roll(f.RateLimitRate) {
		s.rateLimited(w, f.RateLimitReset)
		return
	}
	if s.roll(f.ServerErrorRate) {
		s.count(func(st *Stats) { st.ServerErrors++ })
		wire.WriteJSON(w, http.StatusInternalServerError, wire.Msg("500 Internal Server Error"))
		return
	}
	// The trigger endpoint authenticates with its own token in the body.
	if rest != "trigger/pipeline" && !s.authorized(r) {
		s.count(func(st *Stats) { st.Unauthorized++ })
		wire.WriteJSON(w, http.StatusUnauthorized, wire.Msg("401 Unauthorized"))
		return
	}
	proj, ok := s.engine.Project(pid)
	if !ok {
		wire.WriteJSON(w, http.StatusNotFound, wire.Msg("404 Project Not Found"))
		return
	}
	switch {
	case isCreate && rest == "pipeline":
		s.handleCreate(w, r, proj, f)
	case isCreate:
		s.handleTrigger(w, r, proj, f)
	case r.Method == http.MethodGet && rest == "pipelines":
		s.handleList(w, r, proj)
	case len(parts) >= 3 && parts[1] == "pipelines":
		id, ok := wire.ParseID(parts[2])
		if !ok {
			wire.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "pipeline_id is invalid"})
			return
		}
		s.handlePipeline(w, r, proj, id, strings.Join(parts[3:], "/"))
	default:
		wire.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	}
}

func (s *Sim) handlePipeline(w http.ResponseWriter, r *http.Request, proj Project, id int64, sub string) {
	snap, root, ok := s.engine.Get(id)
	if !ok || snap.ProjectID != proj.ID {
		wire.WriteJSON(w, http.StatusNotFound, wire.Msg("404 Not found"))
		return
	}
	switch {
	case r.Method == http.MethodGet && sub == "":
		wire.WriteJSON(w, http.StatusOK, wire.PipelineWithMetadataJSON(snap, root))
	case r.Method == http.MethodGet && sub == "variables":
		wire.WriteJSON(w, http.StatusOK, wire.VariablesJSON(snap))
	case r.Method == http.MethodGet && sub == "jobs":
		wire.WriteJSON(w, http.StatusOK, []any{wire.JobJSON(snap, root)})
	case r.Method == http.MethodPost && sub == "cancel":
		// The docs: "returns 200 regardless of the pipeline's state".
		s.engine.Cancel(id)
		snap, _ = s.Pipeline(id)
		wire.WriteJSON(w, http.StatusOK, wire.PipelineJSON(snap, root))
	default:
		wire.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	}
}

func (s *Sim) handleCreate(w http.ResponseWriter, r *http.Request, proj Project, f Faults) {
	in, err := wire.ReadParams(r)
	if err != nil {
		wire.WriteJSON(w, http.StatusBadRequest, wire.Msg("400 (Bad request) \"body\" not parsable: "+err.Error()))
		return
	}
	ref, _ := in["ref"].(string)
	if ref == "" {
		wire.WriteJSON(w, http.StatusBadRequest, wire.Msg(`400 (Bad request) "ref" not given`))
		return
	}
	vars, err := wire.ParseVariables(in["variables"])
	if err != nil {
		wire.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	s.finishCreate(w, r, proj, ref, "api", vars, f)
}

func (s *Sim) handleTrigger(w http.ResponseWriter, r *http.Request, proj Project, f Faults) {
	in, err := wire.ReadParams(r)
	if err != nil {
		wire.WriteJSON(w, http.StatusBadRequest, wire.Msg("400 (Bad request) \"body\" not parsable: "+err.Error()))
		return
	}
	token, _ := in["token"].(string)
	if token == "" || (s.cfg.TriggerToken != "" && token != s.cfg.TriggerToken) {
		s.count(func(st *Stats) { st.Unauthorized++ })
		wire.WriteJSON(w, http.StatusNotFound, wire.Msg("404 Not Found"))
		return
	}
	ref, _ := in["ref"].(string)
	if ref == "" {
		wire.WriteJSON(w, http.StatusBadRequest, wire.Msg(`400 (Bad request) "ref" not given`))
		return
	}
	s.finishCreate(w, r, proj, ref, "trigger", wire.TriggerVariables(in["variables"]), f)
}

func (s *Sim) finishCreate(w http.ResponseWriter, r *http.Request, proj Project, ref, source string, vars []Variable, f Faults) {
	p, err := s.engine.Create(engine.Spec{Project: proj, Ref: ref, Source: source, WebRoot: webRoot(r), Variables: vars, RunJob: true})
	switch {
	case errors.Is(err, engine.ErrNameTooLong):
		// render_validation_error! of the pipeline PopulateMetadata refused.
		msg := "Failed to build pipeline metadata! Name is too long (maximum is " + strconv.Itoa(engine.MaxNameLength) + " characters)"
		wire.WriteJSON(w, http.StatusBadRequest, map[string]any{"message": map[string]any{"base": []string{msg}}})
		return
	case err != nil:
		wire.WriteJSON(w, http.StatusInternalServerError, wire.Msg("500 Internal Server Error"))
		return
	}
	if s.roll(f.LostCreateRate) {
		s.count(func(st *Stats) { st.ServerErrors++ })
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>\n")
		return
	}
	_, root, _ := s.engine.Get(p.ID)
	wire.WriteJSON(w, http.StatusCreated, wire.PipelineJSON(p, root))
}

// wait holds a request for d; it reports false when the client left first.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// webRoot is GitLab's web root as the request reached it.
func webRoot(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

func (s *Sim) handleList(w http.ResponseWriter, r *http.Request, proj Project) {
	lq, err := wire.ParseListQuery(r.URL.Query())
	if err != nil {
		wire.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	list, roots := s.engine.Select(func(p Pipeline) bool { return p.ProjectID == proj.ID && lq.Match(p) })
	lq.Sort(list)
	lq.WritePage(w, r, lq.LatestPerRef(list), roots)
}

func (s *Sim) authorized(r *http.Request) bool {
	tok := r.Header.Get("PRIVATE-TOKEN")
	if tok == "" {
		if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			tok = b
		}
	}
	return tok != "" && (s.cfg.Token == "" || tok == s.cfg.Token)
}

// rateLimited counts and answers a throttled request.
func (s *Sim) rateLimited(w http.ResponseWriter, reset time.Duration) {
	s.count(func(st *Stats) { st.RateLimited++ })
	wire.RateLimited(w, reset)
}

func (s *Sim) roll(rate float64) bool {
	if rate <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < rate
}

func (s *Sim) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}
