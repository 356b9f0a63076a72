package operator

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/gate"
	"github.com/paved-idp/paved/internal/intake"
	"github.com/paved-idp/paved/internal/policy"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
)

const aliceToken, bobToken = "alice-token-0123456789", "bob-token-9876543210"

// clock is a settable time for session expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type world struct {
	t     *testing.T
	st    *sqlite.Store
	ui    *ui
	srv   *httptest.Server
	clock *clock
	runs  int           // runs added, for their creation times
	done  chan struct{} // Config.Done
	// refusals are the reasons Config.OnAuthFailure heard.
	refusals []string
}

// testPolicy is the shipped policy, which names any operator (operator:*)
// among a waiting run's approvers.
func testPolicy(t *testing.T) *policy.Engine {
	t.Helper()
	pol, err := policy.New(context.Background(), "../../actions/policy", policy.Data{
		Environments: []policy.Environment{{Name: "dev"}, {Name: "staging"}, {Name: "prod", Production: true}}, Tenants: []string{"acme", "globex"}})
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// control is the page's Control as paved wires it: the gate decides, intake cancels.
type control struct {
	*gate.Service
	in *intake.Service
}

func (c control) Cancel(ctx context.Context, id, by string) (*run.Run, error) {
	return c.in.Cancel(ctx, id, by)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	st := sqlitetest.Open(t)
	w := &world{t: t, st: st, clock: &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}, done: make(chan struct{})}
	u, err := newUI(Config{Operators: map[string]string{"alice": aliceToken, "bob": bobToken}, SessionKey: []byte("0123456789abcdef0123456789abcdef"),
		SessionTTL: time.Hour, Now: w.clock.Now, Done: w.done, OnAuthFailure: func(r string) { w.refusals = append(w.refusals, r) }}, st, control{&gate.Service{Store: st, Log: zap.NewNop(), Policy: testPolicy(t)}, &intake.Service{Store: st, Log: zap.NewNop()}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	u.poll = 5 * time.Millisecond
	w.ui = u
	w.srv = httptest.NewServer(u.routes())
	t.Cleanup(w.srv.Close)
	return w
}

// spec describes a test run.
type spec struct {
	id, state, action, tenant, env, service, user string
	inputs                                        map[string]any
	pipelineURL                                   string
}

// add stores a run; zero fields get defaults, and runs are created a minute
// apart in the order they are added.
func (w *world) add(s spec) *run.Run {
	w.t.Helper()
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	w.runs++
	created := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(w.runs) * time.Minute)
	r := &run.Run{ID: s.id, State: run.State(def(s.state, "queued")), Operation: run.Day2,
		Request: run.Request{Portal: "port", PortalRunID: "p_" + s.id, Action: def(s.action, "add-s3-bucket"),
			User: run.User{Email: def(s.user, "dana@acme.example")}, Inputs: s.inputs},
		Stack:   run.Stack{Tenant: def(s.tenant, "acme"), Environment: def(s.env, "dev"), Service: def(s.service, "checkout")},
		Project: "platform/provisioning", Ref: "main", PipelineURL: s.pipelineURL, CreatedAt: created, UpdatedAt: created}
	if s.pipelineURL != "" {
		r.PipelineID = 42
	}
	if _, _, err := w.st.CreateRun(context.Background(), r, *(&store.Change{}).Add("created for the test")); err != nil {
		w.t.Fatal(err)
	}
	return r
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}

type answer struct {
	code int
	body string
	resp *http.Response
}

// do sends a request with the given cookies and extra headers.
func (w *world) do(method, path string, form url.Values, cookies []*http.Cookie, headers ...string) answer {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, w.srv.URL+path, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp}
}

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfFieldRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field in:\n%s", body)
	}
	return m[1]
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// login signs in with token through the form and returns the answer and the login cookie.
func (w *world) login(token string) answer {
	w.t.Helper()
	form := w.do("GET", "/ui/login", nil, nil)
	lc := cookieNamed(form.resp, loginCookie)
	if form.code != 200 || lc == nil {
		w.t.Fatalf("login form: %d, cookie %v", form.code, lc)
	}
	return w.do("POST", "/ui/login", url.Values{"csrf": {csrfOf(w.t, form.body)}, "token": {token}}, []*http.Cookie{lc})
}

