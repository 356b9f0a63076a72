package portsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// identifierPattern is the entity identifier pattern from Port's "Create an entity" reference.
var identifierPattern = regexp.MustCompile(`^[A-Za-z0-9@_.:\/=-]+$`)

// maxBody is Port's documented request size limit ("limit is 1MiB", answered 413).
const maxBody = 1 << 20

// Handler returns Port's REST API: mount it on an httptest.Server and use the server's URL as
// the API base (as https://api.getport.io).
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/auth/access_token", s.accessToken)
	mux.Handle("GET /v1/actions/runs/{run_id}", s.authed(s.getRun))
	mux.Handle("PATCH /v1/actions/runs/{run_id}", s.authed(s.patchRun))
	mux.Handle("POST /v1/actions/runs/{run_id}/logs", s.authed(s.addLog))
	mux.Handle("POST /v1/blueprints/{blueprint}/entities", s.authed(s.upsertEntity))
	mux.Handle("GET /v1/users/{email}", s.authed(s.getUser))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "not_found", "route "+r.Method+" "+r.URL.Path+" is not simulated")
	})
	return s.middleware(mux)
}

type fault int

const (
	faultNone fault = iota
	faultRateLimited
	faultError
	faultLost
)

// middleware records every call, adds latency, counts the rate-limit window, sets Port's
// x-ratelimit-* headers on every answer and injects the configured faults.
func (s *Sim) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		start := s.now()
		defer func() { s.logCall(r, sw.status, start) }()
		d := s.cfg.Faults.Latency
		if s.slow() {
			d += s.cfg.Faults.SlowLatency
		}
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		f, remaining, reset := s.admit()
		h := sw.Header()
		h.Set("x-ratelimit-period", strconv.Itoa(int(s.cfg.RateLimitPeriod/time.Second)))
		h.Set("x-ratelimit-limit", strconv.Itoa(s.cfg.RateLimit))
		h.Set("x-ratelimit-remaining", strconv.Itoa(remaining))
		h.Set("x-ratelimit-reset", strconv.Itoa(reset))
		r.Body = http.MaxBytesReader(sw, r.Body, maxBody)
		switch f {
		case faultRateLimited:
			// docs silent on the 429 body; it follows Port's general error shape.
			writeErr(sw, http.StatusTooManyRequests, "rate_limit_exceeded",
				fmt.Sprintf("rate limit of %d requests per %s exceeded; retry in %d s", s.cfg.RateLimit, s.cfg.RateLimitPeriod, reset))
		case faultError:
			writeErr(sw, http.StatusInternalServerError, "internal_error", "An internal error occurred")
		case faultLost:
			next.ServeHTTP(&discardWriter{h: http.Header{}}, r)
			writeErr(sw, http.StatusBadGateway, "bad_gateway", "upstream answer lost (injected); the request was applied")
		default:
			next.ServeHTTP(sw, r)
		}
	})
}

// admit counts the request in the rate-limit window and draws its fault.
func (s *Sim) slow() bool {
	if s.cfg.Faults.SlowRate <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faultRand.Float64() < s.cfg.Faults.SlowRate
}

func (s *Sim) admit() (f fault, remaining, reset int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.window.IsZero() || !now.Before(s.window.Add(s.cfg.RateLimitPeriod)) {
		s.window, s.inWindow = now, 0
	}
	s.inWindow++
	reset = int(math.Ceil(s.window.Add(s.cfg.RateLimitPeriod).Sub(now).Seconds()))
	remaining = max(s.cfg.RateLimit-s.inWindow, 0)
	fz := s.cfg.Faults
	x := s.faultRand.Float64()
	switch {
	case s.inWindow > s.cfg.RateLimit || x < fz.RateLimitRate:
		return faultRateLimited, 0, reset
	case x < fz.RateLimitRate+fz.ErrorRate:
		return faultError, remaining, reset
	case x < fz.RateLimitRate+fz.ErrorRate+fz.LostResponseRate:
		return faultLost, remaining, reset
	}
	return faultNone, remaining, reset
}

func (s *Sim) logCall(r *http.Request, status int, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.calls = append(s.calls, Call{Seq: s.seq, Method: r.Method, Path: r.URL.RequestURI(), Status: status, At: at})
}

// authed requires the current, unexpired access token. Port keeps one active token per
// credentials, so that is all the simulator keeps too.
func (s *Sim) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		valid := ok && tok != "" && tok == s.token && s.now().Before(s.tokenUntil)
		s.mu.Unlock()
		if !valid {
			writeErr(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required: the token is missing, unknown or expired")
			return
		}
		h(w, r)
	})
}

