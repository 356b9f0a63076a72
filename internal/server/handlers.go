package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/clip"
	"github.com/paved-idp/paved/internal/expiry"
	"github.com/paved-idp/paved/internal/gate"
	"github.com/paved-idp/paved/internal/gitlab/pipelinehook"
	"github.com/paved-idp/paved/internal/intake"
	"github.com/paved-idp/paved/internal/logstream"
	"github.com/paved-idp/paved/internal/portal/port"
	"github.com/paved-idp/paved/internal/portal/port/webhook"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/server/router"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/track"
)

// runAnswer is the answer to a submission: the run and, if refused, why.
type runAnswer struct {
	RunID   string    `json:"runId"`
	State   run.State `json:"state"`
	Reasons []string  `json:"reasons,omitempty"`
	// Duplicate is true when the delivery repeated one already recorded.
	Duplicate bool `json:"duplicate,omitempty"`
}

func answerOf(r *run.Run, created bool) runAnswer {
	return runAnswer{RunID: r.ID, State: r.State, Reasons: r.Reasons, Duplicate: !created}
}

// portWebhook takes Port's WEBHOOK invocation. Port actions are
// asynchronous: the answer is 202 as soon as the run is recorded, and the
// result goes back through Port's API. A refused run is recorded too (and
// reported to Port as FAILURE); the answer carries the same reasons.
func (s *Server) portWebhook(c *router.Exchange) {
	if s.cfg.PortVerifier == nil {
		c.Fail(http.StatusNotFound, "Port intake is not enabled")
		return
	}
	body, ok := c.ReadBody()
	if !ok {
		return
	}
	if err := s.cfg.PortVerifier.Verify(c.R.Header, body); err != nil {
		s.cfg.Metrics.AuthFailure("port_webhook", verifyReason(err))
		s.log.Warn("port webhook refused", zap.String("request_id", c.ID), zap.Error(err))
		c.Fail(http.StatusUnauthorized, err.Error())
		return
	}
	inv, err := webhook.Decode(body)
	if err != nil {
		c.Fail(http.StatusBadRequest, err.Error())
		return
	}
	if inv.Request.Action == gate.ApproveRunAction {
		s.portDecision(c, inv.Request)
		return
	}
	if inv.Request.Action == expiry.ExtendAction && s.cfg.Extender != nil {
		s.portExtend(c, inv.Request)
		return
	}
	r, created, err := s.intake.Submit(c.R.Context(), inv.Request)
	if s.submitError(c, "port", err) {
		return
	}
	c.JSON(http.StatusAccepted, answerOf(r, created))
}

func (s *Server) gitlabWebhook(c *router.Exchange) {
	body, ok := c.ReadBody()
	if !ok {
		return
	}
	ev, err := pipelinehook.Decode(c.R.Header, body, s.cfg.GitLabWebhookToken)
	switch {
	case errors.Is(err, pipelinehook.ErrUnauthorized):
		s.cfg.Metrics.AuthFailure("gitlab_webhook", "bad_token")
		c.Fail(http.StatusUnauthorized, "X-Gitlab-Token does not match")
		return
	case errors.Is(err, pipelinehook.ErrNotPipelineHook):
		// Other events may be enabled on the hook; they are not errors.
		c.JSON(http.StatusOK, map[string]any{"ignored": "not a pipeline event"})
		return
	case err != nil:
		c.Fail(http.StatusBadRequest, err.Error())
		return
	}
	out, err := s.tracker.HandleHook(c.R.Context(), ev)
	if err != nil {
		s.log.Error("apply pipeline hook", zap.Int64("pipeline", ev.PipelineID), zap.Error(err))
		c.Fail(http.StatusInternalServerError, "could not apply the event; GitLab may retry")
		return
	}
	if !out.Applied {
		// 200 all the same: GitLab disables hooks that keep failing, and a
		// hook paved has no use for is not GitLab's error.
		s.log.Info("pipeline hook ignored", zap.Int64("pipeline", ev.PipelineID), zap.Int64("project", ev.ProjectID), zap.String("why", out.What))
		c.JSON(http.StatusOK, map[string]any{"ignored": out.What})
		return
	}
	c.JSON(http.StatusOK, map[string]any{"applied": out.What})
}

