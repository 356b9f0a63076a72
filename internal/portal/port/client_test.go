package port

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 3, 9, 12, 45, 0, time.UTC)

const (
	testClientID     = "client-id-abc"
	testClientSecret = "client-secret-xyz-0123456789"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seen is one request the fake Port API received.
type seen struct {
	Method, Path, Query, Auth string
	Body                      map[string]any
}

// fakePort is a small stand-in for Port's API, written from Port's
// published OpenAPI schema: it issues numbered tokens, checks bearer
// tokens, records every other request, and lets a test override answers.
type fakePort struct {
	t         *testing.T
	srv       *httptest.Server
	mu        sync.Mutex
	tokens    int             // access tokens issued
	expiresIn any             // expiresIn in the token answer; nil leaves it out
	revoked   map[string]bool // tokens answered with 401
	// authHook, when set, runs in the token route before it answers; tests
	// use it to hold a token fetch open at a point they control.
	authHook func()
	reqs     []seen
	// answer, when set, may answer a non-auth request itself.
	answer func(w http.ResponseWriter, r *http.Request) bool
}

func newFakePort(t *testing.T) *fakePort {
	f := &fakePort{t: t, expiresIn: 10800, revoked: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePort) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			f.t.Errorf("%s %s: body is not JSON: %v", r.Method, r.URL.Path, err)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("%s %s: Content-Type %q", r.Method, r.URL.Path, ct)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/v1/auth/access_token" {
		f.mu.Lock()
		hook := f.authHook
		f.mu.Unlock()
		if hook != nil {
			hook()
		}
		if r.Method != http.MethodPost || body["clientId"] != testClientID || body["clientSecret"] != testClientSecret {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"ok":false,"error":"unauthorized"}`)
			return
		}
		f.mu.Lock()
		f.tokens++
		ans := map[string]any{"ok": true, "accessToken": "tok-" + strconv.Itoa(f.tokens), "tokenType": "Bearer"}
		if f.expiresIn != nil {
			ans["expiresIn"] = f.expiresIn
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(ans)
		return
	}
	auth := r.Header.Get("Authorization")
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Auth: auth, Body: body})
	revoked := f.revoked[strings.TrimPrefix(auth, "Bearer ")]
	answer := f.answer
	f.mu.Unlock()
	if !strings.HasPrefix(auth, "Bearer tok-") || revoked {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"ok":false,"error":"unauthorized","message":"token expired"}`)
		return
	}
	if answer != nil && answer(w, r) {
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/logs"):
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"ok":true,"runLog":{"id":"l1","runId":"r","message":"m","createdBy":"x","createdAt":"2026-11-03T09:00:00Z"}}`)
	case strings.HasPrefix(r.URL.Path, "/v1/blueprints/"):
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"ok":true,"entity":{"identifier":"x"}}`)
	case strings.HasPrefix(r.URL.Path, "/v1/users/"):
		fmt.Fprint(w, `{"ok":true,"user":{"email":"dana.levi@example.com","teams":["payments","platform"]}}`)
	default:
		fmt.Fprint(w, `{"ok":true,"run":{"id":"r","status":"IN_PROGRESS"}}`)
	}
}

func (f *fakePort) tokenCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.tokens }

func (f *fakePort) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func (f *fakePort) set(fn func(f *fakePort)) { f.mu.Lock(); fn(f); f.mu.Unlock() }

func (f *fakePort) client(clk *clock) *Client {
	return NewClient(f.srv.URL+"/", testClientID, testClientSecret, Options{
		HTTPClient: f.srv.Client(), Now: clk.Now,
	})
}

func newClock() *clock { return &clock{t: testNow} }

// postLog and patchRun send two of the calls runreport makes, so that the
// client's own behaviour (token, retry, errors) is tested without it.
func postLog(ctx context.Context, c *Client, msg string) error {
	return c.Call(ctx, "post log to run r_1", http.MethodPost, "/v1/actions/runs/r_1/logs", map[string]string{"message": msg}, nil)
}

