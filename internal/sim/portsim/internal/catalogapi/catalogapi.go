// Package catalogapi simulates Port's routes for blueprints and actions
// (package portsim mounts them), following Port's API reference:
//
//	POST /v1/blueprints, GET /v1/blueprints, GET|PUT|PATCH /v1/blueprints/{identifier}
//	POST /v1/actions, GET /v1/actions, GET|PUT /v1/actions/{action_identifier}
//
// Answers are {"ok": true, "blueprint"|"action": {...}} (lists: "blueprints",
// "actions"); errors Port's {"ok": false, "error", "message"}: 404 not_found
// for an unknown identifier, 422 for a body that does not match the route's
// schema, 413 past 1 MiB. Port keeps what it is given and adds its own
// fields (createdAt, createdBy, updatedAt, updatedBy; an action also an id),
// as the simulator does.
//
// Where the docs are silent the simulator chooses, marked "docs silent": a
// POST of an identifier that exists is 409 identifier_taken (the answer Port
// documents for entities); a creation is answered 201, as an entity's is; a
// relation or action naming a blueprint that does not exist is 404
// not_found; a PUT whose body names another identifier than the path is
// 422; PATCH merges objects key by key.
package catalogapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/paved-idp/paved/internal/sim/portsim/internal/wire"
)

// Config wires the store to the simulator.
type Config struct {
	Now func() time.Time
	// KnownBlueprint reports blueprints the simulator knows besides the ones
	// created here (its configured ones).
	KnownBlueprint func(id string) bool
	// OnBlueprint is told of every blueprint created here, so that entities
	// may be upserted into it.
	OnBlueprint func(id string)
}

// Store holds the blueprints and actions created through the API. It is safe
// for concurrent use.
type Store struct {
	cfg Config

	mu         sync.Mutex
	seq        int
	blueprints map[string]map[string]any
	actions    map[string]map[string]any
}

// New returns an empty store.
func New(cfg Config) *Store {
	return &Store{cfg: cfg, blueprints: map[string]map[string]any{}, actions: map[string]map[string]any{}}
}

// Routes mounts the routes on mux, each behind authed.
func (s *Store) Routes(mux *http.ServeMux, authed func(http.HandlerFunc) http.Handler) {
	mux.Handle("POST /v1/blueprints", authed(s.createBlueprint))
	mux.Handle("GET /v1/blueprints", authed(s.listBlueprints))
	mux.Handle("GET /v1/blueprints/{identifier}", authed(s.getBlueprint))
	mux.Handle("PUT /v1/blueprints/{identifier}", authed(s.putBlueprint))
	mux.Handle("PATCH /v1/blueprints/{identifier}", authed(s.patchBlueprint))
	mux.Handle("POST /v1/actions", authed(s.createAction))
	mux.Handle("GET /v1/actions", authed(s.listActions))
	mux.Handle("GET /v1/actions/{action_identifier}", authed(s.getAction))
	mux.Handle("PUT /v1/actions/{action_identifier}", authed(s.putAction))
}

// Blueprint returns a deep copy of a blueprint as the API would answer it.
func (s *Store) Blueprint(id string) (map[string]any, bool) { return s.get(s.blueprints, id) }

// Action returns a deep copy of an action as the API would answer it.
func (s *Store) Action(id string) (map[string]any, bool) { return s.get(s.actions, id) }

func (s *Store) get(m map[string]map[string]any, id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := m[id]
	if !ok {
		return nil, false
	}
	return deepCopy(d), true
}

// kind describes one of the two resources.
type kind struct {
	name     string // "blueprint", "action"
	title    string // "Blueprint", "Action", for messages
	pathKey  string // the path parameter
	allowed  []string
	required []string
	check    func(s *Store, doc map[string]any) (status int, code, msg string)
}

var (
	// allowed are the top-level fields of Port's schemas for each.
	blueprintKind = kind{
		name: "blueprint", title: "Blueprint", pathKey: "identifier",
		allowed: []string{"identifier", "title", "icon", "description", "schema", "calculationProperties", "mirrorProperties",
			"aggregationProperties", "relations", "teamInheritance", "ownership", "changelogDestination"},
		required: []string{"identifier", "title", "schema"},
		check:    (*Store).checkBlueprint,
	}
	actionKind = kind{
		name: "action", title: "Action", pathKey: "action_identifier",
		allowed: []string{"identifier", "title", "icon", "description", "trigger", "invocationMethod", "requiredApproval",
			"approvalNotification", "publish", "allowAnyoneToViewRuns"},
		required: []string{"identifier", "trigger", "invocationMethod"},
		check:    (*Store).checkAction,
	}
)

// identifierRE is the identifier pattern of Port's blueprint and action schemas.
var identifierRE = regexp.MustCompile(`^[A-Za-z0-9@_=\-]+$`)

