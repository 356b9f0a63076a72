package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// TestRoutingKeepsGinsAnswers: the router answers as the gin router it
// replaced did: another method or HEAD on a route is 404 (not 405), a path
// off by a trailing slash is redirected (GET 301, others 307, before any
// middleware), the operator page takes every method under /ui/, and a
// route's JSON is encoding/json's with gin's content type.
func TestRoutingKeepsGinsAnswers(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "ui %s %s", r.Method, r.URL.Path) })
	cfg := Config{MaxBodyBytes: 1 << 10, APIClients: []APIClient{NewAPIClient("api", "api", nil)}, UI: ui}
	h := New(cfg, &fakeIntake{}, fakeRuns{}, &fakeTracker{}, zap.NewNop(), prometheus.NewRegistry())
	bearer := map[string]string{"Authorization": "Bearer api"}
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
		{"GET", "/api/v1/runs//logs", 404, "", `"no run "`},
		{"GET", "/api/v1/runs/r_1", 404, "", `{"error":"no run r_1"}`},
		{"GET", "/ui", 301, "/ui/", ""},
		{"GET", "/ui/", 200, "", "ui GET /ui/"},
		{"DELETE", "/ui/runs/r_1", 200, "", "ui DELETE /ui/runs/r_1"},
		{"GET", "/", 303, "/ui/", ""},
		{"POST", "/", 404, "", "no such endpoint"},
	}
	for _, tt := range tests {
		w := call(h, tt.method, tt.path, "", bearer)
		if w.Code != tt.code || w.Header().Get("Location") != tt.location || !strings.Contains(w.Body.String(), tt.body) {
			t.Errorf("%s %s: %d at %q, %q; want %d at %q, containing %q", tt.method, tt.path, w.Code, w.Header().Get("Location"), w.Body, tt.code, tt.location, tt.body)
		}
		if strings.HasPrefix(tt.body, "{") && w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%s %s: Content-Type %q", tt.method, tt.path, w.Header().Get("Content-Type"))
		}
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