func patchRun(ctx context.Context, c *Client, label string) error {
	return c.Call(ctx, "patch run r_1", http.MethodPatch, "/v1/actions/runs/r_1", map[string]string{"statusLabel": label}, nil)
}

// holdTokenFetch makes f's token route wait until the returned release is
// called; started is closed once the first fetch has reached Port.
func holdTokenFetch(t *testing.T, f *fakePort) (started <-chan struct{}, release func()) {
	begun, gate := make(chan struct{}), make(chan struct{})
	var beginOnce, releaseOnce sync.Once
	f.set(func(f *fakePort) {
		f.authHook = func() {
			beginOnce.Do(func() { close(begun) })
			<-gate
		}
	})
	release = func() { releaseOnce.Do(func() { close(gate) }) }
	t.Cleanup(release) // never leave the handler blocked, or closing the server hangs
	return begun, release
}

func TestTokenFetchedOnceForManyCalls(t *testing.T) {
	f := newFakePort(t)
	started, release := holdTokenFetch(t, f)
	c := f.client(newClock())
	ctx := context.Background()

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := postLog(ctx, c, fmt.Sprintf("line %d", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	// Callers that arrive while the fetch is held must share it; callers
	// that arrive after it must reuse its token. Either way: one token.
	<-started
	release()
	wg.Wait()
	if n := f.tokenCount(); n != 1 {
		t.Fatalf("fetched %d tokens for 20 concurrent calls, want 1", n)
	}
	for _, r := range f.requests() {
		if r.Auth != "Bearer tok-1" {
			t.Fatalf("request used %q", r.Auth)
		}
	}
}

func TestTokenRefresh(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn any
		stillGood time.Duration // token still used at this age
		refreshed time.Duration // replaced by this age
	}{
		{"expiresIn from Port", 3600, 54 * time.Minute, 56 * time.Minute},
		{"expiresIn as float", 3600.0, 54 * time.Minute, 56 * time.Minute},
		{"no expiresIn: ~3h", nil, 2*time.Hour + 54*time.Minute, 2*time.Hour + 56*time.Minute},
		{"short-lived token", 60, 29 * time.Second, 31 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePort(t)
			f.set(func(f *fakePort) { f.expiresIn = tt.expiresIn })
			clk := newClock()
			c := f.client(clk)
			ctx := context.Background()
			if err := postLog(ctx, c, "x"); err != nil {
				t.Fatal(err)
			}
			clk.Add(tt.stillGood)
			if err := postLog(ctx, c, "x"); err != nil {
				t.Fatal(err)
			}
			if n := f.tokenCount(); n != 1 {
				t.Fatalf("after %s: %d tokens, want 1", tt.stillGood, n)
			}
			clk.Add(tt.refreshed - tt.stillGood)
			if err := postLog(ctx, c, "x"); err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()
			if n := f.tokenCount(); n != 2 || reqs[len(reqs)-1].Auth != "Bearer tok-2" {
				t.Fatalf("after %s: %d tokens, last auth %q; want a second token", tt.refreshed, n, reqs[len(reqs)-1].Auth)
			}
		})
	}
}