// portDecision answers the approve-run action at once: Port invokes it as a
// synchronous webhook and marks its run by the answer (2xx SUCCESS, else
// FAILURE with the error), while the decided run's own Port log gets the
// decision through the usual reports.
func (s *Server) portDecision(c *router.Exchange, req run.Request) {
	r, err := s.intake.Decide(c.R.Context(), req)
	if errors.Is(err, gate.ErrBadDecision) {
		c.Fail(http.StatusBadRequest, err.Error())
		return
	}
	if s.runError(c, err) {
		return
	}
	c.JSON(http.StatusOK, map[string]any{"runId": r.ID, "state": r.State, "message": fmt.Sprintf("run %s is now %s", r.ID, r.State)})
}

// portExtend answers the extend-TTL action at once, as portDecision does:
// Port marks the action's run by the answer, whose message says the new
// expiry or exactly why not.
func (s *Server) portExtend(c *router.Exchange, req run.Request) {
	r, err := s.cfg.Extender.Extend(c.R.Context(), req)
	switch {
	case err == nil:
		c.JSON(http.StatusOK, map[string]any{"runId": r.ID, "stack": r.Stack.Key(), "expiresAt": r.ExpiresAt,
			"message": fmt.Sprintf("stack %s now expires at %s", r.Stack.Key(), r.ExpiresAt.Format(time.RFC3339))})
	case errors.Is(err, expiry.ErrBadExtension):
		c.Fail(http.StatusBadRequest, err.Error())
	case errors.Is(err, expiry.ErrNotEphemeral):
		c.Fail(http.StatusNotFound, err.Error())
	case errors.Is(err, expiry.ErrExpired):
		c.Fail(http.StatusConflict, err.Error())
	case errors.Is(err, expiry.ErrRefused):
		c.Fail(http.StatusForbidden, err.Error())
	default:
		s.log.Error("extend a stack's ttl", zap.String("request_id", c.ID), zap.Error(err))
		c.Fail(http.StatusInternalServerError, "internal error; request id "+c.ID)
	}
}

// verifyReason names why Port's signature was refused, for the metrics.
func verifyReason(err error) string {
	switch {
	case errors.Is(err, webhook.ErrMissingSignature):
		return "missing"
	case errors.Is(err, webhook.ErrStaleTimestamp):
		return "stale_timestamp"
	default:
		return "bad_signature"
	}
}

// apiRunRequest is a submission through paved's own API (Backstage, CLI).
type apiRunRequest struct {
	// IdempotencyKey makes retries safe: the same key returns the same run.
	IdempotencyKey string         `json:"idempotencyKey"`
	Portal         string         `json:"portal"` // default "api"; Backstage sends "backstage"
	Action         string         `json:"action"`
	User           run.User       `json:"user"`
	Entity         run.Entity     `json:"entity"`
	Inputs         map[string]any `json:"inputs"`
}