// signIn returns alice's session cookie and a page's CSRF token.
func (w *world) signIn() (*http.Cookie, string) {
	w.t.Helper()
	a := w.login(aliceToken)
	c := cookieNamed(a.resp, sessionCookie)
	if a.code != http.StatusSeeOther || c == nil {
		w.t.Fatalf("sign in: %d %v", a.code, c)
	}
	page := w.do("GET", "/ui/", nil, []*http.Cookie{c})
	return c, csrfOf(w.t, page.body)
}

func TestSignInSetsAHardenedSessionCookie(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_visible"})
	a := w.login(aliceToken)
	c := cookieNamed(a.resp, sessionCookie)
	if a.code != http.StatusSeeOther || a.resp.Header.Get("Location") != "/ui/" || c == nil {
		t.Fatalf("sign in = %d %q %v", a.code, a.resp.Header.Get("Location"), c)
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || c.Secure || c.MaxAge != 3600 {
		t.Fatalf("cookie = %+v", c)
	}
	if strings.Contains(c.Value, aliceToken) || !strings.HasPrefix(c.Value, "alice|") {
		t.Fatalf("cookie value %q", c.Value)
	}
	page := w.do("GET", "/ui/", nil, []*http.Cookie{c})
	if page.code != 200 || !strings.Contains(page.body, "r_visible") || !strings.Contains(page.body, "alice") {
		t.Fatalf("runs page %d:\n%s", page.code, page.body)
	}

	// Behind https the cookie is Secure.
	w.ui.cfg.SecureCookie = true
	if c := cookieNamed(w.login(bobToken).resp, sessionCookie); c == nil || !c.Secure || !strings.HasPrefix(c.Value, "bob|") {
		t.Fatalf("secure cookie = %+v", c)
	}
}

func TestWrongTokenIs401WithTheFormAndNoData(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_secret"})
	for _, tok := range []string{"wrong", "", aliceToken + "x", aliceToken[:len(aliceToken)-1]} {
		a := w.login(tok)
		if a.code != http.StatusUnauthorized || cookieNamed(a.resp, sessionCookie) != nil {
			t.Fatalf("token %q: %d", tok, a.code)
		}
		if !strings.Contains(a.body, `name="token"`) || !strings.Contains(a.body, "not valid") || strings.Contains(a.body, "r_secret") {
			t.Fatalf("token %q: page:\n%s", tok, a.body)
		}
	}
}

func TestWithoutASessionThereIsNoData(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_secret", state: "running"})
	for _, path := range []string{"/ui/", "/ui/?tenant=acme", "/ui/runs/r_secret", "/ui/queue", "/ui/nowhere"} {
		a := w.do("GET", path, nil, nil)
		if a.code != http.StatusSeeOther || a.resp.Header.Get("Location") != "/ui/login" || strings.Contains(a.body, "r_secret") {
			t.Errorf("GET %s = %d %q", path, a.code, a.resp.Header.Get("Location"))
		}
	}
	if a := w.do("GET", "/ui/runs/r_secret/log/stream", nil, nil); a.code != http.StatusUnauthorized || strings.Contains(a.body, "r_secret") {
		t.Errorf("stream = %d %q", a.code, a.body)
	}
	if a := w.do("POST", "/ui/runs/r_secret/cancel", url.Values{"csrf": {"x"}}, nil); a.code != http.StatusUnauthorized {
		t.Errorf("cancel = %d", a.code)
	}
	if r, _ := w.st.Run(context.Background(), "r_secret"); r.State != run.Running {
		t.Fatalf("state %s", r.State)
	}
}

func TestTamperedExpiredOrRevokedSessionsAreRefused(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_secret"})
	good, _ := w.signIn()
	refused := func(what, value string) {
		t.Helper()
		a := w.do("GET", "/ui/", nil, []*http.Cookie{{Name: sessionCookie, Value: value}})
		if a.code != http.StatusSeeOther || strings.Contains(a.body, "r_secret") {
			t.Errorf("%s: %d", what, a.code)
		}
	}
	parts := strings.Split(good.Value, "|")
	refused("another name", "bob|"+parts[1]+"|"+parts[2])
	refused("a later expiry", "alice|"+"9999999999|"+parts[2])
	refused("no signature", "alice|"+parts[1])
	refused("garbage", "x")
	refused("another key's signature", "alice|"+parts[1]+"|"+(&ui{cfg: Config{SessionKey: []byte("another key, just as long")}}).mac("session", "alice|"+parts[1]))

	// A session for an operator whose token was removed is over.
	revoked := *w.ui
	revoked.cfg.Operators = map[string]string{"bob": bobToken}
	if _, ok := revoked.session(&http.Request{Header: http.Header{"Cookie": {good.String()}}}); ok {
		t.Error("a removed operator's session still counts")
	}
	// And one whose token was replaced (leaked, rotated): the old sign-in ends.
	rotated := *w.ui
	rotated.cfg.Operators = map[string]string{"alice": "a-brand-new-token-for-alice", "bob": bobToken}
	if _, ok := rotated.session(&http.Request{Header: http.Header{"Cookie": {good.String()}}}); ok {
		t.Error("a session outlived its operator's token")
	}

	if a := w.do("GET", "/ui/", nil, []*http.Cookie{good}); a.code != 200 {
		t.Fatalf("the genuine cookie: %d", a.code)
	}
	w.clock.Advance(time.Hour)
	refused("expired", good.Value)
}

func TestCrossSitePostsAreRefusedEvenWithASession(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_q"})
	c, csrf := w.signIn()
	form := url.Values{"csrf": {csrf}}
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}, {"Origin", "null"},
		{"Origin", "http://" + w.srv.Listener.Addr().String() + ".evil.example"}} {
		if a := w.do("POST", "/ui/runs/r_q/cancel", form, []*http.Cookie{c}, h...); a.code != http.StatusForbidden {
			t.Errorf("%v: %d", h, a.code)
		}
	}
	// Sign-in is guarded too: a forged login form from elsewhere.
	if a := w.do("POST", "/ui/login", url.Values{"token": {aliceToken}}, nil, "Sec-Fetch-Site", "cross-site"); a.code != http.StatusForbidden || cookieNamed(a.resp, sessionCookie) != nil {
		t.Errorf("cross-site login: %d", a.code)
	}
	if r, _ := w.st.Run(context.Background(), "r_q"); r.State != run.Queued {
		t.Fatalf("state %s after refused posts", r.State)
	}
	// The same origin, as a browser sends it, passes.
	a := w.do("POST", "/ui/runs/r_q/cancel", form, []*http.Cookie{c}, "Origin", w.srv.URL, "Sec-Fetch-Site", "same-origin")
	if a.code != http.StatusSeeOther {
		t.Fatalf("same-origin cancel: %d\n%s", a.code, a.body)
	}
	if got := w.refusals; len(got) != 5 || got[0] != "cross_site" || got[4] != "cross_site" {
		t.Fatalf("refusals reported %v", got)
	}
}