func TestTokenRefreshedOn401(t *testing.T) {
	f := newFakePort(t)
	c := f.client(newClock())
	ctx := context.Background()
	if err := patchRun(ctx, c, "Queued"); err != nil {
		t.Fatal(err)
	}
	// Port revokes the token early.
	f.set(func(f *fakePort) { f.revoked["tok-1"] = true })
	if err := patchRun(ctx, c, "Running"); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	reqs := f.requests()
	if f.tokenCount() != 2 || len(reqs) != 3 || reqs[1].Auth != "Bearer tok-1" || reqs[2].Auth != "Bearer tok-2" {
		t.Fatalf("tokens %d, requests %+v; want one retry with tok-2", f.tokenCount(), reqs)
	}

	// A 401 that a fresh token does not cure is returned, once retried.
	f.set(func(f *fakePort) {
		f.answer = func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"ok":false,"error":"unauthorized"}`)
			return true
		}
	})
	before := len(f.requests())
	err := patchRun(ctx, c, "Running")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 401 || IsPermanent(err) {
		t.Fatalf("err = %v; want a non-permanent 401", err)
	}
	if n := len(f.requests()) - before; n != 2 {
		t.Fatalf("sent %d requests, want 2 (one retry)", n)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		permanent bool
		reset     time.Duration // for 429: Reset - now
		text      string        // the error text must contain it
	}{
		{"502", 502, nil, `<html>bad gateway</html>`, false, 0, "port: patch run r_1: 502 Bad Gateway: <html>bad gateway</html>"},
		{"500", 500, nil, `{"ok":false,"error":"internal_error"}`, false, 0, "500 Internal Server Error"},
		{"404", 404, nil, `{"ok":false,"error":"not_found","message":"run r_1 was not found"}`, true, 0, "404 Not Found: {\"ok\":false"},
		{"422", 422, nil, `{"ok":false,"error":"invalid_request","message":"bad"}`, true, 0, "422"},
		{"408", 408, nil, ``, false, 0, "408 Request Timeout"},
		{"429 seconds", 429, map[string]string{"x-ratelimit-reset": "42", "x-ratelimit-remaining": "0"}, `{"ok":false}`, false, 42 * time.Second, "429 Too Many Requests"},
		{"429 epoch", 429, map[string]string{"x-ratelimit-reset": strconv.FormatInt(testNow.Add(90*time.Second).Unix(), 10)}, ``, false, 90 * time.Second, "rate limited until"},
		{"429 retry-after", 429, map[string]string{"Retry-After": "7"}, ``, false, 7 * time.Second, "429"},
		{"429 no header", 429, nil, ``, false, 30 * time.Second, "429"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePort(t)
			f.set(func(f *fakePort) {
				f.answer = func(w http.ResponseWriter, r *http.Request) bool {
					for k, v := range tt.header {
						w.Header().Set(k, v)
					}
					w.WriteHeader(tt.status)
					fmt.Fprint(w, tt.body)
					return true
				}
			})
			err := patchRun(context.Background(), f.client(newClock()), "x")
			if err == nil {
				t.Fatal("no error")
			}
			if got := IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v (%v)", got, tt.permanent, err)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not contain %q", err, tt.text)
			}
			var rl *RateLimitError
			if tt.status == 429 {
				if !errors.As(err, &rl) {
					t.Fatalf("err %T, want *RateLimitError", err)
				}
				if got := rl.Reset.Sub(testNow); got != tt.reset {
					t.Errorf("Reset in %s, want %s", got, tt.reset)
				}
			} else if errors.As(err, &rl) {
				t.Errorf("%d reported as rate limit", tt.status)
			}
		})
	}
}

func TestErrorsHideSecrets(t *testing.T) {
	f := newFakePort(t)
	f.set(func(f *fakePort) {
		f.answer = func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"echo":%q,"secret":%q}`, r.Header.Get("Authorization"), testClientSecret)
			return true
		}
	})
	err := postLog(context.Background(), f.client(newClock()), "x")
	if err == nil || strings.Contains(err.Error(), "tok-1") || strings.Contains(err.Error(), testClientSecret) {
		t.Fatalf("error leaks a secret: %v", err)
	}

	// Bad credentials: the token endpoint's refusal names the operation,
	// not the secret.
	bad := NewClient(f.srv.URL, testClientID, "wrong-secret-777", Options{HTTPClient: f.srv.Client()})
	err = postLog(context.Background(), bad, "x")
	if err == nil || strings.Contains(err.Error(), "wrong-secret-777") ||
		!strings.Contains(err.Error(), "port: post log to run r_1: get access token: 401 Unauthorized") {
		t.Fatalf("err = %v", err)
	}
}

