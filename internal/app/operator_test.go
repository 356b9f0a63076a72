package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get fetches path from base and returns the answer and its body.
func get(t *testing.T, base, path string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// With operator tokens paved serves the operator page; a session one
// replica signs is good at another with the same run token key.
func TestOperatorPageIsWiredWithTokens(t *testing.T) {
	cfg, env := testConfig(t)
	if a, err := build(t, cfg, env, zap.NewNop()); err != nil {
		t.Fatal(err)
	} else {
		srv := httptest.NewServer(a.Handler())
		if resp, _ := get(t, srv.URL, "/ui/login"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("without tokens /ui/login = %d, want 404", resp.StatusCode)
		}
		srv.Close()
		a.Store.Close()
	}

	cfg.Operator.Tokens = map[string]string{"alice": "env:ALICE"}
	if _, err := build(t, cfg, env, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "operator.tokens.alice") {
		t.Fatalf("unresolvable token: %v", err)
	}
	env["ALICE"] = "alice-secret-token"
	cfg.Server.PublicURL = "https://paved.example.com"
	a, err := build(t, cfg, env, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Store.Close()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	if resp, _ := get(t, srv.URL, "/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET / = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	session := signIn(t, srv.URL, "alice-secret-token")
	if !session.Secure {
		t.Fatalf("cookie %+v, want Secure behind https", session)
	}

	// Another replica: same config, its own store.
	cfg2, _ := testConfig(t)
	cfg2.Operator, cfg2.Server.PublicURL = cfg.Operator, cfg.Server.PublicURL
	b, err := build(t, cfg2, env, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Store.Close()
	srv2 := httptest.NewServer(b.Handler())
	defer srv2.Close()
	if resp, body := get(t, srv2.URL, "/ui/", session); resp.StatusCode != 200 || !strings.Contains(body, "alice") {
		t.Fatalf("the other replica refuses the session: %d", resp.StatusCode)
	}
}

// signIn signs in through the form and returns the session cookie.
func signIn(t *testing.T, base, token string) *http.Cookie {
	t.Helper()
	resp, body := get(t, base, "/ui/login")
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" || csrf == nil {
		t.Fatalf("login page %d %v", resp.StatusCode, resp.Header)
	}
	req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(url.Values{"csrf": {csrf[1]}, "token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	login, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	login.Body.Close()
	for _, c := range login.Cookies() {
		if c.Name == "paved_session" && login.StatusCode == http.StatusSeeOther {
			return c
		}
	}
	t.Fatalf("sign in = %d, no session cookie", login.StatusCode)
	return nil
}

// An operator's open log stream does not hold a shutdown up: Shutdown
// would otherwise wait for it to the end of server.shutdownTimeout.
func TestShutdownEndsOpenLogStreams(t *testing.T) {
	cfg, env := testConfig(t)
	cfg.Operator.Tokens, env["ALICE"] = map[string]string{"alice": "env:ALICE"}, "alice-secret-token"
	core, logs := observer.New(zap.InfoLevel)
	a, err := build(t, cfg, env, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, _, err := a.Store.CreateRun(context.Background(), &run.Run{ID: "r_live", State: run.Running, Request: run.Request{Portal: "port", PortalRunID: "p1"},
		CreatedAt: now, UpdatedAt: now}, store.Change{}); err != nil {
		t.Fatal(err)
	}
	base, stop := serve(t, a)
	session := signIn(t, base, "alice-secret-token")
	req, _ := http.NewRequest("GET", base+"/ui/runs/r_live/log/stream", nil)
	req.AddCookie(session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessage("http shutdown").Len(); n != 0 {
		t.Fatalf("shutdown waited for the stream until its timeout: %v", logs.FilterMessage("http shutdown").All()[0].ContextMap())
	}
}
