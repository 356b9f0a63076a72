// Package wire holds the wire formats of the Port simulator (package portsim): Port's error
// answers, strict request decoding, the views its API answers with, and its field conventions.
package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/paved-idp/paved/internal/sim/portsim/internal/model"
)

// IdentifierPattern is the entity identifier pattern from Port's "Create an entity" reference.
var IdentifierPattern = regexp.MustCompile(`^[A-Za-z0-9@_.:\/=-]+$`)

// MaxBody is Port's documented request size limit ("limit is 1MiB", answered 413).
const MaxBody = 1 << 20

// RunView is a run as Port's API answers it (the documented v2 shape); by is the Port user id
// of the run's invoker. Callers hold the simulator's lock.
func RunView(run *model.RunRecord, by string) map[string]any {
	v := map[string]any{
		"id": run.ID, "status": run.Status, "statusLabel": nil, "link": append([]string{}, run.Links...),
		"summary": run.Summary, "properties": model.CloneMap(run.Inputs), "source": "UI",
		"requiredApproval": false, "endedAt": nil,
		"blueprint": map[string]any{"identifier": run.Blueprint},
		"action":    map[string]any{"identifier": run.Action},
		"createdAt": Stamp(run.CreatedAt), "updatedAt": Stamp(run.CreatedAt),
		"createdBy": by, "updatedBy": by,
	}
	if run.StatusLabel != "" {
		v["statusLabel"] = run.StatusLabel
	}
	if run.ExternalRunID != "" {
		v["externalRunId"] = run.ExternalRunID
	}
	if run.Entity != "" {
		v["entity"] = map[string]any{"identifier": run.Entity}
	}
	if !run.EndedAt.IsZero() {
		v["endedAt"], v["updatedAt"] = Stamp(run.EndedAt), Stamp(run.EndedAt)
	}
	return v
}

// EntityView is an entity as Port's API answers it.
func EntityView(e model.Entity) map[string]any {
	v := map[string]any{
		"identifier": e.Identifier, "title": e.Title, "blueprint": e.Blueprint, "team": e.Team,
		"properties": e.Properties, "relations": e.Relations,
		"createdAt": Stamp(e.CreatedAt), "createdBy": e.CreatedBy,
		"updatedAt": Stamp(e.UpdatedAt), "updatedBy": e.UpdatedBy,
	}
	if e.Icon != "" {
		v["icon"] = e.Icon
	}
	return v
}

// Stamp formats times as Port does: UTC with milliseconds, e.g. 2023-11-13T15:20:16.641Z.
func Stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// StringOrList decodes Port's "string or array of strings" fields; absent or null is nil.
func StringOrList(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, true
	}
	var list []string
	return list, json.Unmarshal(raw, &list) == nil
}

// Deref is *p, or "" for nil.
func Deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// ReadBody reads the whole request body, answering 413 past Port's 1 MiB limit.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	raw, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		WriteErr(w, http.StatusRequestEntityTooLarge, "request_too_large", "Request body is too large (limit is 1MiB)")
		return nil, false
	case err != nil:
		WriteErr(w, http.StatusBadRequest, "bad_request", "cannot read body: "+err.Error())
		return nil, false
	}
	return raw, true
}

// DecodeBytes decodes a JSON object strictly: Port's schemas set additionalProperties false.
func DecodeBytes(w http.ResponseWriter, raw []byte, v any, status int, code string) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		WriteErr(w, status, code, "The json provided does not match the route's schema: "+err.Error())
		return false
	}
	return true
}

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do about it
}

// WriteErr answers Port's error shape {"ok":false,"error":"<code>","message":"..."}.
func WriteErr(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, map[string]any{"ok": false, "error": code, "message": msg})
}

// WebhookBody is the body Port sends for run runID of inv: Port's default body for a
// self-service action, with url as the action's invocationMethod.url, orgID and uid (the
// invoker's user id) in trigger.by, entity (nil for CREATE) and inputs as the payload and
// created as the trigger time.
func WebhookBody(runID, url, orgID, uid string, inv model.Invocation, entity *model.Entity, inputs map[string]any, created time.Time) ([]byte, error) {
	// Port's default body for a self-service action, as documented for the execution agent
	// ("the incoming message"). payload.action carries only invocationMethod and trigger in
	// the current docs; the action identifier is the top-level "action".
	var ctxEntity, payloadEntity any // JSON null for CREATE
	if entity != nil {
		if entity.CreatedAt.IsZero() {
			entity.CreatedAt, entity.CreatedBy = created, uid
		}
		if entity.UpdatedAt.IsZero() {
			entity.UpdatedAt, entity.UpdatedBy = entity.CreatedAt, entity.CreatedBy
		}
		view := EntityView(*entity)
		view["icon"] = entity.Icon // always present in the documented payload entity
		ctxEntity, payloadEntity = entity.Identifier, view
	}
	b := map[string]any{
		"action": inv.Action, "resourceType": "run", "status": "TRIGGERED",
		"trigger": map[string]any{
			"by": map[string]any{"orgId": orgID, "userId": uid, "user": map[string]any{
				"email": inv.User.Email, "firstName": inv.User.FirstName, "lastName": inv.User.LastName,
				"providers": []string{"port"}, "status": "ACTIVE", "id": uid,
				"createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z",
			}},
			"origin": "UI", "at": Stamp(created),
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

// Sign is the X-Port-Signature of body sent at timestamp t (Unix seconds): "v1,<base64
// HMAC-SHA256 of '<t>.<body>' keyed with secret>".
func Sign(secret []byte, t string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(t + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// UserView is user u, with id, email and the organisation orgID, as
// GET /v1/users/{user_email} answers it. Port's API reference documents
// {email, firstName, lastName, picture, status, id, type, providers,
// createdAt, updatedAt, orgs[{id}], teams: [string], roles[{name}],
// teamsIdentifiers: [string]}; teams holds the team names and
// teamsIdentifiers their identifiers. picture and type are left out: the
// simulator has no value for them. Roles default to Member.
func UserView(id, email, orgID string, u model.User) map[string]any {
	roles := u.Roles
	if len(roles) == 0 {
		roles = []string{"Member"}
	}
	named := []map[string]any{}
	for _, n := range roles {
		named = append(named, map[string]any{"name": n})
	}
	ids := u.TeamIdentifiers
	if ids == nil {
		ids = u.Teams
	}
	return map[string]any{
		"id": id, "email": email, "firstName": u.FirstName, "lastName": u.LastName,
		"status": "ACTIVE", "providers": []string{"port"}, "orgs": []map[string]any{{"id": orgID}},
		"teams": append([]string{}, u.Teams...), "teamsIdentifiers": append([]string{}, ids...), "roles": named,
		"createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z",
	}
}

// RunFinished answers Port's refusal to modify a finished run. Port documents that after a
// terminationStatus "the run can no longer be modified" and that entity calls with the run_id
// of a finished run fail with 400 run_exhausted; docs silent on the exact answer to a second
// terminal PATCH or log, so the simulator uses the same documented 400 run_exhausted for all.
func RunFinished(w http.ResponseWriter, id, status string) {
	WriteErr(w, http.StatusBadRequest, "run_exhausted",
		fmt.Sprintf("The action run %s has already finished execution with status %s and can no longer be modified", id, status))
}
