// Package gitlab is paved's adapter over GitLab's REST API
// (gitlab.com/gitlab-org/api/client-go): trigger a pipeline, read it (with
// the run it carries, to verify an event), find the pipeline of a run after
// a crash (see DESIGN.md "Exactly-once trigger") and cancel it. The names
// paved's component gives pipelines are naming's; decoding the pipeline
// webhooks GitLab sends is pipelinehook's.
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"
	gl "gitlab.com/gitlab-org/api/client-go"
	"golang.org/x/time/rate"

	"github.com/paved-idp/paved/internal/gitlab/naming"
	"github.com/paved-idp/paved/internal/gitlab/ratecap"
)

// RunIDVariable names the pipeline variable that carries paved's run id.
const RunIDVariable = "PAVED_RUN_ID"

// Variable is one pipeline variable; File makes it a file-type variable.
type Variable struct {
	Key, Value string
	File       bool
}

// Pipeline is what paved needs to know about a GitLab pipeline.
type Pipeline struct {
	ID        int64
	ProjectID int64 // the project GitLab says the pipeline is in
	Status    string
	WebURL    string
	Ref       string
	// Name is the pipeline's workflow:name ("paved <run id>" for pipelines
	// of paved's component; see naming.PipelineName). GitLab's create and
	// cancel answers do not carry it, so Trigger and Cancel leave it empty.
	Name string
	// Source is how the pipeline was started: "api" for Trigger's.
	Source    string
	CreatedAt time.Time
	// RunID is the run GitLab says the pipeline is of ("" for none): the
	// run id its name carries when the name has naming.PipelineName's form
	// (paved's component names every pipeline from its PAVED_RUN_ID;
	// RunIDFromName is then true), else its PAVED_RUN_ID variable. Only
	// PipelineOfRun, and FindByRunID when its fallback scan found the
	// pipeline, set it; other calls leave it empty.
	RunID         string
	RunIDFromName bool
}

// Options tune the client. The zero value is usable.
type Options struct {
	// HTTPClient carries the requests; nil uses a pooled default.
	HTTPClient *http.Client
	// RequestsPerMinute caps paved's own request rate: no 60-second window
	// holds more HTTP requests than this, retries included; 0 is unlimited.
	RequestsPerMinute int
	// Timeout bounds one HTTP attempt, from when it is sent (not counting
	// its wait under RequestsPerMinute or for a 429's reset); 0 means 30 s.
	// A request with its retries may take (Retries+1) attempts plus the
	// waits between them, and a call that pages gets that much per page.
	Timeout time.Duration
	// Retries is how often idempotent calls are retried on 429, 5xx and
	// connection errors; 0 means 3, negative means none. Trigger never retries.
	Retries int
	// RetryWaitMax caps one wait between retries (a 429's reset included)
	// and how long one 429 holds back every other request of the client;
	// 0 means 30 s. RetryWaitMin (0 means 100 ms) is the first backoff step.
	RetryWaitMin, RetryWaitMax time.Duration
	// OnRateLimitWait, when set, hears of every wait for a slot under
	// RequestsPerMinute or for a 429's reset.
	OnRateLimitWait func(time.Duration)
}

// Client talks to one GitLab instance with one token.
type Client struct {
	gl          *gl.Client
	timeout     time.Duration // one attempt
	waitMax     time.Duration // one wait between attempts, or one 429's pause
	callTimeout time.Duration // one request with its retries

	// runIDs caches each pipeline's PAVED_RUN_ID (or "" for none): pipeline
	// variables never change and pipeline ids are unique across projects, so
	// a reconcile interrupted by faults does not read them again and every
	// attempt makes progress. cursors remembers where each run's fallback
	// scan got to (see FindByRunID).
	mu      sync.Mutex
	runIDs  map[int64]string
	cursors map[cursorKey]*cursor

	// namings is what GitLab's answers showed of how each ref names its
	// pipelines, from every read of this client (see FindByRunID).
	namings naming.Seen
}

