package server

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
)

// exchange is one request on its way through the middleware and its
// route's handlers.
type exchange struct {
	w *statusWriter
	r *http.Request
	// route is the matched route as New writes it ("/api/v1/runs/:id"), ""
	// when none matched; metrics, spans and logs are labelled with it.
	route  string
	params []param
	id     string     // the request id
	client *APIClient // the API caller, once bearer has let it in
	// stop ends the route's chain: a handler answered (fail does).
	stop bool
}

type param struct{ name, value string }

// handler is a step of a route: a guard (bearer, runToken) or the handler
// proper. A guard that refuses answers and sets stop.
type handler func(*exchange)

func (c *exchange) run(chain []handler) {
	for _, h := range chain {
		if c.stop {
			return
		}
		h(c)
	}
}

// param is the path segment the route names :name.
func (c *exchange) param(name string) string {
	for _, p := range c.params {
		if p.name == name {
			return p.value
		}
	}
	return ""
}

// json answers v as JSON, as gin's c.JSON did: encoding/json, no trailing
// newline, "application/json; charset=utf-8".
func (c *exchange) json(code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Every answer is a plain struct or map: this is a bug.
		http.Error(c.w, "internal error: cannot encode the answer; request id "+c.id, http.StatusInternalServerError)
		return
	}
	if c.w.Header().Get("Content-Type") == "" {
		c.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	c.w.WriteHeader(code)
	_, _ = c.w.Write(body)
}

// wrap runs a plain http.Handler as a route's handler.
func wrap(h http.Handler) handler {
	return func(c *exchange) { h.ServeHTTP(c.w, c.r) }
}

// anyMethod is a route's method when every method takes it.
const anyMethod = "*"

// route is a method and a path of segments, where ":name" matches any one
// segment and a last "*name" the rest of the path, "" included.
type route struct {
	method, path string
	segs         []string
	chain        []handler
}

func (s *Server) handle(method, path string, chain ...handler) {
	s.routes = append(s.routes, route{method: method, path: path, segs: strings.Split(path, "/")[1:], chain: chain})
}

// match finds the route for method and path, and the values of its
// parameters. A path whose route wants another method matches nothing: paved
// answers it 404, as it always has.
func (s *Server) match(method, path string) (*route, []param) {
	if !strings.HasPrefix(path, "/") {
		return nil, nil
	}
	segs := strings.Split(path, "/")[1:]
	for i := range s.routes {
		rt := &s.routes[i]
		if rt.method != method && rt.method != anyMethod {
			continue
		}
		if params, ok := rt.matches(segs); ok {
			return rt, params
		}
	}
	return nil, nil
}

func (rt *route) matches(segs []string) ([]param, bool) {
	var params []param
	for i, want := range rt.segs {
		if rest, ok := strings.CutPrefix(want, "*"); ok && i == len(rt.segs)-1 {
			if i >= len(segs) {
				return nil, false // "/ui" is not under "/ui/"
			}
			return append(params, param{rest, "/" + strings.Join(segs[i:], "/")}), true
		}
		if i >= len(segs) {
			return nil, false
		}
		if name, ok := strings.CutPrefix(want, ":"); ok {
			// As in gin: empty between slashes ("/runs//logs"), but not at
			// the end ("/runs/" is "/runs" with a slash, redirected).
			if segs[i] == "" && i == len(segs)-1 {
				return nil, false
			}
			params = append(params, param{name, segs[i]})
			continue
		}
		if segs[i] != want {
			return nil, false
		}
	}
	return params, len(segs) == len(rt.segs)
}

// slashRedirect is where a path that matches no route would match one with
// its trailing slash added or taken off ("/ui" → "/ui/", "/api/v1/runs/" →
// "/api/v1/runs"), as gin redirected.
func (s *Server) slashRedirect(r *http.Request) (string, bool) {
	p := r.URL.Path
	if p == "/" || p == "" {
		return "", false
	}
	to := p + "/"
	if strings.HasSuffix(p, "/") {
		to = p[:len(p)-1]
	}
	if rt, _ := s.match(r.Method, to); rt == nil {
		return "", false
	}
	u := *r.URL
	u.Path, u.RawPath = to, ""
	return u.String(), true
}

// clientIP is the caller's address as gin's ClientIP gave it with its
// defaults (every proxy trusted): the first address of X-Forwarded-For when
// each of its entries is one, else X-Real-IP's likewise, else the peer's.
// It is only logged.
func clientIP(r *http.Request) string {
	for _, h := range []string{"X-Forwarded-For", "X-Real-IP"} {
		v := strings.Join(r.Header.Values(h), ",")
		if v == "" {
			continue
		}
		items := strings.Split(v, ",")
		for i := len(items) - 1; i >= 0; i-- {
			ip := strings.TrimSpace(items[i])
			if net.ParseIP(ip) == nil {
				break
			}
			if i == 0 {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(strings.TrimSpace(r.RemoteAddr))
	if err != nil || net.ParseIP(host) == nil {
		return ""
	}
	return host
}

// statusWriter records the status a handler answered with, for the access
// log, the metrics and the span.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Status is the answer's status: 200 when the handler wrote nothing.
func (w *statusWriter) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Flush lets streams (the operator page's, the API's log stream) push
// each event out.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the connection's own writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