func (s *Server) createRun(c *router.Exchange, client *APIClient) {
	body, ok := c.ReadBody()
	if !ok {
		return
	}
	var req apiRunRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		c.Fail(http.StatusBadRequest, "body is not a run request: "+err.Error())
		return
	}
	if h := c.R.Header.Get("Idempotency-Key"); h != "" {
		if req.IdempotencyKey != "" && req.IdempotencyKey != h {
			c.Fail(http.StatusBadRequest, "the Idempotency-Key header and the body's idempotencyKey differ; send one")
			return
		}
		req.IdempotencyKey = h
	}
	var missing []string
	if req.IdempotencyKey == "" {
		missing = append(missing, "idempotencyKey (or the Idempotency-Key header)")
	}
	if req.Action == "" {
		missing = append(missing, "action")
	}
	if req.User.Email == "" {
		missing = append(missing, "user.email")
	}
	if len(missing) > 0 {
		c.Fail(http.StatusBadRequest, "missing: "+strings.Join(missing, ", "))
		return
	}
	if req.Portal == "" {
		req.Portal = "api"
	}
	if req.Portal == port.PortalName {
		c.Fail(http.StatusBadRequest, `portal "port" runs arrive through /webhooks/port`)
		return
	}
	if len(req.IdempotencyKey) > 255 {
		c.Fail(http.StatusBadRequest, "the idempotency key is longer than 255 characters")
		return
	}
	if strings.Contains(client.Name, "@") && !strings.EqualFold(req.User.Email, client.Name) {
		c.Fail(http.StatusForbidden, fmt.Sprintf("API client %q submits only as itself, not as %q", client.Name, clip.String(req.User.Email, 128)))
		return
	}
	if len(client.Actions) > 0 && !slices.Contains(client.Actions, req.Action) {
		c.Fail(http.StatusForbidden, fmt.Sprintf("API client %q may not run action %q; it may run: %s", client.Name, clip.String(req.Action, 128), strings.Join(client.Actions, ", ")))
		return
	}
	req.User.Teams = groupNames(req.User.Teams)
	req.Entity.Team = groupNames(req.Entity.Team)
	r, created, err := s.intake.Submit(c.R.Context(), run.Request{
		Portal: req.Portal, PortalRunID: req.IdempotencyKey, Action: req.Action, Caller: client.Name, User: req.User, Entity: req.Entity, Inputs: req.Inputs,
	})
	if s.submitError(c, "api", err) {
		return
	}
	code := http.StatusCreated
	switch {
	case r.State == run.Rejected:
		code = http.StatusUnprocessableEntity
	case !created:
		code = http.StatusOK
	}
	c.JSON(code, answerOf(r, created))
}

// groupNames turns Backstage group entity refs ("group:default/payments")
// into the team identifiers policy compares ("payments"), as Port's team
// identifiers are; other names pass as they are.
func groupNames(teams []string) []string {
	out := make([]string, 0, len(teams))
	for _, t := range teams {
		if kind, rest, ok := strings.Cut(t, ":"); ok && strings.EqualFold(kind, "group") {
			t = rest
			if ns, name, ok := strings.Cut(rest, "/"); ok && ns == "default" {
				t = name
			}
		}
		out = append(out, t)
	}
	return out
}

// runLogs streams a run's log as server-sent events (logstream), for
// Backstage's paved:run step: resumable with Last-Event-ID, ended with an
// "end" event carrying the run's final state.
func (s *Server) runLogs(c *router.Exchange, _ *APIClient) {
	r, err := s.runs.Run(c.R.Context(), c.Param("id"))
	if s.runError(c, err) {
		return
	}
	after, err := logstream.ResumeAt(c.R)
	if err != nil {
		c.Fail(http.StatusBadRequest, err.Error())
		return
	}
	logstream.Serve(c.W, c.R, s.runs, r.ID, after, logstream.Options{Done: s.cfg.StreamsDone, Log: s.log})
}

// submitError answers for a failed submission; it returns false on no
// error. A reused idempotency key is the caller's conflict (409); anything
// else is paved's failure.
func (s *Server) submitError(c *router.Exchange, portal string, err error) bool {
	var conflict *intake.ConflictError
	switch {
	case err == nil:
		return false
	case errors.As(err, &conflict):
		c.Fail(http.StatusConflict, conflict.Error())
	default:
		s.log.Error("submit "+portal+" run", zap.String("request_id", c.ID), zap.Error(err))
		c.Fail(http.StatusInternalServerError, "could not record the run; request id "+c.ID)
	}
	return true
}

// runView is a run as the API shows it.
type runView struct {
	*run.Run
	Events []run.Event `json:"events"`
}

func (s *Server) getRun(c *router.Exchange, _ *APIClient) {
	r, err := s.runs.Run(c.R.Context(), c.Param("id"))
	if s.runError(c, err) {
		return
	}
	evs, err := s.runs.Events(c.R.Context(), r.ID)
	if s.runError(c, err) {
		return
	}
	c.JSON(http.StatusOK, runView{Run: r, Events: evs})
}