// New returns a client for the GitLab at baseURL (e.g. "https://gitlab.com",
// with or without "/api/v4").
func New(baseURL, token string, opt Options) (*Client, error) {
	if token == "" {
		return nil, errors.New("gitlab: empty token")
	}
	retries := opt.Retries
	switch {
	case retries == 0:
		retries = 3
	case retries < 0:
		retries = 0
	}
	waitMin, waitMax := opt.RetryWaitMin, opt.RetryWaitMax
	if waitMin <= 0 {
		waitMin = 100 * time.Millisecond
	}
	if waitMax <= 0 {
		waitMax = 30 * time.Second
	}
	// The cap is enforced beneath client-go's retries, by ratecap, so
	// that it counts every attempt. client-go consults its limiter once per
	// call, so it gets an unlimited one: a limit there would count calls a
	// second time, and without one client-go sizes its own from the first
	// response's RateLimit-Limit header.
	opts := []gl.ClientOptionFunc{
		gl.WithBaseURL(baseURL),
		gl.WithCustomLimiter(rate.NewLimiter(rate.Inf, 0)),
		gl.WithCustomRetryMax(retries),
		gl.WithCustomRetryWaitMinMax(waitMin, waitMax),
		gl.WithCustomBackoff(backoff),
	}
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	// The timeout goes on each attempt, not on the request with its
	// retries: a slow first answer must leave time for the retry. The
	// transport starts it once the attempt is sent, after its wait for the
	// cap and for a 429's reset (http.Client.Timeout would count those).
	hc := &http.Client{}
	if opt.HTTPClient != nil {
		copied := *opt.HTTPClient
		hc = &copied
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Timeout = 0
	hc.Transport = ratecap.New(next, ratecap.Options{PerMinute: opt.RequestsPerMinute, Timeout: timeout, MaxPause: waitMax, OnWait: opt.OnRateLimitWait})
	opts = append(opts, gl.WithHTTPClient(hc))
	c, err := gl.NewClient(token, opts...)
	if err != nil {
		return nil, fmt.Errorf("gitlab: new client for %s: %w", baseURL, err)
	}
	return &Client{gl: c, timeout: timeout, waitMax: waitMax, callTimeout: timeout*time.Duration(retries+1) + waitMax*time.Duration(retries),
		runIDs: map[int64]string{}, cursors: map[cursorKey]*cursor{}}, nil
}

// backoff honours a 429's Retry-After / RateLimit-Reset (capped at max) and
// otherwise backs off exponentially with jitter.
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		if d, ok := ratecap.RetryAfter(resp.Header); ok {
			return min(max(d, minWait), maxWait)
		}
	}
	d := min(minWait<<min(attempt, 16), maxWait)
	return d/2 + rand.N(d/2+1) // jitter spreads replicas that failed together
}

// noRetry is the retry policy of Trigger. Creating a pipeline is not
// idempotent: after a 5xx or a broken connection GitLab may well have
// created it, and a blind retry would start a second pipeline for the same
// run. The caller reconciles with FindByRunID instead.
func noRetry(ctx context.Context, _ *http.Response, _ error) (bool, error) {
	return false, ctx.Err()
}

// Trigger creates a pipeline on ref with vars (POST /projects/:id/pipeline).
// It is never retried here; see noRetry. The whole call, waits for the cap
// or a 429's pause included, takes at most Timeout: the dispatcher's lease
// on the run must outlast it, or another worker could find the run
// dispatching, see no pipeline yet and trigger a second. A call that could
// not be sent in time fails before sending, which the caller reconciles
// like any unknown outcome.
func (c *Client) Trigger(ctx context.Context, project, ref string, vars []Variable) (Pipeline, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	opts := make([]*gl.PipelineVariableOptions, 0, len(vars))
	for _, v := range vars {
		typ := gl.EnvVariableType
		if v.File {
			typ = gl.FileVariableType
		}
		opts = append(opts, &gl.PipelineVariableOptions{Key: gl.Ptr(v.Key), Value: gl.Ptr(v.Value), VariableType: gl.Ptr(typ)})
	}
	p, _, err := c.gl.Pipelines.CreatePipeline(project, &gl.CreatePipelineOptions{Ref: gl.Ptr(ref), Variables: &opts},
		gl.WithContext(ctx), gl.WithRequestRetry(noRetry))
	if err != nil {
		if r := refusal(project, ref, err); r != err {
			return Pipeline{}, r
		}
		return Pipeline{}, fmt.Errorf("gitlab: trigger pipeline in %s on %s: %w", project, ref, err)
	}
	return fromPipeline(p), nil
}

// Pipeline reads one pipeline.
func (c *Client) Pipeline(ctx context.Context, project string, id int64) (Pipeline, error) {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	p, _, err := c.gl.Pipelines.GetPipeline(project, id, gl.WithContext(ctx))
	if err != nil {
		return Pipeline{}, fmt.Errorf("gitlab: get pipeline %d in %s: %w", id, project, err)
	}
	out := fromPipeline(p)
	c.namings.Observe(project, out.Ref, out.ID, out.Name, out.CreatedAt)
	return out, nil
}