// Behind a proxy that rewrites Host, the Origin of paved's public URL is
// paved's own.
func TestPublicHostOriginIsSameSite(t *testing.T) {
	w := newWorld(t)
	w.ui.cfg.PublicHost = "paved.acme.example"
	w.add(spec{id: "r_q"})
	c, csrf := w.signIn()
	a := w.do("POST", "/ui/runs/r_q/cancel", url.Values{"csrf": {csrf}}, []*http.Cookie{c}, "Origin", "https://paved.acme.example")
	if a.code != http.StatusSeeOther {
		t.Fatalf("cancel from the public origin: %d\n%s", a.code, a.body)
	}
	if a := w.do("POST", "/ui/runs/r_q/cancel", url.Values{"csrf": {csrf}}, []*http.Cookie{c}, "Origin", "https://paved.acme.example.evil"); a.code != http.StatusForbidden {
		t.Fatalf("a look-alike origin: %d", a.code)
	}
}

func TestPostsNeedTheCSRFField(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_q"})
	c, _ := w.signIn()
	other := cookieNamed(w.login(bobToken).resp, sessionCookie)
	for what, form := range map[string]url.Values{"missing": {}, "wrong": {"csrf": {"abc"}}, "another session's": {"csrf": {w.ui.csrf(session{value: other.Value})}}} {
		if a := w.do("POST", "/ui/runs/r_q/cancel", form, []*http.Cookie{c}); a.code != http.StatusForbidden || !strings.Contains(a.body, "CSRF") {
			t.Errorf("%s field: %d", what, a.code)
		}
	}
	if a := w.do("POST", "/ui/logout", url.Values{}, []*http.Cookie{c}); a.code != http.StatusForbidden {
		t.Errorf("logout without field: %d", a.code)
	}
	// The login form's field is bound to its cookie.
	form := w.do("GET", "/ui/login", nil, nil)
	if a := w.do("POST", "/ui/login", url.Values{"csrf": {csrfOf(t, form.body)}, "token": {aliceToken}}, nil); a.code != http.StatusForbidden {
		t.Errorf("login without its cookie: %d", a.code)
	}
	if r, _ := w.st.Run(context.Background(), "r_q"); r.State != run.Queued {
		t.Fatalf("state %s", r.State)
	}
}