func (s *Server) listRuns(c *router.Exchange, _ *APIClient) {
	q := store.Query{Limit: 100}
	if v := c.R.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			c.Fail(http.StatusBadRequest, "limit must be a number from 1 to 1000")
			return
		}
		q.Limit = n
	}
	for _, st := range c.R.URL.Query()["state"] {
		q.States = append(q.States, run.State(st))
	}
	runs, err := s.runs.ListRuns(c.R.Context(), q)
	if s.runError(c, err) {
		return
	}
	if runs == nil {
		runs = []*run.Run{}
	}
	c.JSON(http.StatusOK, map[string]any{"runs": runs})
}

// decision is a person's call on a run. Approvals name the approver with
// their teams (the caller, e.g. Backstage, vouches for them as it does for
// a submission's user); "by" alone is an approver without teams.
type decision struct {
	By       string `json:"by"`
	Approver *struct {
		Email string   `json:"email"`
		Teams []string `json:"teams"`
	} `json:"approver"`
	Reason string `json:"reason"`
}

func (d decision) approver() run.Approver {
	if d.Approver != nil && d.Approver.Email != "" {
		return run.Approver{ID: d.Approver.Email, Teams: groupNames(d.Approver.Teams)}
	}
	return run.Approver{ID: d.By}
}

// approverOf is who decides through client. A person's own client (named
// by their email) is that person and nobody else, without teams it cannot
// prove; a trusted backend (Backstage) names the approver, who must be an
// email (email: approvals; a cancel may name a system): operator:<name>
// identities come only from the operator page. A non-zero code refuses,
// with msg ("" for the usage).
func approverOf(client *APIClient, d decision, email bool) (by run.Approver, code int, msg string) {
	named := d.approver()
	if strings.Contains(client.Name, "@") {
		if named.ID != "" && !strings.EqualFold(named.ID, client.Name) {
			return by, http.StatusForbidden, fmt.Sprintf("API client %q acts only as itself, not as %q", client.Name, clip.String(named.ID, 128))
		}
		return run.Approver{ID: client.Name}, 0, ""
	}
	switch {
	case named.ID == "":
		return by, http.StatusBadRequest, ""
	case strings.HasPrefix(named.ID, "operator:") || (email && !strings.Contains(named.ID, "@")):
		return by, http.StatusBadRequest, fmt.Sprintf("the approver must be a person's email, not %q (operator:<name> is the operator page's)", clip.String(named.ID, 128))
	}
	return named, 0, ""
}

const approverUsage = `body must be {"approver": {"email": "...", "teams": ["..."]}, "reason": "..."} (or {"by": "<email>"})`

func (s *Server) approve(c *router.Exchange, client *APIClient) {
	s.control(c, client, approverUsage, true, s.intake.Approve)
}

func (s *Server) deny(c *router.Exchange, client *APIClient) {
	s.control(c, client, approverUsage, true, s.intake.Deny)
}

func (s *Server) cancel(c *router.Exchange, client *APIClient) {
	s.control(c, client, `body must be {"by": "<who cancels>"}`, false, func(ctx context.Context, id string, by run.Approver, _ string) (*run.Run, error) {
		return s.intake.Cancel(ctx, id, by.ID)
	})
}

// control runs a person's decision on a run (approve, deny, cancel).
func (s *Server) control(c *router.Exchange, client *APIClient, usage string, email bool, act func(ctx context.Context, id string, by run.Approver, reason string) (*run.Run, error)) {
	// A client limited to some actions submits them, and decides nothing:
	// an approval names its approver on the client's word.
	if len(client.Actions) > 0 {
		c.Fail(http.StatusForbidden, fmt.Sprintf("API client %q may only submit runs of %s; it may not approve, deny or cancel", client.Name, strings.Join(client.Actions, ", ")))
		return
	}
	var d decision
	if !bindJSON(c, &d, usage) {
		return
	}
	by, code, msg := approverOf(client, d, email)
	if code != 0 {
		if msg == "" {
			msg = usage
		}
		c.Fail(code, msg)
		return
	}
	r, err := act(c.R.Context(), c.Param("id"), by, d.Reason)
	if s.runError(c, err) {
		return
	}
	c.JSON(http.StatusOK, answerOf(r, true))
}

