// Package port is paved's client for Port's (getport.io) REST API: access
// tokens, requests, Port's errors and whether a retry can help, and the
// user-teams lookup. The subpackage runreport turns a run's reports into
// calls through this client; the subpackage webhook verifies and decodes
// the invocations Port sends for self-service actions.
//
// The formats follow Port's public documentation; see shared/DESIGN.md
// "Port → paved" and "paved → Port" and the notes on each type here.
package port

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paved-idp/paved/internal/clip"
)

// PortalName is run.Request.Portal for requests from Port.
const PortalName = "port"

// DefaultBaseURL is Port's EU API; US organisations use
// https://api.us.getport.io.
const DefaultBaseURL = "https://api.getport.io"

const (
	// defaultTokenTTL is assumed when Port does not say how long a token
	// lives; Port documents about three hours.
	defaultTokenTTL = 3 * time.Hour
	// tokenMargin is how long before expiry a token is replaced, so a
	// request never leaves with a token that dies in flight.
	tokenMargin = 5 * time.Minute
	// defaultUserCacheTTL bounds how stale a user's teams may be.
	defaultUserCacheTTL = time.Minute
	// defaultRateLimitWait is assumed when a 429 carries no reset header.
	defaultRateLimitWait = 30 * time.Second
	// maxResponse caps how much of a response we read; Port's own request
	// limit is 1 MiB and its answers here are small.
	maxResponse = 1 << 20
	// excerptLen is how much of an error body goes into an error message.
	excerptLen = 200
)

// Options tune a Client; the zero value is usable.
type Options struct {
	// HTTPClient sends the requests; nil means a client with a 30s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// UserCacheTTL is how long UserTeams remembers an answer; zero means 1m.
	UserCacheTTL time.Duration
}

// Client calls Port's REST API with an organisation's client credentials.
// It is safe for concurrent use.
type Client struct {
	base         string
	clientID     string
	clientSecret string
	hc           *http.Client
	now          func() time.Time
	userTTL      time.Duration

	mu        sync.Mutex
	token     string
	refreshAt time.Time
	flight    *tokenFlight // the token fetch in progress, if any

	umu   sync.Mutex
	users map[string]cachedUser
}

// tokenFlight is one access-token fetch that concurrent callers share.
type tokenFlight struct {
	done  chan struct{}
	token string
	err   error
}

// NewClient returns a client for the Port API at baseURL (DefaultBaseURL
// when empty).
func NewClient(baseURL, clientID, clientSecret string, opt Options) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	c := &Client{
		base:         strings.TrimRight(baseURL, "/"),
		clientID:     clientID,
		clientSecret: clientSecret,
		hc:           opt.HTTPClient,
		now:          opt.Now,
		userTTL:      opt.UserCacheTTL,
		users:        map[string]cachedUser{},
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.userTTL <= 0 {
		c.userTTL = defaultUserCacheTTL
	}
	return c
}

// APIError is a non-2xx answer from Port.
type APIError struct {
	Op         string // what we were doing: "patch run r_123"
	StatusCode int
	Status     string // "502 Bad Gateway"
	Body       string // an excerpt of the response body
}

func (e *APIError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("port: %s: %s", e.Op, e.Status)
	}
	return fmt.Sprintf("port: %s: %s: %s", e.Op, e.Status, e.Body)
}

// RateLimitError is a 429 from Port: the caller should not retry before
// Reset.
type RateLimitError struct {
	Reset time.Time
	APIError
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%s (rate limited until %s)", e.APIError.Error(), e.Reset.UTC().Format(time.RFC3339))
}

// Unwrap exposes the APIError inside.
func (e *RateLimitError) Unwrap() error { return &e.APIError }

// ErrInvalid marks a request we refuse to send because Port would refuse it
// too; retrying cannot help. It is exported for the requests built outside
// this package (runreport's), so that IsPermanent knows them as well.
var ErrInvalid = errors.New("invalid request")

// IsPermanent reports whether retrying err cannot succeed: Port refused the
// request itself (a 4xx other than 401, 408 and 429), or the request was
// invalid before it was sent. Network errors, 5xx, 401 (token) and 429
// (rate limit) are worth retrying.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalid) {
		return true
	}
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return false
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.StatusCode {
	case http.StatusUnauthorized, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return ae.StatusCode >= 400 && ae.StatusCode < 500
}

// call is one Port API request.
type call struct {
	op     string // for error messages
	method string // HTTP method
	path   string // already escaped, with its query if any
	body   any    // JSON-encoded when not nil
	out    any    // JSON-decoded into when not nil
}

// Call sends one request to Port's API with the client's token, for routes
// this package has no method for (runreport's runs and entities,
// internal/portsync's blueprints and actions): path is escaped, starts with
// /v1/ and may end in an encoded query, body is sent as JSON when not nil,
// the answer is decoded into out when not nil. A non-2xx answer is an
// *APIError (*RateLimitError for a 429); op names the call in errors.
func (c *Client) Call(ctx context.Context, op, method, path string, body, out any) error {
	return c.do(ctx, call{op: op, method: method, path: path, body: body, out: out})
}

