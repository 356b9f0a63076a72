package gitlabsim

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const apiPrefix = "/api/v4/projects/"

// ServeHTTP serves the simulated REST API under /api/v4.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	f := s.faults
	s.mu.Unlock()
	// Paths arrive with the project path URL-encoded ("group%2Fproj"), so
	// split the escaped path and unescape the project id alone.
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(path, apiPrefix) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
		return
	}
	parts := strings.Split(strings.TrimPrefix(path, apiPrefix), "/")
	pid, err := url.PathUnescape(parts[0])
	if err != nil {
		writeJSON(w, http.StatusNotFound, msg("404 Project Not Found"))
		return
	}
	rest := strings.Join(parts[1:], "/")
	isCreate := r.Method == http.MethodPost && (rest == "pipeline" || rest == "trigger/pipeline")
	if isCreate {
		s.count(func(st *Stats) { st.CreateCalls++ })
	}
	if f.Latency > 0 && !sleep(r.Context(), f.Latency) {
		return
	}
	if s.roll(f.SlowRate) && !sleep(r.Context(), f.SlowLatency) {
		return
	}
	// Rack::Attack throttles before authentication, so the 429 comes first.
	if s.roll(f.RateLimitRate) {
		s.rateLimited(w, f.RateLimitReset)
		return
	}
	if s.roll(f.ServerErrorRate) {
		s.count(func(st *Stats) { st.ServerErrors++ })
		writeJSON(w, http.StatusInternalServerError, msg("500 Internal Server Error"))
		return
	}
	// The trigger endpoint authenticates with its own token in the body.
	if rest != "trigger/pipeline" && !s.authorized(r) {
		s.count(func(st *Stats) { st.Unauthorized++ })
		writeJSON(w, http.StatusUnauthorized, msg("401 Unauthorized"))
		return
	}
	s.mu.Lock()
	proj, ok := s.project(pid)
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, msg("404 Project Not Found"))
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
		id, ok := parseInt(parts[2])
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "pipeline_id is invalid"})
			return
		}
		s.handlePipeline(w, r, proj, id, strings.Join(parts[3:], "/"))
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	}
}

func (s *Sim) handlePipeline(w http.ResponseWriter, r *http.Request, proj *Project, id int64, sub string) {
	s.mu.Lock()
	p, ok := s.pipelines[id]
	var snap Pipeline
	var root string
	if ok && p.ProjectID == proj.ID {
		snap, root = p.snapshot(), p.webRoot
	}
	s.mu.Unlock()
	if !ok || snap.ProjectID != proj.ID {
		writeJSON(w, http.StatusNotFound, msg("404 Not found"))
		return
	}
	switch {
	case r.Method == http.MethodGet && sub == "":
		writeJSON(w, http.StatusOK, restPipeline(snap, root))
	case r.Method == http.MethodGet && sub == "variables":
		vars := make([]map[string]any, 0, len(snap.Variables))
		for _, v := range snap.Variables {
			vars = append(vars, map[string]any{"key": v.Key, "variable_type": v.VariableType, "value": v.Value})
		}
		writeJSON(w, http.StatusOK, vars)
	case r.Method == http.MethodGet && sub == "jobs":
		writeJSON(w, http.StatusOK, []any{restJob(snap, root)})
	case r.Method == http.MethodPost && sub == "cancel":
		// The docs: "returns 200 regardless of the pipeline's state".
		s.transition(id, StatusCanceled, "")
		snap, _ = s.Pipeline(id)
		writeJSON(w, http.StatusOK, restPipeline(snap, root))
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	}
}

func (s *Sim) handleCreate(w http.ResponseWriter, r *http.Request, proj *Project, f Faults) {
	in, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, msg("400 (Bad request) \"body\" not parsable: "+err.Error()))
		return
	}
	ref, _ := in["ref"].(string)
	if ref == "" {
		writeJSON(w, http.StatusBadRequest, msg(`400 (Bad request) "ref" not given`))
		return
	}
	vars, err := parseVariables(in["variables"])
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	s.finishCreate(w, r, proj, ref, "api", vars, f)
}