func (s *Server) pipelineLogs(c *router.Exchange) {
	var body struct {
		Lines []string `json:"lines"`
	}
	if !bindJSON(c, &body, `body must be {"lines": ["..."]}`) {
		return
	}
	if len(body.Lines) == 0 {
		c.Fail(http.StatusBadRequest, `body must be {"lines": ["..."]}`)
		return
	}
	if s.runError(c, s.tracker.AppendLogs(c.R.Context(), c.Param("id"), body.Lines)) {
		return
	}
	c.JSON(http.StatusAccepted, map[string]any{"accepted": len(body.Lines)})
}

func (s *Server) pipelineOutputs(c *router.Exchange) {
	var body struct {
		Outputs map[string]any `json:"outputs"`
	}
	if !bindJSON(c, &body, `body must be {"outputs": {...}}`) {
		return
	}
	if body.Outputs == nil {
		c.Fail(http.StatusBadRequest, `body must be {"outputs": {...}}`)
		return
	}
	if s.runError(c, s.tracker.RecordOutputs(c.R.Context(), c.Param("id"), body.Outputs)) {
		return
	}
	c.JSON(http.StatusOK, map[string]any{"recorded": len(body.Outputs)})
}

func (s *Server) pipelinePreview(c *router.Exchange) {
	const usage = `body must be {"resources": [{"op": "create|update|replace|delete", "type": "...", "name": "..."}], "digest": "sha256:...", "destroy": false, "cost": {"monthly": 0, "before": 0, "delta": 0, "currency": "USD", "prices": "...", "unpriced": []} (optional)}, as paved preview posts it`
	var body struct {
		Resources []run.PreviewResource `json:"resources"`
		Digest    string                `json:"digest"`
		Destroy   bool                  `json:"destroy"`
		Cost      *run.Cost             `json:"cost"`
	}
	if !bindJSON(c, &body, usage) {
		return
	}
	r, err := s.intake.Preview(c.R.Context(), c.Param("id"), run.Preview{Resources: body.Resources, Digest: body.Digest, Destroy: body.Destroy, Cost: body.Cost})
	switch {
	case errors.Is(err, gate.ErrBadPreview):
		c.Fail(http.StatusBadRequest, err.Error()+"; "+usage)
		return
	case errors.Is(err, gate.ErrNotYet):
		// The trigger's answer is still being recorded: the job retries.
		c.W.Header().Set("Retry-After", "1")
		c.Fail(http.StatusServiceUnavailable, err.Error())
		return
	case s.runError(c, err):
		return
	}
	c.JSON(http.StatusOK, map[string]any{"verdict": r.Preview.Verdict, "summary": r.Preview.Label(), "reasons": r.Preview.Reasons})
}

// runError answers for a failed run operation; it returns false on no error.
func (s *Server) runError(c *router.Exchange, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, run.ErrNotFound):
		c.Fail(http.StatusNotFound, "no run "+c.Param("id"))
	case errors.Is(err, gate.ErrNotApprover):
		c.Fail(http.StatusForbidden, err.Error())
	case errors.Is(err, run.ErrIllegalTransition), errors.Is(err, track.ErrFinished):
		c.Fail(http.StatusConflict, err.Error())
	case errors.Is(err, track.ErrTooMany), errors.Is(err, track.ErrTooLarge):
		c.Fail(http.StatusRequestEntityTooLarge, err.Error())
	default:
		s.log.Error("run operation", zap.String("request_id", c.ID), zap.Error(err))
		c.Fail(http.StatusInternalServerError, "internal error; request id "+c.ID)
	}
	return true
}

// bindJSON decodes a JSON body; on failure it has answered: 413 for a body
// over the limit, 400 with usage otherwise.
func bindJSON(c *router.Exchange, v any, usage string) bool {
	body, ok := c.ReadBody()
	if !ok {
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		c.Fail(http.StatusBadRequest, usage)
		return false
	}
	return true
}
