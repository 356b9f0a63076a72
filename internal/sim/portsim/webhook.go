package portsim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/paved-idp/paved/internal/sim/portsim/internal/model"
	"github.com/paved-idp/paved/internal/sim/portsim/internal/wire"
)

// WebhookBody returns the exact bytes Trigger sends for a run created by CreateRun, with url
// as the action's invocationMethod.url. Tests use it with SignedRequest to send tampered or
// stale copies of a genuine body.
func (s *Sim) WebhookBody(runID, url string) ([]byte, error) {
	s.mu.Lock()
	run := s.runs[runID]
	if run == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("portsim: no run %q", runID)
	}
	inv, created := run.inv, run.CreatedAt
	inputs := model.CloneMap(run.inv.Inputs)
	var entity *Entity
	if inv.Entity != nil {
		e := model.CloneEntity(*inv.Entity)
		entity = &e
	}
	s.mu.Unlock()

	return wire.WebhookBody(runID, url, s.cfg.OrgID, s.userID(inv.User.Email), inv, entity, inputs, created)
}

// SignedRequest builds the POST Port sends to a webhook backend: body as given, with
// X-Port-Timestamp (Unix seconds of ts) and X-Port-Signature "v1,<base64 HMAC-SHA256 of
// '<timestamp>.<body>' keyed with the client secret>".
func (s *Sim) SignedRequest(ctx context.Context, url string, body []byte, ts time.Time) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("portsim: build webhook request: %w", err)
	}
	t := strconv.FormatInt(ts.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Port-Timestamp", t)
	req.Header.Set("X-Port-Signature", wire.Sign([]byte(s.cfg.ClientSecret), t, body))
	return req, nil
}

// Trigger executes an action as a Port user would: it creates the run, POSTs Port's default
// webhook body, signed at the current time, to url, and returns the run id and the HTTP
// status the backend answered. A delivery error is returned with the run id (the run exists
// in Port even when delivery fails) and recorded as a "webhook" event with status 0.
func (s *Sim) Trigger(ctx context.Context, url string, inv Invocation) (runID string, status int, err error) {
	runID, err = s.CreateRun(inv)
	if err != nil {
		return "", 0, err
	}
	body, err := s.WebhookBody(runID, url)
	if err != nil {
		return runID, 0, err
	}
	req, err := s.SignedRequest(ctx, url, body, s.now())
	if err != nil {
		return runID, 0, err
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		s.recordEvent(runID, "webhook", 0, err.Error())
		return runID, 0, fmt.Errorf("portsim: deliver run %s to %s: %w", runID, url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, wire.MaxBody)) // drain to reuse the connection
	_ = resp.Body.Close()
	s.recordEvent(runID, "webhook", resp.StatusCode, string(body))
	return runID, resp.StatusCode, nil
}

func (s *Sim) recordEvent(runID, kind string, status int, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.runs[runID]; r != nil {
		s.addEvent(r, kind, status, detail)
	}
}