func TestNetworkErrorNotPermanent(t *testing.T) {
	f := newFakePort(t)
	url := f.srv.URL
	f.srv.Close()
	c := NewClient(url, testClientID, testClientSecret, Options{})
	err := postLog(context.Background(), c, "x")
	if err == nil || IsPermanent(err) || !strings.HasPrefix(err.Error(), "port: post log to run r_1: ") {
		t.Fatalf("err = %v, want a transient, wrapped error", err)
	}
}

// TestTokenWaiterHonoursContext: a caller waiting for another caller's
// token fetch gives up when its own context ends, and the fetch goes on.
// The fetch is held until the waiter has returned, so the waiter can only
// end by its context, however the goroutines are scheduled.
func TestTokenWaiterHonoursContext(t *testing.T) {
	f := newFakePort(t)
	started, release := holdTokenFetch(t, f)
	c := f.client(newClock())

	done := make(chan error, 1)
	go func() { done <- postLog(context.Background(), c, "first") }()
	<-started // the first caller's fetch is in flight, and held

	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() { waiter <- postLog(ctx, c, "second") }()
	cancel()
	if err := <-waiter; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter err = %v, want its context's cancellation", err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("first caller: %v", err)
	}
	if n := f.tokenCount(); n != 1 {
		t.Fatalf("%d tokens, want 1", n)
	}
}