func (s *Sim) handleTrigger(w http.ResponseWriter, r *http.Request, proj *Project, f Faults) {
	in, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, msg("400 (Bad request) \"body\" not parsable: "+err.Error()))
		return
	}
	token, _ := in["token"].(string)
	if token == "" || (s.cfg.TriggerToken != "" && token != s.cfg.TriggerToken) {
		s.count(func(st *Stats) { st.Unauthorized++ })
		writeJSON(w, http.StatusNotFound, msg("404 Not Found"))
		return
	}
	ref, _ := in["ref"].(string)
	if ref == "" {
		writeJSON(w, http.StatusBadRequest, msg(`400 (Bad request) "ref" not given`))
		return
	}
	var vars []Variable
	if m, ok := in["variables"].(map[string]any); ok {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			vars = append(vars, Variable{Key: k, Value: fmt.Sprint(m[k]), VariableType: "env_var"})
		}
	}
	s.finishCreate(w, r, proj, ref, "trigger", vars, f)
}

func (s *Sim) finishCreate(w http.ResponseWriter, r *http.Request, proj *Project, ref, source string, vars []Variable, f Faults) {
	root := "http://" + r.Host
	if r.TLS != nil {
		root = "https://" + r.Host
	}
	p := s.create(proj, ref, source, root, vars)
	if s.roll(f.LostCreateRate) {
		s.count(func(st *Stats) { st.ServerErrors++ })
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>\n")
		return
	}
	s.mu.Lock()
	root = s.pipelines[p.ID].webRoot
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, restPipeline(p, root))
}

func (s *Sim) handleList(w http.ResponseWriter, r *http.Request, proj *Project) {
	q := r.URL.Query()
	var after, before time.Time
	for name, t := range map[string]*time.Time{"updated_after": &after, "updated_before": &before} {
		if v := q.Get(name); v != "" {
			parsed, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": name + " is invalid"})
				return
			}
			*t = parsed
		}
	}
	orderBy, sortDir := q.Get("order_by"), q.Get("sort")
	if orderBy == "" {
		orderBy = "id"
	}
	if sortDir == "" {
		sortDir = "desc"
	}
	if !oneOf(orderBy, "id", "status", "ref", "updated_at", "user_id") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "order_by does not have a valid value"})
		return
	}
	if !oneOf(sortDir, "asc", "desc") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "sort does not have a valid value"})
		return
	}

	s.mu.Lock()
	var list []Pipeline
	roots := map[int64]string{}
	for _, p := range s.pipelines {
		if p.ProjectID != proj.ID ||
			(q.Get("ref") != "" && p.Ref != q.Get("ref")) ||
			(q.Get("status") != "" && p.Status != q.Get("status")) ||
			(q.Get("sha") != "" && p.SHA != q.Get("sha")) ||
			(q.Get("source") != "" && p.Source != q.Get("source")) ||
			(!after.IsZero() && !p.UpdatedAt.After(after)) ||
			(!before.IsZero() && !p.UpdatedAt.Before(before)) ||
			!inScope(p.Status, q.Get("scope")) {
			continue
		}
		list = append(list, p.snapshot())
		roots[p.ID] = p.webRoot
	}
	s.mu.Unlock()

	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		var less bool
		switch orderBy {
		case "status":
			less = a.Status < b.Status || (a.Status == b.Status && a.ID < b.ID)
		case "ref":
			less = a.Ref < b.Ref || (a.Ref == b.Ref && a.ID < b.ID)
		case "updated_at":
			less = a.UpdatedAt.Before(b.UpdatedAt) || (a.UpdatedAt.Equal(b.UpdatedAt) && a.ID < b.ID)
		default: // id, user_id (one user)
			less = a.ID < b.ID
		}
		if sortDir == "desc" {
			return !less
		}
		return less
	})

	page, perPage := intParam(q.Get("page"), 1), intParam(q.Get("per_page"), 20)
	if perPage > 100 {
		perPage = 100
	}
	total := len(list)
	pages := int(math.Max(1, math.Ceil(float64(total)/float64(perPage))))
	lo := min((page-1)*perPage, total)
	hi := min(lo+perPage, total)
	out := make([]map[string]any, 0, hi-lo)
	for _, p := range list[lo:hi] {
		out = append(out, restPipelineBasic(p, roots[p.ID]))
	}
	setPagination(w, r, page, perPage, total, pages)
	writeJSON(w, http.StatusOK, out)
}

