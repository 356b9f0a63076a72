// Package operator is paved's web page for the platform team, under /ui/:
// runs with filters, a run's timeline and live log, the queue per stack, and
// cancel, approve and deny buttons. Pages are rendered on the server (see
// package view) with embedded assets; the one script only follows the live log. Operators sign in with a token; every POST is checked against CSRF.
package operator

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/clip"
	"github.com/paved-idp/paved/internal/operator/view"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Runs is what the page reads of the run store.
type Runs interface {
	Run(ctx context.Context, id string) (*run.Run, error)
	ListRuns(ctx context.Context, q store.Query) ([]*run.Run, error)
	Events(ctx context.Context, id string) ([]run.Event, error)
	Logs(ctx context.Context, id string, after int64, limit int) ([]store.LogLine, error)
	StackQueue(ctx context.Context, stackKey string) ([]string, error)
}

// Control is what an operator may do to a run.
type Control interface {
	Approve(ctx context.Context, id string, by run.Approver, reason string) (*run.Run, error)
	Deny(ctx context.Context, id string, by run.Approver, reason string) (*run.Run, error)
	Cancel(ctx context.Context, id, by string) (*run.Run, error)
}

// Config configures the page. Tokens are resolved values here.
type Config struct {
	// Operators maps an operator's name, recorded as operator:<name> in
	// the audit trail, to the token that signs them in.
	Operators map[string]string
	// SessionKey signs session cookies and CSRF tokens.
	SessionKey []byte
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration
	// SecureCookie marks the cookies Secure (paved is served over https).
	SecureCookie bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Done, when closed, ends the open log streams: paved is shutting
	// down, and http.Server.Shutdown would wait for them to the end of its
	// timeout. Browsers reconnect, and resume where they were.
	Done <-chan struct{}
	// PublicHost is the host of paved's public URL: a POST whose Origin
	// names it is same-site even when a proxy rewrote Host.
	PublicHost string
	// OnAuthFailure, when set, hears why a caller was refused (bad_token,
	// bad_csrf, cross_site), for the metrics.
	OnAuthFailure func(reason string)
}

//go:embed assets
var files embed.FS

// contentPolicy admits nothing but paved's own assets: no inline script or
// style, no frames, forms posting only back to paved.
const contentPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// ui serves the page.
type ui struct {
	cfg  Config
	runs Runs
	ctl  Control
	log  *zap.Logger
	// assets are the embedded CSS, script and icon.
	assets fs.FS
	// poll and heartbeat pace the live log stream; tests shorten them.
	poll, heartbeat time.Duration
}

// New builds the operator page's handler; it serves paths under /ui/.
func New(cfg Config, runs Runs, ctl Control, log *zap.Logger) (http.Handler, error) {
	u, err := newUI(cfg, runs, ctl, log)
	if err != nil {
		return nil, err
	}
	return u.routes(), nil
}

func newUI(cfg Config, runs Runs, ctl Control, log *zap.Logger) (*ui, error) {
	if len(cfg.Operators) == 0 {
		return nil, errors.New("operator page: no operator tokens")
	}
	for name, tok := range cfg.Operators {
		// An empty token would let an empty form sign in.
		if name == "" || tok == "" {
			return nil, fmt.Errorf("operator page: operator %q has an empty name or token", name)
		}
	}
	if len(cfg.SessionKey) < 16 {
		return nil, errors.New("operator page: the session key must have at least 16 bytes")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	assets, err := fs.Sub(files, "assets")
	if err != nil {
		return nil, fmt.Errorf("operator page: assets: %w", err)
	}
	return &ui{cfg: cfg, runs: runs, ctl: ctl, log: log, assets: assets, poll: 500 * time.Millisecond, heartbeat: 15 * time.Second}, nil
}

func (u *ui) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/assets/{file}", func(w http.ResponseWriter, r *http.Request) { http.ServeFileFS(w, r, u.assets, r.PathValue("file")) })
	mux.HandleFunc("GET /ui/login", u.loginForm)
	mux.HandleFunc("POST /ui/login", u.login)
	mux.HandleFunc("POST /ui/logout", u.post(u.logout))
	mux.HandleFunc("GET /ui/{$}", u.guard(toLogin, u.runsList))
	mux.HandleFunc("GET /ui/queue", u.guard(toLogin, u.queue))
	mux.HandleFunc("GET /ui/runs/{id}", u.guard(toLogin, u.runPage))
	mux.HandleFunc("GET /ui/runs/{id}/log/stream", u.guard(unauthorized, u.stream))
	mux.HandleFunc("POST /ui/runs/{id}/{verb}", u.post(u.control))
	mux.HandleFunc("/ui/", u.guard(toLogin, func(w http.ResponseWriter, r *http.Request, s session) {
		u.message(w, &s, http.StatusNotFound, "Not found", "There is no page at "+clip.String(r.URL.Path, 200)+".")
	}))
	return securityHeaders(mux)
}

// securityHeaders applies to every answer; only the assets may be cached.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if strings.HasPrefix(r.URL.Path, "/ui/assets/") {
			h.Set("Cache-Control", "no-cache")
		} else {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// render writes a page (built whole first: an answer is never half a page).
func (u *ui) render(w http.ResponseWriter, status int, p view.Page) {
	b := view.Render(p)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = b.WriteTo(w)
}

// authedPage renders a page for a signed-in operator.
func (u *ui) authedPage(w http.ResponseWriter, s session, title, nav string, data any) {
	u.render(w, http.StatusOK, view.Page{Title: title, Nav: nav, Operator: s.name, CSRF: u.csrf(s), Data: data})
}

// message renders an error or notice page; s is nil when nobody is signed in.
func (u *ui) message(w http.ResponseWriter, s *session, status int, title, text string) {
	p := view.Page{Title: title, Data: view.Message{Title: title, Text: text}}
	if s != nil {
		p.Operator, p.CSRF = s.name, u.csrf(*s)
	}
	u.render(w, status, p)
}