// TestUserTeams: an entity's team holds team identifiers, so UserTeams
// answers identifiers: Port's teamsIdentifiers when the answer has it (the
// documented shape), the team names only when it does not (older answers).
func TestUserTeams(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   []string
	}{
		{"documented shape: identifiers, not names", `{"ok":true,"user":{"email":"e","teams":["Payments EU","Platform"],` +
			`"roles":[{"name":"Member"}],"teamsIdentifiers":["payments_eu","platform"]}}`, []string{"payments_eu", "platform"}},
		{"identifiers without names", `{"ok":true,"user":{"email":"e","teams":[],"teamsIdentifiers":["team_payments"]}}`, []string{"team_payments"}},
		{"no teams, with identifiers field", `{"ok":true,"user":{"email":"e","teams":[],"teamsIdentifiers":[]}}`, []string{}},
		{"identifiers are not mixed with names", `{"ok":true,"user":{"email":"e","teams":["Web"],"teamsIdentifiers":[]}}`, []string{}},
		{"older shape: team names as strings", `{"ok":true,"user":{"email":"e","teams":["payments","platform"]}}`, []string{"payments", "platform"}},
		{"older shape: team names as objects", `{"ok":true,"user":{"email":"e","teams":[{"name":"payments","provider":"port"}]}}`, []string{"payments"}},
		{"null identifiers read as absent", `{"ok":true,"user":{"email":"e","teams":["payments"],"teamsIdentifiers":null}}`, []string{"payments"}},
		{"no teams", `{"ok":true,"user":{"email":"e"}}`, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePort(t)
			f.set(func(f *fakePort) {
				f.answer = func(w http.ResponseWriter, r *http.Request) bool {
					fmt.Fprint(w, tt.answer)
					return true
				}
			})
			got, err := f.client(newClock()).UserTeams(context.Background(), "dana.levi@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("teams %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUserTeamsCached(t *testing.T) {
	f := newFakePort(t)
	clk := newClock()
	c := NewClient(f.srv.URL, testClientID, testClientSecret, Options{
		HTTPClient: f.srv.Client(), Now: clk.Now, UserCacheTTL: 2 * time.Minute,
	})
	ctx := context.Background()
	const email = "dana+ops@example.com"
	for i := range 3 {
		teams, err := c.UserTeams(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(teams, []string{"payments", "platform"}) {
			t.Fatalf("call %d: %v", i, teams)
		}
		teams[0] = "mutated" // must not reach the cache
		clk.Add(30 * time.Second)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].Method != "GET" || reqs[0].Path != "/v1/users/dana+ops@example.com" {
		t.Fatalf("requests %+v, want one GET /v1/users/<email>", reqs)
	}
	clk.Add(time.Minute) // 2m30s after the first answer
	teams, err := c.UserTeams(ctx, "DANA+ops@example.com")
	if err != nil || teams[0] != "payments" {
		t.Fatalf("teams %v, err %v", teams, err)
	}
	if n := len(f.requests()); n != 2 {
		t.Fatalf("%d requests after the TTL, want 2", n)
	}

	// An email with a slash stays one path segment.
	if _, err := c.UserTeams(ctx, "a/b@example.com"); err != nil {
		t.Fatal(err)
	}
	if p := f.requests()[2].Path; p != "/v1/users/a%2Fb@example.com" {
		t.Fatalf("path %q", p)
	}
}

func TestUserTeamsNotFound(t *testing.T) {
	f := newFakePort(t)
	f.set(func(f *fakePort) {
		f.answer = func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"ok":false,"error":"not_found","message":"User not found"}`)
			return true
		}
	})
	c := f.client(newClock())
	for range 2 {
		_, err := c.UserTeams(context.Background(), "ghost@example.com")
		if !IsPermanent(err) || !strings.Contains(err.Error(), "port: get user ghost@example.com: 404 Not Found") {
			t.Fatalf("err = %v", err)
		}
	}
	if n := len(f.requests()); n != 2 {
		t.Fatalf("%d requests, want 2: failures are not cached", n)
	}
}

// TestErrorsClipWebhookContent: a blueprint or email from a webhook body
// goes into a call's URL, and its error quotes it clipped, whether Port
// echoes it in its refusal or the network fails the call. The op naming
// the call is the caller's to clip (runreport's test of the same name).
func TestErrorsClipWebhookContent(t *testing.T) {
	huge := strings.Repeat("x", 500<<10)
	entities := "/v1/blueprints/" + huge + "/entities"
	entity := map[string]any{"identifier": "svc", "properties": map[string]any{}}
	f := newFakePort(t)
	f.set(func(f *fakePort) {
		f.answer = func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"ok":false,"error":"not_found","message":"Blueprint %s was not found"}`, r.URL.Path)
			return true
		}
	})
	c := f.client(newClock())
	err := c.Call(context.Background(), "upsert entity", http.MethodPost, entities, entity, nil)
	if !IsPermanent(err) || len(err.Error()) > 600 || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %.700v, want a short 404", err)
	}
	_, err = c.UserTeams(context.Background(), huge+"@example.com")
	if !IsPermanent(err) || len(err.Error()) > 600 {
		t.Fatalf("err = %.700v, want a short 404", err)
	}

	// A network error names the URL, which holds the blueprint or email.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	dc := NewClient(dead.URL, testClientID, testClientSecret, Options{Now: newClock().Now})
	dc.token, dc.refreshAt = "tok-1", testNow.Add(time.Hour) // skip the token fetch: its URL is short
	err = dc.Call(context.Background(), "upsert entity", http.MethodPost, entities, entity, nil)
	if err == nil || IsPermanent(err) || len(err.Error()) > 600 {
		t.Fatalf("err = %.700v, want a short transient error", err)
	}
	_, err = dc.UserTeams(context.Background(), huge+"@example.com")
	if err == nil || IsPermanent(err) || len(err.Error()) > 600 {
		t.Fatalf("err = %.700v, want a short transient error", err)
	}
}

// TestCallSendsQuery: a path may end in a query (runreport's entity upsert
// ties the entity to its run that way), and it reaches Port as one.
func TestCallSendsQuery(t *testing.T) {
	f := newFakePort(t)
	err := f.client(newClock()).Call(context.Background(), "upsert entity", http.MethodPost,
		"/v1/blueprints/queue/entities?merge=true&run_id=r_1&upsert=true", map[string]any{"identifier": "svc"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.requests(); len(r) != 1 || r[0].Path != "/v1/blueprints/queue/entities" || r[0].Query != "merge=true&run_id=r_1&upsert=true" {
		t.Fatalf("requests %+v", r)
	}
}