// PipelineOfRun reads pipeline id in project together with the run it is
// of (GET /projects/:id/pipelines/:pipeline_id). It is the read that may
// trust what an event claims: GitLab answers 404 (IsNotFound) for a
// pipeline that is not in project, whatever a hook or its variables said.
//
// A pipeline named "paved <run id>" (naming.PipelineName's form) is that
// run's, with no second request: paved's component makes the name from the
// pipeline's PAVED_RUN_ID, and only whoever may create pipelines in project
// (who could as well set the variable) or change its CI configuration can
// give a pipeline a name, so within project the name proves as much as the
// variable. Only a pipeline without a name, or with a name of another
// shape (a configuration without paved's component), has its variables
// read (once per pipeline).
func (c *Client) PipelineOfRun(ctx context.Context, project string, id int64) (Pipeline, error) {
	p, err := c.Pipeline(ctx, project, id)
	if err != nil {
		return Pipeline{}, err
	}
	if runID, ok := naming.RunIDOfName(p.Name); ok {
		p.RunID, p.RunIDFromName = runID, true
		return p, nil
	}
	if p.RunID, err = c.runIDOf(ctx, project, id); err != nil {
		return Pipeline{}, fmt.Errorf("gitlab: variables of pipeline %d in %s: %w", id, project, err)
	}
	return p, nil
}

// Cancel cancels a pipeline. GitLab answers 200 whatever the pipeline's
// state, so cancelling twice is harmless and retries are safe.
func (c *Client) Cancel(ctx context.Context, project string, id int64) (Pipeline, error) {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	p, _, err := c.gl.Pipelines.CancelPipelineBuild(project, id, gl.WithContext(ctx))
	if err != nil {
		return Pipeline{}, fmt.Errorf("gitlab: cancel pipeline %d in %s: %w", id, project, err)
	}
	return fromPipeline(p), nil
}

// runIDOf is a pipeline's PAVED_RUN_ID, "" when it has none.
func (c *Client) runIDOf(ctx context.Context, project string, id int64) (string, error) {
	c.mu.Lock()
	got, ok := c.runIDs[id]
	c.mu.Unlock()
	if ok {
		return got, nil
	}
	var vars []*gl.PipelineVariable
	err := c.call(ctx, func(ctx context.Context) (err error) {
		vars, _, err = c.gl.Pipelines.GetPipelineVariables(project, id, gl.WithContext(ctx))
		return err
	})
	if err != nil {
		return "", err
	}
	for _, v := range vars {
		if v.Key == RunIDVariable {
			got = v.Value
		}
	}
	c.mu.Lock()
	if len(c.runIDs) >= 50000 {
		clear(c.runIDs) // bounded; losing the cache only costs reads
	}
	c.runIDs[id] = got
	c.mu.Unlock()
	return got, nil
}

// call runs one request (with its retries) under its timeout.
func (c *Client) call(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	return fn(ctx)
}

func fromPipeline(p *gl.Pipeline) Pipeline {
	out := Pipeline{ID: p.ID, ProjectID: p.ProjectID, Status: p.Status, WebURL: p.WebURL, Ref: p.Ref,
		Name: p.Name, Source: string(p.Source)}
	if p.CreatedAt != nil {
		out.CreatedAt = *p.CreatedAt
	}
	return out
}

func fromInfo(p *gl.PipelineInfo) Pipeline {
	out := Pipeline{ID: p.ID, ProjectID: p.ProjectID, Status: p.Status, WebURL: p.WebURL, Ref: p.Ref,
		Name: p.Name, Source: p.Source}
	if p.CreatedAt != nil {
		out.CreatedAt = *p.CreatedAt
	}
	return out
}

// Terminal reports whether a pipeline status is final.
func Terminal(status string) bool {
	switch status {
	case "success", "failed", "canceled", "skipped":
		return true
	}
	return false
}

// statusOf digs the HTTP status out of a client-go error. client-go turns a
// 404 into the bare sentinel gl.ErrNotFound, without the response.
func statusOf(err error) (int, *http.Response) {
	if errors.Is(err, gl.ErrNotFound) {
		return http.StatusNotFound, nil
	}
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode, er.Response
	}
	return 0, nil
}

// IsPermanent reports whether retrying err cannot help: a 4xx other than
// 408 and 429 (bad request, bad token, missing project or pipeline).
func IsPermanent(err error) bool {
	code, _ := statusOf(err)
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// IsNotFound reports whether GitLab answered err with 404: the project, or
// the pipeline in that project, does not exist or is not visible to
// paved's token. A pipeline read from another project than its own is
// therefore "not found", never someone else's pipeline.
func IsNotFound(err error) bool {
	code, _ := statusOf(err)
	return code == http.StatusNotFound
}

// RetryAfter extracts how long GitLab asked paved to wait after a 429, from
// Retry-After (seconds) or else RateLimit-Reset (Unix seconds).
func RetryAfter(err error) (time.Duration, bool) {
	code, resp := statusOf(err)
	if code != http.StatusTooManyRequests || resp == nil {
		return 0, false
	}
	return ratecap.RetryAfter(resp.Header)
}

var _ retryablehttp.CheckRetry = noRetry
var _ retryablehttp.Backoff = backoff