func rowsOf(body string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`<tr data-run="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestFiltersFilter(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_1", tenant: "acme", env: "dev", user: "dana@acme.example"})
	w.add(spec{id: "r_2", tenant: "globex", env: "dev", state: "running"})
	w.add(spec{id: "r_3", tenant: "acme", env: "prod", action: "add-sqs-queue", user: "sam@acme.example", state: "failed"})
	w.add(spec{id: "r_4", tenant: "acme", env: "dev", action: "add-sqs-queue", user: "sam@acme.example"})
	c, _ := w.signIn()
	for query, want := range map[string]string{
		"":                                   "r_4 r_3 r_2 r_1",
		"?tenant=globex":                     "r_2",
		"?action=add-sqs-queue":              "r_4 r_3",
		"?environment=prod":                  "r_3",
		"?user=sam%40acme.example":           "r_4 r_3",
		"?state=queued":                      "r_4 r_1",
		"?state=queued&action=add-s3-bucket": "r_1",
		"?tenant=acme&action=add-sqs-queue&state=failed&environment=prod&user=sam%40acme.example": "r_3",
		"?tenant=initech": "",
	} {
		a := w.do("GET", "/ui/"+query, nil, []*http.Cookie{c})
		if got := strings.Join(rowsOf(a.body), " "); a.code != 200 || got != want {
			t.Errorf("%q: %d %q, want %q", query, a.code, got, want)
		}
	}
	a := w.do("GET", "/ui/?tenant=globex&state=running", nil, []*http.Cookie{c})
	if !strings.Contains(a.body, `name="tenant" value="globex"`) || !strings.Contains(a.body, `<option value="running" selected>`) {
		t.Errorf("the form does not keep the filters:\n%s", a.body)
	}
	if a := w.do("GET", "/ui/?state=bogus", nil, []*http.Cookie{c}); a.code != http.StatusBadRequest {
		t.Errorf("unknown state: %d", a.code)
	}
}

func eventsOf(t *testing.T, st *sqlite.Store, id string) string {
	t.Helper()
	evs, err := st.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range evs {
		msgs = append(msgs, e.Message)
	}
	return strings.Join(msgs, "\n")
}

func TestButtonsActAsTheOperator(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_q"})
	w.add(spec{id: "r_a", state: "awaiting_approval", env: "prod"})
	w.add(spec{id: "r_d", state: "awaiting_approval", env: "staging"})
	c, csrf := w.signIn()
	post := func(path string, extra ...string) answer {
		form := url.Values{"csrf": {csrf}}
		for i := 0; i+1 < len(extra); i += 2 {
			form.Set(extra[i], extra[i+1])
		}
		return w.do("POST", path, form, []*http.Cookie{c})
	}
	page := w.do("GET", "/ui/runs/r_a", nil, []*http.Cookie{c})
	for _, b := range []string{`id="approve"`, `id="deny"`, `id="cancel"`} {
		if !strings.Contains(page.body, b) {
			t.Errorf("awaiting run's page lacks %s", b)
		}
	}
	if a := post("/ui/runs/r_q/cancel"); a.code != http.StatusSeeOther || a.resp.Header.Get("Location") != "/ui/runs/r_q" {
		t.Fatalf("cancel: %d %q", a.code, a.resp.Header.Get("Location"))
	}
	if r, _ := w.st.Run(context.Background(), "r_q"); r.State != run.Canceled || !strings.Contains(eventsOf(t, w.st, "r_q"), "canceled by operator:alice") {
		t.Fatalf("after cancel: %s, events:\n%s", r.State, eventsOf(t, w.st, "r_q"))
	}
	page = w.do("GET", "/ui/runs/r_q", nil, []*http.Cookie{c})
	if strings.Contains(page.body, `id="cancel"`) || !strings.Contains(page.body, "canceled by operator:alice") {
		t.Errorf("canceled run's page:\n%s", page.body)
	}
	if a := post("/ui/runs/r_q/cancel"); a.code != http.StatusConflict || !strings.Contains(a.body, "cannot move from canceled to canceled") {
		t.Errorf("second cancel: %d\n%s", a.code, a.body)
	}
	if a := post("/ui/runs/r_a/approve"); a.code != http.StatusSeeOther {
		t.Fatalf("approve: %d\n%s", a.code, a.body)
	}
	if r, _ := w.st.Run(context.Background(), "r_a"); r.State != run.Queued || !strings.Contains(eventsOf(t, w.st, "r_a"), "approved by operator:alice") {
		t.Fatalf("after approve: %s", r.State)
	}
	if a := post("/ui/runs/r_d/deny", "reason", "not this week"); a.code != http.StatusSeeOther {
		t.Fatalf("deny: %d", a.code)
	}
	if r, _ := w.st.Run(context.Background(), "r_d"); r.State != run.Rejected || !strings.Contains(eventsOf(t, w.st, "r_d"), "denied by operator:alice at ") || !strings.Contains(eventsOf(t, w.st, "r_d"), ": not this week") {
		t.Fatalf("after deny: %s", r.State)
	}
	if a := post("/ui/runs/r_none/cancel"); a.code != http.StatusNotFound {
		t.Errorf("cancel of no run: %d", a.code)
	}
	if a := post("/ui/runs/r_a/explode"); a.code != http.StatusNotFound {
		t.Errorf("unknown verb: %d", a.code)
	}
}

func TestRunPageEscapesHostileInput(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_x", inputs: map[string]any{"bucketName": `<script>alert(1)</script>`, "size": 3, "tags": map[string]any{"a": `"><img src=x onerror=alert(1)>`}},
		user: `eve"><script>alert(2)</script>@x`, pipelineURL: "javascript:alert(3)"})
	c, _ := w.signIn()
	for _, path := range []string{"/ui/runs/r_x", "/ui/"} {
		a := w.do("GET", path, nil, []*http.Cookie{c})
		if a.code != 200 {
			t.Fatalf("%s: %d", path, a.code)
		}
		for _, bad := range []string{"<script>alert", "<img src=x", "javascript:"} {
			if strings.Contains(a.body, bad) {
				t.Errorf("%s holds %q unescaped", path, bad)
			}
		}
		if path == "/ui/runs/r_x" && (!strings.Contains(a.body, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(a.body, "<td class=\"mono\">3</td>")) {
			t.Errorf("inputs not shown as text:\n%s", a.body)
		}
	}
}

