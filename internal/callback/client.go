// Package callback is the pipeline's side of paved's run callback API: a
// client that posts a run's log lines and Pulumi stack outputs to paved,
// and the `paved report` command the provisioning pipeline's report job
// runs.
package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Errors callers match with errors.Is; they are final, never retried.
var (
	ErrUnauthorized = errors.New("paved refused the run token (401)")
	ErrUnknownRun   = errors.New("paved does not know the run (404)")
	ErrRunFinished  = errors.New("the run is already finished (409)")
)

// Client posts to one paved for one run. The token is sent only in the
// Authorization header and never appears in errors or logs.
type Client struct {
	baseURL *url.URL
	runID   string
	token   string
	http    *http.Client
	// Attempts and Backoff govern retries of network errors and 5xx
	// answers; the wait doubles after each attempt.
	Attempts int
	Backoff  time.Duration
	// Traceparent, a W3C trace context (the TRACEPARENT paved gives the
	// pipeline), goes with every request, so paved's spans for them join
	// the run's trace.
	Traceparent string
}

// NewClient returns a client for the run at paved's base URL.
func NewClient(baseURL, runID, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("paved URL %q is not an http(s) URL", baseURL)
	}
	if runID == "" || token == "" {
		return nil, errors.New("a run id and a run token are required")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{baseURL: u, runID: runID, token: token, http: hc, Attempts: 5, Backoff: 500 * time.Millisecond}, nil
}

// Logs posts log lines in order.
func (c *Client) Logs(ctx context.Context, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	return c.post(ctx, "logs", map[string]any{"lines": lines}, nil)
}

// Outputs posts the stack outputs (the object `pulumi stack output --json`
// prints).
func (c *Client) Outputs(ctx context.Context, outputs map[string]any) error {
	if outputs == nil {
		outputs = map[string]any{}
	}
	return c.post(ctx, "outputs", map[string]any{"outputs": outputs}, nil)
}

// Verdict is paved's answer to a preview: what the pipeline does next.
type Verdict struct {
	Verdict string   `json:"verdict"` // run.Verdict*
	Summary string   `json:"summary"` // "+3 ~1 -0 (1 replace)"
	Reasons []string `json:"reasons,omitempty"`
}

// Preview posts the run's preview summary (resources and digest, see
// internal/preview) and returns paved's verdict.
func (c *Client) Preview(ctx context.Context, p any) (Verdict, error) {
	var v Verdict
	err := c.post(ctx, "preview", p, &v)
	return v, err
}

func (c *Client) post(ctx context.Context, what string, body, answer any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	endpoint := c.baseURL.JoinPath("api", "v1", "runs", c.runID, what).String()
	wait := c.Backoff
	var last error
	for attempt := 1; attempt <= max(c.Attempts, 1); attempt++ {
		retry, err := c.once(ctx, endpoint, b, answer)
		if err == nil {
			return nil
		}
		last = fmt.Errorf("post %s for run %s (attempt %d): %w", what, c.runID, attempt, err)
		if !retry || attempt == c.Attempts {
			break
		}
		select {
		case <-ctx.Done():
			return errors.Join(last, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
	return last
}

// once makes one request and says whether a failure is worth retrying.
func (c *Client) once(ctx context.Context, endpoint string, body []byte, answer any) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if c.Traceparent != "" {
		req.Header.Set("traceparent", c.Traceparent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error names the URL, never the header, so the token stays out.
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if answer != nil {
			if err := json.Unmarshal(msg, answer); err != nil {
				return false, fmt.Errorf("paved's answer is not the JSON expected: %w", err)
			}
		}
		return false, nil
	case resp.StatusCode == http.StatusUnauthorized:
		return false, ErrUnauthorized
	case resp.StatusCode == http.StatusNotFound:
		return false, ErrUnknownRun
	case resp.StatusCode == http.StatusConflict:
		return false, ErrRunFinished
	case resp.StatusCode >= 500:
		return true, fmt.Errorf("paved answered %s: %s", resp.Status, clipped(msg))
	default:
		return false, fmt.Errorf("paved answered %s: %s", resp.Status, clipped(msg))
	}
}

func clipped(msg []byte) []byte {
	msg = bytes.TrimSpace(msg)
	if len(msg) > 512 {
		msg = append(msg[:512:512], "…"...)
	}
	return msg
}
