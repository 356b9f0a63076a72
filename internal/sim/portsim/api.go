package portsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/sim/portsim/internal/model"
	"github.com/paved-idp/paved/internal/sim/portsim/internal/wire"
)

// Handler returns Port's REST API: mount it on an httptest.Server and use the server's URL as
// the API base (as https://api.getport.io).
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/auth/access_token", s.accessToken)
	mux.Handle("GET /v1/actions/runs/{run_id}", s.authed(s.getRun))
	mux.Handle("PATCH /v1/actions/runs/{run_id}", s.authed(s.patchRun))
	mux.Handle("POST /v1/actions/runs/{run_id}/logs", s.authed(s.addLog))
	mux.Handle("POST /v1/blueprints/{blueprint}/entities", s.authed(s.upsertEntity))
	mux.Handle("DELETE /v1/blueprints/{blueprint}/entities/{entity}", s.authed(s.deleteEntity))
	mux.Handle("PATCH /v1/blueprints/{blueprint}/entities/{entity}", s.authed(s.patchEntity))
	mux.Handle("GET /v1/users/{email}", s.authed(s.getUser))
	s.catalog.Routes(mux, s.authed)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteErr(w, http.StatusNotFound, "not_found", "route "+r.Method+" "+r.URL.Path+" is not simulated")
	})
	return s.gate.Middleware(mux)
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
			wire.WriteErr(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required: the token is missing, unknown or expired")
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
	raw, ok := wire.ReadBody(w, r)
	if !ok || !wire.DecodeBytes(w, raw, &req, http.StatusUnprocessableEntity, "invalid_request") {
		return
	}
	if req.ClientID == nil || req.ClientSecret == nil {
		wire.WriteErr(w, http.StatusUnprocessableEntity, "invalid_request", "body must have clientId and clientSecret")
		return
	}
	if *req.ClientID != s.cfg.ClientID || *req.ClientSecret != s.cfg.ClientSecret {
		wire.WriteErr(w, http.StatusUnauthorized, "unauthorized", "the provided clientId and clientSecret are invalid")
		return
	}
	s.mu.Lock()
	now := s.now()
	if s.token == "" || !now.Before(s.tokenUntil) {
		s.token, s.tokenUntil = s.nextID("portsim_", 40), now.Add(s.cfg.TokenTTL)
	}
	tok, left := s.token, int(s.tokenUntil.Sub(now)/time.Second)
	s.mu.Unlock()
	wire.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "accessToken": tok, "expiresIn": left, "tokenType": "Bearer"})
}

// lookupRun finds the run named in the path and records the call as an event on it, or
// answers 404. On success it returns with s.mu held; the caller unlocks.
func (s *Sim) lookupRun(w http.ResponseWriter, r *http.Request) *runState {
	s.mu.Lock()
	run := s.runs[r.PathValue("run_id")]
	if run == nil {
		s.mu.Unlock()
		wire.WriteErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("Action run with identifier %q was not found", r.PathValue("run_id")))
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
	view := wire.RunView(&run.RunRecord, s.userID(run.UserEmail))
	s.mu.Unlock()
	wire.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "run": view})
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
	raw, ok := wire.ReadBody(w, r)
	if !ok || !wire.DecodeBytes(w, raw, &req, http.StatusUnprocessableEntity, "invalid_request") {
		return
	}
	if req.Status != nil && *req.Status != StatusSuccess && *req.Status != StatusFailure {
		wire.WriteErr(w, http.StatusUnprocessableEntity, "invalid_request", "status must be SUCCESS or FAILURE")
		return
	}
	links, ok := wire.StringOrList(req.Link)
	if !ok {
		wire.WriteErr(w, http.StatusUnprocessableEntity, "invalid_request", "link must be a string or an array of strings")
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
		wire.RunFinished(w, run.ID, run.Status)
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
	wire.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "run": wire.RunView(&run.RunRecord, s.userID(run.UserEmail))})
}