func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_1", pipelineURL: "https://gitlab.example/p/-/pipelines/42"})
	c, _ := w.signIn()
	for _, path := range []string{"/ui/login", "/ui/", "/ui/runs/r_1", "/ui/queue", "/ui/assets/operator.css"} {
		a := w.do("GET", path, nil, []*http.Cookie{c})
		h := a.resp.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: headers %v", path, h)
		}
		if cc := h.Get("Cache-Control"); path != "/ui/assets/operator.css" && cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, cc)
		}
		if strings.Contains(a.body, "http://") && path != "/ui/runs/r_1" || strings.Contains(a.body, "<script>") || strings.Contains(a.body, "style=") {
			t.Errorf("%s has inline script, style or an external URL", path)
		}
	}
	if a := w.do("GET", "/ui/runs/r_1", nil, []*http.Cookie{c}); !strings.Contains(a.body, `<a href="https://gitlab.example/p/-/pipelines/42"`) {
		t.Errorf("no pipeline link:\n%s", a.body)
	}
	if a := w.do("GET", "/ui/assets/operator.js", nil, nil); a.code != 200 || !strings.HasPrefix(a.resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("script: %d %q", a.code, a.resp.Header.Get("Content-Type"))
	}
}

func TestQueueShowsEachStackInLineOrder(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_1", state: "running"})
	w.add(spec{id: "r_3", state: "queued"})
	w.add(spec{id: "r_2", state: "queued"})
	w.add(spec{id: "r_4", state: "awaiting_approval"})
	w.add(spec{id: "r_5", state: "succeeded"})
	w.add(spec{id: "r_6", state: "queued", tenant: "globex"})
	c, _ := w.signIn()
	a := w.do("GET", "/ui/queue", nil, []*http.Cookie{c})
	if got := strings.Join(rowsOf(a.body), " "); a.code != 200 || got != "r_1 r_3 r_2 r_4 r_6" {
		t.Fatalf("queue rows %q\n%s", got, a.body)
	}
	acme, globex := strings.Index(a.body, `data-stack="acme-dev-checkout"`), strings.Index(a.body, `data-stack="globex-dev-checkout"`)
	if acme < 0 || globex < acme || !strings.Contains(a.body, "2 ahead") || !strings.Contains(a.body, "not in line") {
		t.Fatalf("queue page:\n%s", a.body)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	w := newWorld(t)
	c, csrf := w.signIn()
	a := w.do("POST", "/ui/logout", url.Values{"csrf": {csrf}}, []*http.Cookie{c})
	if gone := cookieNamed(a.resp, sessionCookie); a.code != http.StatusSeeOther || gone == nil || gone.MaxAge >= 0 {
		t.Fatalf("logout: %d %v", a.code, gone)
	}
}

// sse reads a log stream's events.
type sse struct {
	t *testing.T
	r *bufio.Reader
}

type event struct{ id, name, data string }

func (w *world) openStream(ctx context.Context, c *http.Cookie, id string, headers ...string) *sse {
	w.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", w.srv.URL+"/ui/runs/"+id+"/log/stream", nil)
	req.AddCookie(c)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		w.t.Fatalf("stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sse{t: w.t, r: bufio.NewReader(resp.Body)}
}

// next returns the next event, skipping the retry hint and comments.
func (s *sse) next() event {
	s.t.Helper()
	var ev event
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && (ev.data != "" || ev.name != ""):
			return ev
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

func TestStreamResumesAfterLastEventIDAndEndsForAFinishedRun(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_done", state: "running"})
	ctx := context.Background()
	if err := w.st.AppendLogs(ctx, "r_done", []string{"one", "two", `three <b>"x"</b>`}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.Update(ctx, "r_done", func(r *run.Run) (store.Change, error) {
		return store.Change{}, r.MoveTo(run.Succeeded, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	c, _ := w.signIn()
	s := w.openStream(ctx, c, "r_done", "Last-Event-ID", "1")
	if ev := s.next(); ev.id != "2" || !strings.Contains(ev.data, `"seq":2`) || !strings.Contains(ev.data, `"line":"two"`) {
		t.Fatalf("first event %+v", ev)
	}
	if ev := s.next(); ev.id != "3" || !strings.Contains(ev.data, `"line":"three \u003cb\u003e\"x\"\u003c/b\u003e"`) {
		t.Fatalf("second event %+v", ev)
	}
	if ev := s.next(); ev.name != "end" || ev.data != "succeeded" {
		t.Fatalf("last event %+v", ev)
	}
	if _, err := s.r.ReadString('\n'); err != io.EOF {
		t.Fatalf("stream goes on after end: %v", err)
	}
	// Without Last-Event-ID the stream starts at the beginning (or ?after=).
	s = w.openStream(ctx, c, "r_done")
	if ev := s.next(); ev.id != "1" {
		t.Fatalf("from the start: %+v", ev)
	}
	if a := w.do("GET", "/ui/runs/r_done/log/stream?after=x", nil, []*http.Cookie{c}); a.code != http.StatusBadRequest {
		t.Fatalf("bad after: %d", a.code)
	}
	if a := w.do("GET", "/ui/runs/r_none/log/stream", nil, []*http.Cookie{c}); a.code != http.StatusNotFound {
		t.Fatalf("no run: %d", a.code)
	}
}

func TestStreamFollowsALiveRun(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_live", state: "running"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.st.AppendLogs(ctx, "r_live", []string{"shown by the page"}, 0); err != nil {
		t.Fatal(err)
	}
	c, _ := w.signIn()
	req, _ := http.NewRequestWithContext(ctx, "GET", w.srv.URL+"/ui/runs/r_live/log/stream?after=1", nil)
	req.AddCookie(c)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := &sse{t: t, r: bufio.NewReader(resp.Body)}
	// The headers have arrived: the stream is open. A line posted now reaches it.
	if err := w.st.AppendLogs(ctx, "r_live", []string{"pulumi up: 3 created"}, 0); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(); ev.id != "2" || !strings.Contains(ev.data, "pulumi up: 3 created") {
		t.Fatalf("live event %+v", ev)
	}
	if _, err := (&intake.Service{Store: w.st, Log: zap.NewNop()}).Cancel(ctx, "r_live", "test"); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(); ev.name != "end" || ev.data != "canceled" {
		t.Fatalf("end event %+v", ev)
	}
}

func TestStreamsEndWhenPavedShutsDown(t *testing.T) {
	w := newWorld(t)
	w.add(spec{id: "r_live", state: "running"})
	c, _ := w.signIn()
	s := w.openStream(context.Background(), c, "r_live")
	close(w.done)
	rest, err := io.ReadAll(s.r)
	if err != nil || strings.Contains(string(rest), "event: end") {
		t.Fatalf("after shutdown the stream sent %q, %v; want it closed without an end (the run goes on)", rest, err)
	}
}