// do sends c with a bearer token. A 401 means the token was revoked or
// expired early: the token is dropped and the request is sent once more
// with a fresh one.
func (c *Client) do(ctx context.Context, r call) error {
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("port: %s: encode body: %v: %w", r.op, err, ErrInvalid)
		}
	}
	for attempt := 0; ; attempt++ {
		token, err := c.accessToken(ctx)
		if err != nil {
			return withOp(r.op, err)
		}
		status, body, hdr, err := c.send(ctx, r, payload, token)
		if err != nil {
			return fmt.Errorf("port: %s: %w", r.op, err)
		}
		if status == http.StatusUnauthorized && attempt == 0 {
			c.dropToken(token)
			continue
		}
		if status < 200 || status > 299 {
			return c.apiError(r.op, status, body, hdr)
		}
		if r.out != nil {
			if err := json.Unmarshal(body, r.out); err != nil {
				return fmt.Errorf("port: %s: decode answer: %s", r.op, clip.String(err.Error(), excerptLen))
			}
		}
		return nil
	}
}

func (c *Client) send(ctx context.Context, r call, payload []byte, token string) (int, []byte, http.Header, error) {
	u := c.base + r.path
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error names the URL, which carries no secret: credentials
		// travel in the body and the token in a header. Its path may hold
		// webhook content (a blueprint, an email), so it is clipped.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = clip.String(ue.URL, 200)
		}
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, body, resp.Header, nil
}

func (c *Client) apiError(op string, status int, body []byte, hdr http.Header) error {
	ae := APIError{Op: op, StatusCode: status, Status: statusText(status), Body: c.excerpt(body)}
	if status == http.StatusTooManyRequests {
		return &RateLimitError{Reset: c.resetTime(hdr), APIError: ae}
	}
	return &ae
}

// withOp puts op in front of an error from a shared token fetch. API errors
// are copied, not changed, because every caller waiting on that fetch holds
// the same one.
func withOp(op string, err error) error {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		cp := *rl
		cp.Op = op + ": " + cp.Op
		return &cp
	}
	var ae *APIError
	if errors.As(err, &ae) {
		cp := *ae
		cp.Op = op + ": " + cp.Op
		return &cp
	}
	return fmt.Errorf("port: %s: %w", op, err)
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return strconv.Itoa(code)
}

// excerpt shortens an error body for a message, and blanks our secrets in
// case an endpoint ever echoes a request back.
func (c *Client) excerpt(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	for _, secret := range []string{c.clientSecret, c.currentToken()} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return clip.String(s, excerptLen)
}

// resetTime reads when a rate limit ends. Port documents x-ratelimit-reset
// as "the number of seconds before the rate limit is reset"; an earlier
// version of the same page called it UTC epoch seconds, so a value that can
// only be an epoch (after 2001) is read as one. Retry-After is the fallback.
func (c *Client) resetTime(h http.Header) time.Time {
	now := c.now()
	if v := strings.TrimSpace(h.Get("X-Ratelimit-Reset")); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < 1e11 {
			if f > 1e9 {
				return time.Unix(0, int64(f*1e9))
			}
			return now.Add(time.Duration(f * float64(time.Second)))
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return now.Add(time.Duration(n) * time.Second)
		}
		if t, err := http.ParseTime(v); err == nil {
			return t
		}
	}
	return now.Add(defaultRateLimitWait)
}

// accessToken returns a valid token, fetching one when there is none or it
// is about to expire. Concurrent callers share one fetch.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	for {
		c.mu.Lock()
		if c.token != "" && c.now().Before(c.refreshAt) {
			t := c.token
			c.mu.Unlock()
			return t, nil
		}
		if f := c.flight; f != nil {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			// A fetch that died with its own caller's context says nothing
			// about ours: try again.
			if f.err != nil && ctx.Err() == nil &&
				(errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
				continue
			}
			return f.token, f.err
		}
		f := &tokenFlight{done: make(chan struct{})}
		c.flight = f
		c.mu.Unlock()

		token, ttl, err := c.fetchToken(ctx)

		c.mu.Lock()
		c.flight = nil
		if err == nil {
			c.token = token
			c.refreshAt = c.now().Add(ttl - margin(ttl))
		}
		f.token, f.err = token, err
		close(f.done)
		c.mu.Unlock()
		return token, err
	}
}

// margin is how early a token of the given lifetime is replaced: a few
// minutes, or half its life when it lives less than twice that.
func margin(ttl time.Duration) time.Duration {
	if ttl < 2*tokenMargin {
		return ttl / 2
	}
	return tokenMargin
}

// dropToken forgets token after Port refused it, unless another caller has
// already replaced it.
func (c *Client) dropToken(token string) {
	c.mu.Lock()
	if c.token == token {
		c.token = ""
	}
	c.mu.Unlock()
}

func (c *Client) currentToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// fetchToken exchanges the client credentials for an access token:
// POST /v1/auth/access_token {clientId, clientSecret} →
// {ok, accessToken, expiresIn (seconds), tokenType}.
func (c *Client) fetchToken(ctx context.Context) (string, time.Duration, error) {
	const op = "get access token"
	payload, err := json.Marshal(map[string]string{"clientId": c.clientID, "clientSecret": c.clientSecret})
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", op, err)
	}
	status, body, hdr, err := c.send(ctx, call{method: http.MethodPost, path: "/v1/auth/access_token"}, payload, "")
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", op, err)
	}
	if status < 200 || status > 299 {
		return "", 0, c.apiError(op, status, body, hdr)
	}
	var out struct {
		AccessToken string  `json:"accessToken"`
		ExpiresIn   float64 `json:"expiresIn"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.AccessToken == "" {
		return "", 0, fmt.Errorf("%s: answer has no accessToken", op)
	}
	ttl := defaultTokenTTL
	if out.ExpiresIn > 0 {
		ttl = time.Duration(out.ExpiresIn * float64(time.Second))
	}
	return out.AccessToken, ttl, nil
}