func (s *Store) createBlueprint(w http.ResponseWriter, r *http.Request) {
	s.create(w, r, blueprintKind, s.blueprints)
}
func (s *Store) getBlueprint(w http.ResponseWriter, r *http.Request) {
	s.read(w, r, blueprintKind, s.blueprints)
}
func (s *Store) listBlueprints(w http.ResponseWriter, r *http.Request) {
	s.list(w, r, "blueprints", s.blueprints, nil)
}
func (s *Store) putBlueprint(w http.ResponseWriter, r *http.Request) {
	s.replace(w, r, blueprintKind, s.blueprints, false)
}
func (s *Store) patchBlueprint(w http.ResponseWriter, r *http.Request) {
	s.replace(w, r, blueprintKind, s.blueprints, true)
}
func (s *Store) createAction(w http.ResponseWriter, r *http.Request) {
	s.create(w, r, actionKind, s.actions)
}
func (s *Store) getAction(w http.ResponseWriter, r *http.Request) {
	s.read(w, r, actionKind, s.actions)
}
func (s *Store) putAction(w http.ResponseWriter, r *http.Request) {
	s.replace(w, r, actionKind, s.actions, false)
}

// listActions is GET /v1/actions, filtered by the repeatable
// action_identifier and blueprint_identifier query parameters.
func (s *Store) listActions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ids, bps := q["action_identifier"], q["blueprint_identifier"]
	s.list(w, r, "actions", s.actions, func(a map[string]any) bool {
		trigger, _ := a["trigger"].(map[string]any)
		bp, _ := trigger["blueprintIdentifier"].(string)
		return (len(ids) == 0 || slices.Contains(ids, a["identifier"].(string))) && (len(bps) == 0 || slices.Contains(bps, bp))
	})
}

// body reads and checks a request body; on failure it has answered.
func (s *Store) body(w http.ResponseWriter, r *http.Request, k kind, partial bool) (map[string]any, bool) {
	raw, ok := wire.ReadBody(w, r)
	if !ok {
		return nil, false
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		wire.WriteErr(w, http.StatusUnprocessableEntity, "invalid_request", "The json provided does not match the route's schema: the body must be a JSON object")
		return nil, false
	}
	for _, key := range slices.Sorted(maps.Keys(doc)) {
		if !slices.Contains(k.allowed, key) {
			wire.WriteErr(w, http.StatusUnprocessableEntity, "invalid_request", fmt.Sprintf("The json provided does not match the route's schema: %s must NOT have additional property %q", k.name, key))
			return nil, false
		}
	}
	if partial {
		return doc, true
	}
	for _, key := range k.required {
		if _, ok := doc[key]; !ok {
			if key == "identifier" && r.Method == http.MethodPut {
				continue // the path names it
			}
			wire.WriteErr(w, http.StatusUnprocessableEntity, "invalid_request", fmt.Sprintf("The json provided does not match the route's schema: %s must have required property %q", k.name, key))
			return nil, false
		}
	}
	if id, ok := doc["identifier"]; ok {
		if s, isStr := id.(string); !isStr || !identifierRE.MatchString(s) {
			wire.WriteErr(w, http.StatusUnprocessableEntity, "invalid_request", fmt.Sprintf("The json provided does not match the route's schema: identifier must match pattern %s", identifierRE))
			return nil, false
		}
	}
	return doc, true
}

func (s *Store) create(w http.ResponseWriter, r *http.Request, k kind, m map[string]map[string]any) {
	doc, ok := s.body(w, r, k, false)
	if !ok {
		return
	}
	id := doc["identifier"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := m[id]; exists {
		wire.WriteErr(w, http.StatusConflict, "identifier_taken", fmt.Sprintf("%s with identifier %q already exists", k.title, id))
		return
	}
	if status, code, msg := k.check(s, doc); status != 0 {
		wire.WriteErr(w, status, code, msg)
		return
	}
	now, by := wire.Stamp(s.cfg.Now()), "portsim-client"
	doc["createdAt"], doc["createdBy"], doc["updatedAt"], doc["updatedBy"] = now, by, now, by
	if k.name == "action" {
		s.seq++
		doc["id"] = fmt.Sprintf("action_%016d", s.seq)
	}
	m[id] = doc
	if k.name == "blueprint" && s.cfg.OnBlueprint != nil {
		s.cfg.OnBlueprint(id)
	}
	wire.WriteJSON(w, http.StatusCreated, map[string]any{"ok": true, k.name: deepCopy(doc)})
}

func (s *Store) read(w http.ResponseWriter, r *http.Request, k kind, m map[string]map[string]any) {
	id := r.PathValue(k.pathKey)
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, ok := m[id]
	if !ok {
		notFound(w, k.title, id)
		return
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, k.name: deepCopy(doc)})
}

