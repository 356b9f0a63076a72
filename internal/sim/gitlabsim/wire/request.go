package wire

import (
	"encoding/json"
	"errors"
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

// ReadParams merges the query string with a JSON or urlencoded body, as
// Grape does, into a generic map (multipart bodies are not supported). Form keys "variables[][key]" and
// "variables[KEY]" become a list of maps and a map respectively.
func ReadParams(r *http.Request) (map[string]any, error) {
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

// ParseVariables validates the documented array of {key, value,
// variable_type} hashes; variable_type defaults to env_var.
func ParseVariables(raw any) ([]Variable, error) {
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

// TriggerVariables turns the variables[KEY]=value hash of POST
// /trigger/pipeline into env_var variables, sorted by key.
func TriggerVariables(raw any) []Variable {
	var vars []Variable
	if m, ok := raw.(map[string]any); ok {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			vars = append(vars, Variable{Key: k, Value: fmt.Sprint(m[k]), VariableType: "env_var"})
		}
	}
	return vars
}

// IsSource reports whether s is a pipeline source (CI_PIPELINE_SOURCE in
// doc/ci/jobs/job_rules.md, and "unknown"): the list endpoint refuses any
// other `source` filter.
func IsSource(s string) bool {
	return oneOf(s, "api", "chat", "external", "external_pull_request_event", "merge_request_event",
		"ondemand_dast_scan", "ondemand_dast_validation", "parent_pipeline", "pipeline", "push", "schedule",
		"security_orchestration_policy", "trigger", "unknown", "web", "webide")
}

// isStatus reports whether s is a documented value of the list's `status` filter.
func isStatus(s string) bool {
	return oneOf(s, "created", "waiting_for_resource", "preparing", "pending", "running", "success",
		"failed", "canceled", "skipped", "manual", "scheduled")
}

// ListQuery is the validated query string of GET /projects/:id/pipelines.
type ListQuery struct {
	q                url.Values
	times            map[string]time.Time // updated_after, updated_before, created_after, created_before
	orderBy, sortDir string
}

// ParseListQuery validates the filters and ordering of a pipeline list as
// lib/api/ci/pipelines.rb declares them; an error's text is the "error"
// of the 400 answer.
func ParseListQuery(q url.Values) (ListQuery, error) {
	times := map[string]time.Time{}
	for _, name := range []string{"updated_after", "updated_before", "created_after", "created_before"} {
		if v := q.Get(name); v != "" {
			parsed, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return ListQuery{}, fmt.Errorf("%s is invalid", name)
			}
			times[name] = parsed
		}
	}
	orderBy, sortDir := q.Get("order_by"), q.Get("sort")
	if orderBy == "" {
		orderBy = "id"
	}
	if sortDir == "" {
		sortDir = "desc"
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"order_by", oneOf(orderBy, "id", "status", "ref", "updated_at", "user_id")},
		{"sort", oneOf(sortDir, "asc", "desc")},
		{"scope", oneOf(q.Get("scope"), "", "running", "pending", "finished", "branches", "tags")},
		{"status", q.Get("status") == "" || isStatus(q.Get("status"))},
		{"source", q.Get("source") == "" || IsSource(q.Get("source"))},
	} {
		if !c.ok {
			return ListQuery{}, fmt.Errorf("%s does not have a valid value", c.name)
		}
	}
	if !oneOf(q.Get("yaml_errors"), "", "true", "false") {
		return ListQuery{}, errors.New("yaml_errors is invalid")
	}
	return ListQuery{q: q, times: times, orderBy: orderBy, sortDir: sortDir}, nil
}