// accessToken is POST /v1/auth/access_token: {clientId, clientSecret} ->
// {ok, accessToken, expiresIn (seconds), tokenType}. While a token is active Port answers
// the same token again ("active token reuse"), with the seconds it has left.
func (s *Sim) accessToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID     *string `json:"clientId"`
		ClientSecret *string `json:"clientSecret"`
	}
	raw, ok := readBody(w, r)
	if !ok || !decodeBytes(w, raw, &req, http.StatusUnprocessableEntity, "invalid_request") {
		return
	}
	if req.ClientID == nil || req.ClientSecret == nil {
		writeErr(w, http.StatusUnprocessableEntity, "invalid_request", "body must have clientId and clientSecret")
		return
	}
	if *req.ClientID != s.cfg.ClientID || *req.ClientSecret != s.cfg.ClientSecret {
		writeErr(w, http.StatusUnauthorized, "unauthorized", "the provided clientId and clientSecret are invalid")
		return
	}
	s.mu.Lock()
	now := s.now()
	if s.token == "" || !now.Before(s.tokenUntil) {
		s.token, s.tokenUntil = s.nextID("portsim_", 40), now.Add(s.cfg.TokenTTL)
	}
	tok, left := s.token, int(s.tokenUntil.Sub(now)/time.Second)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "accessToken": tok, "expiresIn": left, "tokenType": "Bearer"})
}

// lookupRun finds the run named in the path and records the call as an event on it, or
// answers 404. On success it returns with s.mu held; the caller unlocks.
func (s *Sim) lookupRun(w http.ResponseWriter, r *http.Request) *runState {
	s.mu.Lock()
	run := s.runs[r.PathValue("run_id")]
	if run == nil {
		s.mu.Unlock()
		writeErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("Action run with identifier %q was not found", r.PathValue("run_id")))
		return nil
	}
	return run
}

// getRun is GET /v1/actions/runs/{run_id} -> {ok, run}.
func (s *Sim) getRun(w http.ResponseWriter, r *http.Request) {
	run := s.lookupRun(w, r)
	if run == nil {
		return
	}
	s.addEvent(run, "get", http.StatusOK, "")
	view := s.runView(run)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "run": view})
}

// runFinished answers Port's refusal to modify a finished run. Port documents that after a
// terminationStatus "the run can no longer be modified" and that entity calls with the run_id
// of a finished run fail with 400 run_exhausted; docs silent on the exact answer to a second
// terminal PATCH or log, so the simulator uses the same documented 400 run_exhausted for all.
func runFinished(w http.ResponseWriter, run *runState) {
	writeErr(w, http.StatusBadRequest, "run_exhausted",
		fmt.Sprintf("The action run %s has already finished execution with status %s and can no longer be modified", run.ID, run.Status))
}

// patchRun is PATCH /v1/actions/runs/{run_id} with {status, statusLabel, link (string or
// array of strings), summary, externalRunId}; the schema forbids other fields (422).
func (s *Sim) patchRun(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Status        *string         `json:"status"`
		StatusLabel   *string         `json:"statusLabel"`
		Link          json.RawMessage `json:"link"`
		Message       json.RawMessage `json:"message"` // deprecated in Port's schema, still accepted
		Summary       *string         `json:"summary"`
		ExternalRunID *string         `json:"externalRunId"`
	}
	raw, ok := readBody(w, r)
	if !ok || !decodeBytes(w, raw, &req, http.StatusUnprocessableEntity, "invalid_request") {
		return
	}
	if req.Status != nil && *req.Status != StatusSuccess && *req.Status != StatusFailure {
		writeErr(w, http.StatusUnprocessableEntity, "invalid_request", "status must be SUCCESS or FAILURE")
		return
	}
	links, ok := stringOrList(req.Link)
	if !ok {
		writeErr(w, http.StatusUnprocessableEntity, "invalid_request", "link must be a string or an array of strings")
		return
	}
	run := s.lookupRun(w, r)
	if run == nil {
		return
	}
	defer s.mu.Unlock()
	if req.Status != nil {
		run.TerminalAttempts++
	}
	if run.Status != StatusInProgress {
		s.addEvent(run, "patch", http.StatusBadRequest, string(raw))
		runFinished(w, run)
		return
	}
	if req.StatusLabel != nil {
		run.StatusLabel = *req.StatusLabel
	}
	if len(req.Link) > 0 {
		run.Links = links // Port: every PATCH overrides the previous value of a key
	}
	if req.Summary != nil {
		run.Summary = *req.Summary
	}
	if req.ExternalRunID != nil {
		run.ExternalRunID = *req.ExternalRunID
	}
	if req.Status != nil {
		run.Status, run.EndedAt = *req.Status, s.now()
	}
	s.addEvent(run, "patch", http.StatusOK, string(raw))
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "run": s.runView(run)})
}