func (s *Store) list(w http.ResponseWriter, _ *http.Request, key string, m map[string]map[string]any, keep func(map[string]any) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, id := range slices.Sorted(maps.Keys(m)) {
		if keep == nil || keep(m[id]) {
			out = append(out, deepCopy(m[id]))
		}
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, key: out})
}

// replace is PUT (the body replaces the resource, Port's fields kept) or,
// with merge, PATCH (the body's fields are merged in).
func (s *Store) replace(w http.ResponseWriter, r *http.Request, k kind, m map[string]map[string]any, merge bool) {
	doc, ok := s.body(w, r, k, merge)
	if !ok {
		return
	}
	id := r.PathValue(k.pathKey)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists := m[id]
	if !exists {
		notFound(w, k.title, id)
		return
	}
	if got, ok := doc["identifier"]; ok && got != id {
		// docs silent: renaming through PUT is refused.
		wire.WriteErr(w, http.StatusUnprocessableEntity, "invalid_request", fmt.Sprintf("The json provided does not match the route's schema: identifier %v is not the path's %q", got, id))
		return
	}
	if merge {
		doc = mergeInto(deepCopy(old), doc)
	}
	doc["identifier"] = id
	if status, code, msg := k.check(s, doc); status != 0 {
		wire.WriteErr(w, status, code, msg)
		return
	}
	for _, f := range []string{"id", "createdAt", "createdBy"} {
		if v, ok := old[f]; ok {
			doc[f] = v
		}
	}
	doc["updatedAt"], doc["updatedBy"] = wire.Stamp(s.cfg.Now()), "portsim-client"
	m[id] = doc
	wire.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, k.name: deepCopy(doc)})
}

// checkBlueprint requires a schema object and relations to known blueprints.
// Callers hold s.mu.
func (s *Store) checkBlueprint(doc map[string]any) (int, string, string) {
	if _, ok := doc["schema"].(map[string]any); !ok {
		return http.StatusUnprocessableEntity, "invalid_request", "The json provided does not match the route's schema: schema must be object"
	}
	rels, _ := doc["relations"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(rels)) {
		rel, _ := rels[name].(map[string]any)
		target, _ := rel["target"].(string)
		if target == "" {
			return http.StatusUnprocessableEntity, "invalid_request", fmt.Sprintf("The json provided does not match the route's schema: relations.%s must have required property \"target\"", name)
		}
		if target != doc["identifier"] && !s.knownBlueprint(target) {
			return http.StatusNotFound, "not_found", fmt.Sprintf("Blueprint with identifier %q was not found", target) // docs silent
		}
	}
	return 0, "", ""
}

// checkAction requires a self-service trigger's operation and an existing
// blueprint when it names one. Callers hold s.mu.
func (s *Store) checkAction(doc map[string]any) (int, string, string) {
	trigger, ok := doc["trigger"].(map[string]any)
	if !ok {
		return http.StatusUnprocessableEntity, "invalid_request", "The json provided does not match the route's schema: trigger must be object"
	}
	if _, ok := doc["invocationMethod"].(map[string]any); !ok {
		return http.StatusUnprocessableEntity, "invalid_request", "The json provided does not match the route's schema: invocationMethod must be object"
	}
	if trigger["type"] == "self-service" {
		switch trigger["operation"] {
		case "CREATE", "DAY-2", "DELETE":
		default:
			return http.StatusUnprocessableEntity, "invalid_request", "The json provided does not match the route's schema: trigger.operation must be equal to one of the allowed values CREATE, DAY-2, DELETE"
		}
	}
	if bp, ok := trigger["blueprintIdentifier"].(string); ok && !s.knownBlueprint(bp) {
		return http.StatusNotFound, "not_found", fmt.Sprintf("Blueprint with identifier %q was not found", bp)
	}
	return 0, "", ""
}

// knownBlueprint reports whether bp was created here or is the simulator's.
// Callers hold s.mu.
func (s *Store) knownBlueprint(bp string) bool {
	_, ok := s.blueprints[bp]
	return ok || (s.cfg.KnownBlueprint != nil && s.cfg.KnownBlueprint(bp))
}

func notFound(w http.ResponseWriter, title, id string) {
	wire.WriteErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s with identifier %q was not found", title, id))
}

// mergeInto merges patch into dst: objects key by key, anything else replaced.
func mergeInto(dst, patch map[string]any) map[string]any {
	for k, v := range patch {
		if pv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				dst[k] = mergeInto(dv, pv)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

// deepCopy copies a JSON document (maps, slices and scalars).
func deepCopy(m map[string]any) map[string]any {
	raw, err := json.Marshal(m)
	if err != nil {
		panic("catalogapi: stored document is not JSON: " + err.Error()) // documents come from JSON
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}