// Match reports whether p passes the query's filters (the project aside),
// as Ci::PipelinesFinder applies them: exact ref, sha, status, source and
// name; the time bounds are inclusive (UpdatedAtFilterable and
// CreatedAtFilterable use >= and <=). Every simulated pipeline is made by
// the one API user "paved-bot" and has a valid configuration.
func (l ListQuery) Match(p Pipeline) bool {
	q, t := l.q, l.times
	outside := func(name string, at time.Time) bool {
		bound, ok := t[name]
		if !ok {
			return false
		}
		if strings.HasSuffix(name, "_after") {
			return at.Before(bound)
		}
		return at.After(bound)
	}
	skip := (q.Get("ref") != "" && p.Ref != q.Get("ref")) ||
		(q.Get("status") != "" && p.Status != q.Get("status")) ||
		(q.Get("sha") != "" && p.SHA != q.Get("sha")) ||
		(q.Get("source") != "" && p.Source != q.Get("source")) ||
		(q.Get("name") != "" && p.Name != q.Get("name")) ||
		(q.Get("username") != "" && q.Get("username") != "paved-bot") ||
		q.Get("yaml_errors") == "true" ||
		outside("updated_after", p.UpdatedAt) || outside("updated_before", p.UpdatedAt) ||
		outside("created_after", p.CreatedAt) || outside("created_before", p.CreatedAt) ||
		!inScope(p.Status, q.Get("scope"))
	return !skip
}

// Sort orders list by the query's order_by and sort.
func (l ListQuery) Sort(list []Pipeline) {
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		var less bool
		switch l.orderBy {
		case "status":
			less = a.Status < b.Status || (a.Status == b.Status && a.ID < b.ID)
		case "ref":
			less = a.Ref < b.Ref || (a.Ref == b.Ref && a.ID < b.ID)
		case "updated_at":
			less = a.UpdatedAt.Before(b.UpdatedAt) || (a.UpdatedAt.Equal(b.UpdatedAt) && a.ID < b.ID)
		default: // id, user_id (one user)
			less = a.ID < b.ID
		}
		if l.sortDir == "desc" {
			return !less
		}
		return less
	})
}

// WritePage answers with the query's page of the sorted list, each entry
// rendered with its web root from roots, and the pagination headers.
func (l ListQuery) WritePage(w http.ResponseWriter, r *http.Request, list []Pipeline, roots map[int64]string) {
	page, perPage := intParam(l.q.Get("page"), 1), intParam(l.q.Get("per_page"), 20)
	if perPage > 100 {
		perPage = 100
	}
	total := len(list)
	pages := int(math.Max(1, math.Ceil(float64(total)/float64(perPage))))
	lo := min((page-1)*perPage, total)
	hi := min(lo+perPage, total)
	out := make([]map[string]any, 0, hi-lo)
	for _, p := range list[lo:hi] {
		out = append(out, PipelineBasicJSON(p, roots[p.ID]))
	}
	setPagination(w, r, page, perPage, total, pages)
	WriteJSON(w, http.StatusOK, out)
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

// RateLimited answers as GitLab's Rack::Attack throttle does: 429, a
// plain-text "Retry later" body and the RateLimit-* headers.
func RateLimited(w http.ResponseWriter, reset time.Duration) {
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

func inScope(status, scope string) bool {
	switch scope {
	case "running":
		return status == StatusRunning
	case "pending":
		return status == StatusPending
	case "finished":
		return Terminal(status)
	case "tags":
		return false // every simulated ref is a branch
	}
	return true // "", branches: see LatestPerRef
}

// LatestPerRef applies scope=branches as Ci::PipelinesFinder does: only
// the newest pipeline of each branch (every simulated ref is one) is
// listed. Other scopes leave list alone.
func (l ListQuery) LatestPerRef(list []Pipeline) []Pipeline {
	if l.q.Get("scope") != "branches" {
		return list
	}
	latest := map[string]Pipeline{}
	for _, p := range list {
		if cur, ok := latest[p.Ref]; !ok || p.ID > cur.ID {
			latest[p.Ref] = p
		}
	}
	out := list[:0]
	for _, p := range list {
		if latest[p.Ref].ID == p.ID {
			out = append(out, p)
		}
	}
	return out
}

// Msg is GitLab's {"message": m} error body.
func Msg(m string) map[string]string { return map[string]string{"message": m} }

// WriteJSON answers code with v as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func intParam(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return def
	}
	return n
}

func oneOf(s string, opts ...string) bool {
	for _, o := range opts {
		if s == o {
			return true
		}
	}
	return false
}
