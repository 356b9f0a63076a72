package portsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
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
	inputs := cloneMap(run.inv.Inputs)
	var entity *Entity
	if inv.Entity != nil {
		e := cloneEntity(*inv.Entity)
		entity = &e
	}
	s.mu.Unlock()

	// Port's default body for a self-service action, as documented for the execution agent
	// ("the incoming message"). payload.action carries only invocationMethod and trigger in
	// the current docs; the action identifier is the top-level "action".
	uid := s.userID(inv.User.Email)
	var ctxEntity, payloadEntity any // JSON null for CREATE
	if entity != nil {
		if entity.CreatedAt.IsZero() {
			entity.CreatedAt, entity.CreatedBy = created, uid
		}
		if entity.UpdatedAt.IsZero() {
			entity.UpdatedAt, entity.UpdatedBy = entity.CreatedAt, entity.CreatedBy
		}
		view := entityView(*entity)
		view["icon"] = entity.Icon // always present in the documented payload entity
		ctxEntity, payloadEntity = entity.Identifier, view
	}
	b := map[string]any{
		"action": inv.Action, "resourceType": "run", "status": "TRIGGERED",
		"trigger": map[string]any{
			"by": map[string]any{"orgId": s.cfg.OrgID, "userId": uid, "user": map[string]any{
				"email": inv.User.Email, "firstName": inv.User.FirstName, "lastName": inv.User.LastName,
				"providers": []string{"port"}, "status": "ACTIVE", "id": uid,
				"createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z",
			}},
			"origin": "UI", "at": stamp(created),
		},
		"context": map[string]any{"entity": ctxEntity, "blueprint": inv.Blueprint, "runId": runID},
		"payload": map[string]any{
			"entity": payloadEntity,
			"action": map[string]any{
				"invocationMethod": map[string]any{"type": "WEBHOOK", "agent": false, "synchronized": false, "method": http.MethodPost, "url": url},
				"trigger":          inv.Operation, // CREATE, DAY-2 or DELETE
			},
			"properties": inputs, "censoredProperties": []string{},
		},
	}

	// Compact JSON without HTML escaping, like JSON.stringify: Port's own verification sample
	// re-signs JSON.stringify(body), which only matches such bytes.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, fmt.Errorf("portsim: encode webhook body: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
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
	mac := hmac.New(sha256.New, []byte(s.cfg.ClientSecret))
	mac.Write([]byte(t + "."))
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Port-Timestamp", t)
	req.Header.Set("X-Port-Signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
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
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)) // drain to reuse the connection
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
