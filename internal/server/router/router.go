// Package router is paved's small HTTP router on net/http, with the
// middleware every request passes: request ids, a span, zap access logs and
// metrics, panic recovery and a body limit.
//
// It is paved's own small table rather than a router package: gin, which
// paved used, linked its bindings and renderers (msgpack, BSON, TOML, YAML,
// a validator), html/template and an HTTP/3 stack, 87 packages paved never
// called, whose code and init cost every process about 4 MiB of resident
// memory and over a millisecond of start-up. What paved relied on is kept
// (TestRoutingKeepsGinsAnswers): a path and method that match no route
// answer 404, not 405; a path that matches one but for a trailing slash is
// redirected; and metrics, spans and logs name the route as it is written
// in the table.
package router

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Options are the middleware's settings.
type Options struct {
	// MaxBodyBytes caps a request's body.
	MaxBodyBytes int64
	// Log takes the access log and handlers' panics.
	Log *zap.Logger
	// Tracer traces requests (nil: no spans).
	Tracer trace.Tracer
	// Registry receives the HTTP metrics.
	Registry *prometheus.Registry
	// Unwatched are the routes of probes and scrapes: counted, but given
	// no span and no access log.
	Unwatched []string
}

// Router is a table of routes, served through the middleware.
type Router struct {
	opt     Options
	metrics *metrics
	routes  []route
}

// New returns an empty table.
func New(opt Options) *Router {
	return &Router{opt: opt, metrics: newMetrics(opt.Registry)}
}

// AnyMethod is a route's method when every method takes it.
const AnyMethod = "*"

// route is a method and a path of segments, where ":name" matches any one
// segment and a last "*name" the rest of the path, "" included.
type route struct {
	method, path string
	segs         []string
	chain        []Handler
}

// Handle adds a route. Routes are tried in the order they were added; the
// chain runs in order until a handler answers with Fail.
func (rtr *Router) Handle(method, path string, chain ...Handler) {
	rtr.routes = append(rtr.routes, route{method: method, path: path, segs: strings.Split(path, "/")[1:], chain: chain})
}

// ServeHTTP finds the request's route and runs it through the middleware:
// request id, span, access log and metrics, panic recovery, body limit.
func (rtr *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, params := rtr.match(r.Method, r.URL.Path)
	if rt == nil {
		if to, ok := rtr.slashRedirect(r); ok {
			// As gin did: a redirect for a trailing slash, before any middleware.
			code := http.StatusMovedPermanently
			if r.Method != http.MethodGet {
				code = http.StatusTemporaryRedirect // the method and body are kept
			}
			http.Redirect(w, r, to, code)
			return
		}
	}
	sw := &statusWriter{ResponseWriter: w}
	c := &Exchange{W: sw, R: r, params: params}
	chain := []Handler{noRoute}
	if rt != nil {
		c.route, chain = rt.path, rt.chain
	}
	c.ID = r.Header.Get("X-Request-ID")
	if !requestIDOK(c.ID) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.ID = hex.EncodeToString(b[:])
	}
	w.Header().Set("X-Request-ID", c.ID)
	defer rtr.trace(c, sw)()
	defer rtr.accessLog(c, sw)()
	defer rtr.recover(c)
	if rtr.limitBody(c) {
		c.run(chain)
	}
}

// unwatched routes get no span and no access log.
func (rtr *Router) unwatched(route string) bool {
	return slices.Contains(rtr.opt.Unwatched, route)
}

// match finds the route for method and path, and the values of its
// parameters. A path whose route wants another method matches nothing: paved
// answers it 404, as it always has.
func (rtr *Router) match(method, path string) (*route, []param) {
	if !strings.HasPrefix(path, "/") {
		return nil, nil
	}
	segs := strings.Split(path, "/")[1:]
	for i := range rtr.routes {
		rt := &rtr.routes[i]
		if rt.method != method && rt.method != AnyMethod {
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
func (rtr *Router) slashRedirect(r *http.Request) (string, bool) {
	p := r.URL.Path
	if p == "/" || p == "" {
		return "", false
	}
	to := p + "/"
	if strings.HasSuffix(p, "/") {
		to = p[:len(p)-1]
	}
	if rt, _ := rtr.match(r.Method, to); rt == nil {
		return "", false
	}
	u := *r.URL
	u.Path, u.RawPath = to, ""
	return u.String(), true
}