// addLog is POST /v1/actions/runs/{run_id}/logs with {message (required), terminationStatus,
// statusLabel} -> 201 {ok, runLog}. A terminationStatus ends the run.
func (s *Sim) addLog(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Message           *string `json:"message"`
		TerminationStatus *string `json:"terminationStatus"`
		StatusLabel       *string `json:"statusLabel"`
	}
	raw, ok := readBody(w, r)
	if !ok || !decodeBytes(w, raw, &req, http.StatusUnprocessableEntity, "invalid_request") {
		return
	}
	if req.Message == nil {
		writeErr(w, http.StatusUnprocessableEntity, "invalid_request", "body must have required property 'message'")
		return
	}
	if t := req.TerminationStatus; t != nil && *t != StatusSuccess && *t != StatusFailure {
		writeErr(w, http.StatusUnprocessableEntity, "invalid_request", "terminationStatus must be SUCCESS or FAILURE")
		return
	}
	run := s.lookupRun(w, r)
	if run == nil {
		return
	}
	defer s.mu.Unlock()
	if req.TerminationStatus != nil {
		run.TerminalAttempts++
	}
	if run.Status != StatusInProgress {
		s.addEvent(run, "log", http.StatusBadRequest, string(raw))
		runFinished(w, run)
		return
	}
	now := s.now()
	line := LogLine{Message: *req.Message, At: now}
	if req.StatusLabel != nil {
		line.StatusLabel, run.StatusLabel = *req.StatusLabel, *req.StatusLabel
	}
	if req.TerminationStatus != nil {
		line.TerminationStatus = *req.TerminationStatus
		run.Status, run.EndedAt = *req.TerminationStatus, now
	}
	run.Logs = append(run.Logs, line)
	s.addEvent(run, "log", http.StatusCreated, string(raw))
	writeJSON(w, http.StatusCreated, map[string]any{"ok": true, "runLog": map[string]any{
		"id": s.nextID("log_", 16), "runId": run.ID, "message": line.Message,
		"createdBy": s.userID(run.UserEmail), "createdAt": stamp(now),
	}})
}

// upsertEntity is POST /v1/blueprints/{blueprint}/entities?upsert=&merge=&run_id=.
// Without upsert an existing identifier is 409 identifier_taken; upsert alone replaces the
// entity; upsert with merge updates only the given fields, properties and relations key by key.
func (s *Sim) upsertEntity(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Identifier *string         `json:"identifier"`
		Title      *string         `json:"title"`
		Icon       *string         `json:"icon"`
		Team       json.RawMessage `json:"team"`
		Properties map[string]any  `json:"properties"`
		Relations  map[string]any  `json:"relations"`
	}
	raw, ok := readBody(w, r)
	if !ok || !decodeBytes(w, raw, &req, http.StatusBadRequest, "bad_request") {
		return
	}
	team, ok := stringOrList(req.Team)
	if !ok {
		writeErr(w, http.StatusBadRequest, "bad_request", "team must be a string or an array of strings")
		return
	}
	if req.Identifier != nil && !identifierPattern.MatchString(*req.Identifier) {
		writeErr(w, http.StatusBadRequest, "bad_request",
			fmt.Sprintf("identifier %q must match pattern %s", *req.Identifier, identifierPattern))
		return
	}
	q := r.URL.Query()
	upsert, merge, runID := q.Get("upsert") == "true", q.Get("merge") == "true", q.Get("run_id")
	bp := r.PathValue("blueprint")

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.AnyBlueprint && !s.blueprints[bp] {
		writeErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("Blueprint with identifier %q was not found", bp))
		return
	}
	var run *runState
	if runID != "" {
		if run = s.runs[runID]; run == nil {
			writeErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("Action run with identifier %q was not found", runID))
			return
		}
		if run.Status != StatusInProgress {
			s.addEvent(run, "entity", http.StatusBadRequest, string(raw))
			runFinished(w, run)
			return
		}
	}
	id := s.nextID("e_", 16) // Port generates an identifier when none is given
	if req.Identifier != nil {
		id = *req.Identifier
	}
	if s.entities[bp] == nil {
		s.entities[bp] = map[string]*Entity{}
	}
	old := s.entities[bp][id]
	if old != nil && !upsert {
		writeErr(w, http.StatusConflict, "identifier_taken", fmt.Sprintf("Entity %q of blueprint %q already exists", id, bp))
		return
	}
	now, by := s.now(), "portsim-client"
	e := cloneEntity(Entity{Identifier: id, Blueprint: bp, CreatedAt: now, CreatedBy: by})
	keep := old != nil && merge // merge: absent fields keep their values
	if keep {
		e = cloneEntity(*old)
	} else if old != nil {
		e.CreatedAt, e.CreatedBy = old.CreatedAt, old.CreatedBy
	}
	if req.Title != nil || !keep {
		e.Title = deref(req.Title)
	}
	if req.Icon != nil || !keep {
		e.Icon = deref(req.Icon)
	}
	if team != nil || !keep {
		e.Team = team
	}
	for k, v := range req.Properties {
		e.Properties[k] = v
	}
	for k, v := range req.Relations {
		e.Relations[k] = v
	}
	e.UpdatedAt, e.UpdatedBy = now, by
	e = cloneEntity(e)
	s.entities[bp][id] = &e
	status := http.StatusCreated
	if old != nil {
		status = http.StatusOK
	}
	if run != nil {
		run.Entities = append(run.Entities, bp+"/"+id)
		s.addEvent(run, "entity", status, string(raw))
	}
	writeJSON(w, status, map[string]any{"ok": true, "entity": entityView(e)})
}

