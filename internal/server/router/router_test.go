package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// table is paved's route table in shape: its handlers answer the route
// and :id they matched, and a guard refuses when the query says "refuse".
func table(t *testing.T) *Router {
	t.Helper()
	rt := New(Options{MaxBodyBytes: 16, Log: zap.NewNop(), Registry: prometheus.NewRegistry()})
	echo := func(c *Exchange) { c.JSON(http.StatusOK, map[string]any{"route": c.route, "id": c.Param("id")}) }
	guard := func(c *Exchange) {
		if c.R.URL.Query().Has("refuse") {
			c.Fail(http.StatusUnauthorized, "refused")
		}
	}
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "ui %s %s", r.Method, r.URL.Path) })
	rt.Handle("GET", "/healthz", func(c *Exchange) { c.JSON(http.StatusOK, map[string]any{"status": "ok"}) })
	rt.Handle("GET", "/readyz", echo)
	rt.Handle("POST", "/api/v1/runs/:id/logs", guard, echo)
	rt.Handle("GET", "/api/v1/runs", echo)
	rt.Handle("POST", "/api/v1/runs", echo)
	rt.Handle("GET", "/api/v1/runs/:id", echo)
	rt.Handle("GET", "/api/v1/runs/:id/logs", echo)
	rt.Handle(AnyMethod, "/ui/*path", Wrap(ui))
	rt.Handle("GET", "/", func(c *Exchange) { http.Redirect(c.W, c.R, "/ui/", http.StatusSeeOther) })
	return rt
}

func call(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	return w
}

// TestRoutingKeepsGinsAnswers: the router answers as the gin router it
// replaced did: another method or HEAD on a route is 404 (not 405), a path
// off by a trailing slash is redirected (GET 301, others 307, before any
// middleware), an empty segment between slashes is an empty parameter, a
// "*path" route takes every method under it, a guard's refusal ends the
// chain, and a route's JSON is encoding/json's with gin's content type.
func TestRoutingKeepsGinsAnswers(t *testing.T) {
	h := table(t)
	tests := []struct {
		method, path string
		code         int
		location     string
		body         string
	}{
		{"GET", "/healthz", 200, "", `{"status":"ok"}`},
		{"HEAD", "/healthz", 404, "", `{"error":"no such endpoint: HEAD /healthz"}`},
		{"POST", "/readyz", 404, "", "no such endpoint: POST /readyz"},
		{"DELETE", "/api/v1/runs", 404, "", "no such endpoint"},
		{"GET", "/healthz/", 301, "/healthz", ""},
		{"POST", "/api/v1/runs/", 307, "/api/v1/runs", ""},
		{"GET", "/api/v1/runs/?limit=2", 301, "/api/v1/runs?limit=2", ""},
		{"GET", "/api/v1/runs/r_1/", 301, "/api/v1/runs/r_1", ""},
		{"GET", "/api/v1/runs//logs", 200, "", `{"id":"","route":"/api/v1/runs/:id/logs"}`},
		{"GET", "/api/v1/runs/r_1", 200, "", `{"id":"r_1","route":"/api/v1/runs/:id"}`},
		{"POST", "/api/v1/runs/r_1/logs", 200, "", `{"id":"r_1","route":"/api/v1/runs/:id/logs"}`},
		{"POST", "/api/v1/runs/r_1/logs?refuse", 401, "", `{"error":"refused"}`},
		{"GET", "/ui", 301, "/ui/", ""},
		{"GET", "/ui/", 200, "", "ui GET /ui/"},
		{"DELETE", "/ui/runs/r_1", 200, "", "ui DELETE /ui/runs/r_1"},
		{"GET", "/", 303, "/ui/", ""},
		{"POST", "/", 404, "", "no such endpoint"},
	}
	for _, tt := range tests {
		w := call(h, tt.method, tt.path, "")
		if w.Code != tt.code || w.Header().Get("Location") != tt.location || !strings.Contains(w.Body.String(), tt.body) {
			t.Errorf("%s %s: %d at %q, %q; want %d at %q, containing %q", tt.method, tt.path, w.Code, w.Header().Get("Location"), w.Body, tt.code, tt.location, tt.body)
		}
		if strings.HasPrefix(tt.body, "{") && w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%s %s: Content-Type %q", tt.method, tt.path, w.Header().Get("Content-Type"))
		}
	}
}

// TestBodyLimit: a body declared over the limit is refused before the
// handler, and one that only turns out longer is refused by ReadBody, both
// naming the limit.
func TestBodyLimit(t *testing.T) {
	rt := New(Options{MaxBodyBytes: 16, Log: zap.NewNop(), Registry: prometheus.NewRegistry()})
	rt.Handle("POST", "/read", func(c *Exchange) {
		if body, ok := c.ReadBody(); ok {
			c.JSON(http.StatusOK, map[string]any{"read": len(body)})
		}
	})
	const want = `{"error":"body is larger than 16 bytes"}`
	if w := call(rt, "POST", "/read", strings.Repeat("x", 17)); w.Code != 413 || w.Body.String() != want {
		t.Errorf("declared too large: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest("POST", "/read", strings.NewReader(strings.Repeat("x", 17)))
	r.ContentLength = -1 // unknown: only reading finds it too large
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, r)
	if w.Code != 413 || w.Body.String() != want {
		t.Errorf("read too large: %d %s", w.Code, w.Body)
	}
	if w := call(rt, "POST", "/read", strings.Repeat("x", 16)); w.Code != 200 || w.Body.String() != `{"read":16}` {
		t.Errorf("at the limit: %d %s", w.Code, w.Body)
	}
}

// TestClientIPAsGinGaveIt: the access log's client is the first address of
// X-Forwarded-For when all its entries are addresses, then X-Real-IP, then
// the peer.
func TestClientIPAsGinGaveIt(t *testing.T) {
	for _, tt := range []struct {
		xff, real, remote, want string
	}{
		{"", "", "192.0.2.1:1234", "192.0.2.1"},
		{"203.0.113.7, 10.0.0.1", "", "192.0.2.1:1234", "203.0.113.7"},
		{"nonsense, 10.0.0.1", "198.51.100.2", "192.0.2.1:1234", "198.51.100.2"},
		{"", "", "pipe", ""},
		{"2001:db8::1", "", "[::1]:80", "2001:db8::1"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if tt.real != "" {
			r.Header.Set("X-Real-IP", tt.real)
		}
		if got := clientIP(r); got != tt.want {
			t.Errorf("clientIP(XFF %q, X-Real-IP %q, peer %q) = %q, want %q", tt.xff, tt.real, tt.remote, got, tt.want)
		}
	}
}