// addLog is POST /v1/actions/runs/{run_id}/logs with {message (required), terminationStatus,
// statusLabel} -> 201 {ok, runLog}. A terminationStatus ends the run.
func (s *Sim) addLog(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Message           *string `json:"message"`
		TerminationStatus *string `json:"terminationStatus"`
		StatusLabel       *string `json:"statusLabel"`
	}
	raw, ok := wire.ReadBody(w, r)
	if !ok || !wire.DecodeBytes(w, raw, &req, http.StatusUnprocessableEntity, "invalid_request") {
		return
	}
	if req.Message == nil {
		wire.WriteErr(w, http.StatusUnprocessableEntity, "invalid_request", "body must have required property 'message'")
		return
	}
	if t := req.TerminationStatus; t != nil && *t != StatusSuccess && *t != StatusFailure {
		wire.WriteErr(w, http.StatusUnprocessableEntity, "invalid_request", "terminationStatus must be SUCCESS or FAILURE")
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
		wire.RunFinished(w, run.ID, run.Status)
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
	wire.WriteJSON(w, http.StatusCreated, map[string]any{"ok": true, "runLog": map[string]any{
		"id": s.nextID("log_", 16), "runId": run.ID, "message": line.Message,
		"createdBy": s.userID(run.UserEmail), "createdAt": wire.Stamp(now),
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
	raw, ok := wire.ReadBody(w, r)
	if !ok || !wire.DecodeBytes(w, raw, &req, http.StatusBadRequest, "bad_request") {
		return
	}
	team, ok := wire.StringOrList(req.Team)
	if !ok {
		wire.WriteErr(w, http.StatusBadRequest, "bad_request", "team must be a string or an array of strings")
		return
	}
	if req.Identifier != nil && !wire.IdentifierPattern.MatchString(*req.Identifier) {
		wire.WriteErr(w, http.StatusBadRequest, "bad_request",
			fmt.Sprintf("identifier %q must match pattern %s", *req.Identifier, wire.IdentifierPattern))
		return
	}
	q := r.URL.Query()
	upsert, merge, runID := q.Get("upsert") == "true", q.Get("merge") == "true", q.Get("run_id")
	bp := r.PathValue("blueprint")

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.AnyBlueprint && !s.blueprints[bp] {
		wire.WriteErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("Blueprint with identifier %q was not found", bp))
		return
	}
	var run *runState
	if runID != "" {
		if run = s.runs[runID]; run == nil {
			wire.WriteErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("Action run with identifier %q was not found", runID))
			return
		}
		if run.Status != StatusInProgress {
			s.addEvent(run, "entity", http.StatusBadRequest, string(raw))
			wire.RunFinished(w, run.ID, run.Status)
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
		wire.WriteErr(w, http.StatusConflict, "identifier_taken", fmt.Sprintf("Entity %q of blueprint %q already exists", id, bp))
		return
	}
	now, by := s.now(), "portsim-client"
	e := model.CloneEntity(Entity{Identifier: id, Blueprint: bp, CreatedAt: now, CreatedBy: by})
	keep := old != nil && merge // merge: absent fields keep their values
	if keep {
		e = model.CloneEntity(*old)
	} else if old != nil {
		e.CreatedAt, e.CreatedBy = old.CreatedAt, old.CreatedBy
	}
	if req.Title != nil || !keep {
		e.Title = wire.Deref(req.Title)
	}
	if req.Icon != nil || !keep {
		e.Icon = wire.Deref(req.Icon)
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
	e = model.CloneEntity(e)
	s.entities[bp][id] = &e
	status := http.StatusCreated
	if old != nil {
		status = http.StatusOK
	}
	if run != nil {
		run.Entities = append(run.Entities, bp+"/"+id)
		s.addEvent(run, "entity", status, string(raw))
	}
	wire.WriteJSON(w, status, map[string]any{"ok": true, "entity": wire.EntityView(e)})
}

// deleteEntity is DELETE /v1/blueprints/{blueprint}/entities/{entity} ("Delete an entity" in
// Port's API reference): 200 {ok: true} once deleted, 404 for an unknown blueprint or entity.
// Entities that relate to it keep their relation's value: the simulator models no required
// relations, so delete_dependents changes nothing here.
func (s *Sim) deleteEntity(w http.ResponseWriter, r *http.Request) {
	bp, id := r.PathValue("blueprint"), r.PathValue("entity")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.AnyBlueprint && !s.blueprints[bp] {
		wire.WriteErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("Blueprint with identifier %q was not found", bp))
		return
	}
	if s.entities[bp][id] == nil {
		wire.WriteErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("Entity with identifier %q of blueprint %q was not found", id, bp))
		return
	}
	delete(s.entities[bp], id)
	s.deleted = append(s.deleted, bp+"/"+id)
	wire.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// patchEntity is PATCH /v1/blueprints/{blueprint}/entities/{entity} ("Patch an entity" in
// Port's API reference): the given title, properties and relations change, the rest stay;
// 200 {ok, entity}, 404 for an unknown blueprint or entity (a patch creates nothing).
func (s *Sim) patchEntity(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Title      *string        `json:"title"`
		Properties map[string]any `json:"properties"`
		Relations  map[string]any `json:"relations"`
	}
	raw, ok := wire.ReadBody(w, r)
	if !ok || !wire.DecodeBytes(w, raw, &req, http.StatusUnprocessableEntity, "invalid_request") {
		return
	}
	bp, id := r.PathValue("blueprint"), r.PathValue("entity")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.AnyBlueprint && !s.blueprints[bp] {
		wire.WriteErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("A blueprint with the provided identifier %q was not found", bp))
		return
	}
	old := s.entities[bp][id]
	if old == nil {
		wire.WriteErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("An entity with the provided identifier %q was not found", id))
		return
	}
	e := model.CloneEntity(*old)
	if req.Title != nil {
		e.Title = *req.Title
	}
	for k, v := range req.Properties {
		e.Properties[k] = v
	}
	for k, v := range req.Relations {
		e.Relations[k] = v
	}
	e.UpdatedAt, e.UpdatedBy = s.now(), "portsim-client"
	e = model.CloneEntity(e)
	s.entities[bp][id] = &e
	wire.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "entity": wire.EntityView(e)})
}

// getUser is GET /v1/users/{user_email} -> {ok, user} in the shape of Port's API reference
// (see wire.UserView): teams as names, teamsIdentifiers as the teams' identifiers.
func (s *Sim) getUser(w http.ResponseWriter, r *http.Request) {
	email := r.PathValue("email")
	u, ok := s.users[strings.ToLower(email)]
	if !ok {
		wire.WriteErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("User with email %q was not found", email))
		return
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "user": wire.UserView(s.userID(email), email, s.cfg.OrgID, u)})
}