// getUser is GET /v1/users/{email} -> {ok, user}. docs silent on the user schema; the shape
// (teams as [{name}], roles as [{name}]) follows what Port's own clients read.
func (s *Sim) getUser(w http.ResponseWriter, r *http.Request) {
	email := r.PathValue("email")
	u, ok := s.users[strings.ToLower(email)]
	if !ok {
		writeErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("User with email %q was not found", email))
		return
	}
	roles := u.Roles
	if len(roles) == 0 {
		roles = []string{"Member"}
	}
	named := func(names []string) []map[string]any {
		out := []map[string]any{}
		for _, n := range names {
			out = append(out, map[string]any{"name": n})
		}
		return out
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "user": map[string]any{
		"id": s.userID(email), "email": email, "firstName": u.FirstName, "lastName": u.LastName,
		"status": "ACTIVE", "providers": []string{"port"}, "teams": named(u.Teams), "roles": named(roles),
		"createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z",
	}})
}

// runView is a run as Port's API answers it (the documented v2 shape). Callers hold s.mu.
func (s *Sim) runView(run *runState) map[string]any {
	v := map[string]any{
		"id": run.ID, "status": run.Status, "statusLabel": nil, "link": append([]string{}, run.Links...),
		"summary": run.Summary, "properties": cloneMap(run.Inputs), "source": "UI",
		"requiredApproval": false, "endedAt": nil,
		"blueprint": map[string]any{"identifier": run.Blueprint},
		"action":    map[string]any{"identifier": run.Action},
		"createdAt": stamp(run.CreatedAt), "updatedAt": stamp(run.CreatedAt),
		"createdBy": s.userID(run.UserEmail), "updatedBy": s.userID(run.UserEmail),
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
		v["endedAt"], v["updatedAt"] = stamp(run.EndedAt), stamp(run.EndedAt)
	}
	return v
}

func entityView(e Entity) map[string]any {
	v := map[string]any{
		"identifier": e.Identifier, "title": e.Title, "blueprint": e.Blueprint, "team": e.Team,
		"properties": e.Properties, "relations": e.Relations,
		"createdAt": stamp(e.CreatedAt), "createdBy": e.CreatedBy,
		"updatedAt": stamp(e.UpdatedAt), "updatedBy": e.UpdatedBy,
	}
	if e.Icon != "" {
		v["icon"] = e.Icon
	}
	return v
}

// stamp formats times as Port does: UTC with milliseconds, e.g. 2023-11-13T15:20:16.641Z.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// stringOrList decodes Port's "string or array of strings" fields; absent or null is nil.
func stringOrList(raw json.RawMessage) ([]string, bool) {
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

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// readBody reads the whole request body, answering 413 past Port's 1 MiB limit.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	raw, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeErr(w, http.StatusRequestEntityTooLarge, "request_too_large", "Request body is too large (limit is 1MiB)")
		return nil, false
	case err != nil:
		writeErr(w, http.StatusBadRequest, "bad_request", "cannot read body: "+err.Error())
		return nil, false
	}
	return raw, true
}

// decodeBytes decodes a JSON object strictly: Port's schemas set additionalProperties false.
func decodeBytes(w http.ResponseWriter, raw []byte, v any, status int, code string) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, status, code, "The json provided does not match the route's schema: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do about it
}

// writeErr answers Port's error shape {"ok":false,"error":"<code>","message":"..."}.
func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"ok": false, "error": code, "message": msg})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// discardWriter swallows the real answer of a request whose response is "lost".
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