// setPagination writes GitLab's offset-pagination headers.
func setPagination(w http.ResponseWriter, r *http.Request, page, perPage, total, pages int) {
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(perPage))
	h.Set("X-Total", strconv.Itoa(total))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	h.Set("X-Next-Page", "")
	h.Set("X-Prev-Page", "")
	link := func(n int, rel string) string {
		u := url.URL{Scheme: "http", Host: r.Host, RawPath: r.URL.EscapedPath(), Path: r.URL.Path}
		if r.TLS != nil {
			u.Scheme = "https"
		}
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		q.Set("per_page", strconv.Itoa(perPage))
		u.RawQuery = q.Encode()
		return "<" + u.String() + `>; rel="` + rel + `"`
	}
	var links []string
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(min(page-1, pages)))
		links = append(links, link(min(page-1, pages), "prev"))
	}
	if page < pages {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
		links = append(links, link(page+1, "next"))
	}
	links = append(links, link(1, "first"), link(pages, "last"))
	h.Set("Link", strings.Join(links, ", "))
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

// rateLimited answers as GitLab's Rack::Attack throttle does: 429, a
// plain-text "Retry later" body and the RateLimit-* headers.
func (s *Sim) rateLimited(w http.ResponseWriter, reset time.Duration) {
	s.count(func(st *Stats) { st.RateLimited++ })
	secs := int64(math.Ceil(reset.Seconds()))
	if secs < 1 {
		secs = 1
	}
	at := time.Now().Add(time.Duration(secs) * time.Second)
	h := w.Header()
	h.Set("RateLimit-Name", "throttle_authenticated_api")
	h.Set("RateLimit-Limit", "600")
	h.Set("RateLimit-Observed", "601")
	h.Set("RateLimit-Remaining", "0")
	h.Set("RateLimit-Reset", strconv.FormatInt(at.Unix(), 10))
	h.Set("RateLimit-ResetTime", at.UTC().Format(http.TimeFormat))
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = io.WriteString(w, "Retry later\n")
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

// readParams merges the query string with a JSON or urlencoded body, as
// Grape does, into a generic map (multipart bodies are not supported). Form keys "variables[][key]" and
// "variables[KEY]" become a list of maps and a map respectively.
func readParams(r *http.Request) (map[string]any, error) {
	out := map[string]any{}
	addForm(out, r.URL.RawQuery)
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "application/json" || (ct == "" && len(body) > 0 && body[0] == '{'):
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	default:
		addForm(out, string(body))
	}
	return out, nil
}

// addForm decodes an urlencoded string in order, so that the Rails
// array-of-hashes encoding (variables[][key]=A&variables[][value]=1&...)
// keeps each hash together.
func addForm(out map[string]any, raw string) {
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		switch {
		case strings.HasPrefix(k, "variables[]["):
			field := strings.TrimSuffix(strings.TrimPrefix(k, "variables[]["), "]")
			list, _ := out["variables"].([]any)
			if n := len(list); n == 0 || hasKey(list[n-1], field) {
				list = append(list, map[string]any{})
			}
			list[len(list)-1].(map[string]any)[field] = v
			out["variables"] = list
		case strings.HasPrefix(k, "variables[") && strings.HasSuffix(k, "]"):
			m, _ := out["variables"].(map[string]any)
			if m == nil {
				m = map[string]any{}
			}
			m[k[len("variables["):len(k)-1]] = v
			out["variables"] = m
		default:
			out[k] = v
		}
	}
}

func hasKey(m any, k string) bool {
	_, ok := m.(map[string]any)[k]
	return ok
}

// parseVariables validates the documented array of {key, value,
// variable_type} hashes; variable_type defaults to env_var.
func parseVariables(raw any) ([]Variable, error) {
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("variables is invalid")
	}
	vars := make([]Variable, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("variables[%d] is invalid", i)
		}
		key, _ := m["key"].(string)
		if key == "" {
			return nil, fmt.Errorf("variables[%d][key] is missing", i)
		}
		typ, _ := m["variable_type"].(string)
		if typ == "" {
			typ = "env_var"
		}
		if typ != "env_var" && typ != "file" {
			return nil, fmt.Errorf("variables[%d][variable_type] does not have a valid value", i)
		}
		val := ""
		if m["value"] != nil {
			val = fmt.Sprint(m["value"])
		}
		vars = append(vars, Variable{Key: key, Value: val, VariableType: typ})
	}
	return vars, nil
}

func inScope(status, scope string) bool {
	switch scope {
	case "running":
		return status == StatusRunning
	case "pending":
		return status == StatusPending
	case "finished":
		return Terminal(status)
	}
	return true // "", branches, tags: every simulated ref is a branch
}

func msg(m string) map[string]string { return map[string]string{"message": m} }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func parseInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

func intParam(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return def
	}
	return n
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func oneOf(s string, opts ...string) bool {
	for _, o := range opts {
		if s == o {
			return true
		}
	}
	return false
}
