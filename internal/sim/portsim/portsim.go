// Package portsim simulates, in process, the parts of Port (getport.io) that paved talks to:
// Port's REST API (access tokens, action runs, run logs, entity upserts, users, and the
// blueprints and actions `paved sync port` writes) and Port's webhook sender for
// self-service actions. It follows Port's public documentation, not paved's
// client, so that end-to-end tests and `paved demo` exercise the same wire formats production
// does. Everything a test may want to assert on (runs, logs, terminal-status attempts, entities,
// every call) is recorded and handed out as deep copies.
//
// Where Port's documentation is silent the simulator chooses, marked "docs silent" in
// comments: any change to a finished run (second terminal PATCH or log, any later PATCH or log)
// is answered 400 run_exhausted, the error Port documents for entity calls naming a finished
// run; 429 bodies use Port's general error shape with error "rate_limit_exceeded". Users are
// answered in the documented shape {ok, user{email, ..., teams[name], roles[{name}],
// teamsIdentifiers[identifier]}}.
package portsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/paved-idp/paved/internal/sim/portsim/internal/catalogapi"
	"github.com/paved-idp/paved/internal/sim/portsim/internal/faults"
	"github.com/paved-idp/paved/internal/sim/portsim/internal/model"
)

// Config configures a simulator. The zero value of every field has a usable default.
type Config struct {
	ClientID     string // expected by POST /v1/auth/access_token
	ClientSecret string // expected by the token route; also the webhook signing key, as in Port
	OrgID        string // trigger.by.orgId in webhooks; default "org_portsim"

	// TokenTTL is how long an access token lives. Port documents 3 hours (the default);
	// tests shorten it, or move Now, to exercise refresh.
	TokenTTL time.Duration

	Users map[string]User // keyed by email, answered by GET /v1/users/{email}

	// Blueprints lists the blueprints entities may be upserted into. AnyBlueprint accepts
	// every blueprint instead, for demos that do not want to register them.
	Blueprints   []string
	AnyBlueprint bool

	// RateLimit is the number of requests allowed per RateLimitPeriod (defaults 1000 per
	// 5 minutes); past it the simulator answers 429 like Port. Every answer carries
	// Port's x-ratelimit-* headers.
	RateLimit       int
	RateLimitPeriod time.Duration

	Faults Faults

	Now        func() time.Time // clock; default time.Now. Tests pass a fake clock.
	HTTPClient *http.Client     // used by Trigger; default a client with a 30 s timeout
}

// The simulator's records, documented in package model.
type (
	// Faults injects failures into API answers.
	Faults = faults.Faults
	// User is a Port user known to the simulator.
	User = model.User
	// Invoker is the user who executes an action.
	Invoker = model.Invoker
	// Invocation describes one execution of a self-service action.
	Invocation = model.Invocation
	// Entity is a catalog entity as Port stores it.
	Entity = model.Entity
	// RunRecord is everything the simulator knows about one action run.
	RunRecord = model.RunRecord
	// LogLine is one accepted POST /v1/actions/runs/{id}/logs.
	LogLine = model.LogLine
	// Event is one thing that happened to a run.
	Event = model.Event
	// Call is one API request the simulator served.
	Call = model.Call
)

// Run statuses as Port reports them.
const (
	StatusInProgress = model.StatusInProgress
	StatusSuccess    = model.StatusSuccess
	StatusFailure    = model.StatusFailure
)

// Sim is the simulator. Its methods are safe for concurrent use.
type Sim struct {
	cfg   Config
	users map[string]User // lower-cased email -> user

	mu         sync.Mutex
	gate       *faults.Gate
	idRand     *rand.Rand
	seq        int
	token      string
	tokenUntil time.Time
	runs       map[string]*runState
	runOrder   []string
	blueprints map[string]bool
	entities   map[string]map[string]*Entity // blueprint -> identifier -> entity
	deleted    []string                      // "<blueprint>/<identifier>" of deleted entities, in order
	calls      []Call

	// catalog holds the blueprints and actions created through the API.
	catalog *catalogapi.Store
}

type runState struct {
	RunRecord
	inv Invocation // normalised copy, used to build the webhook body
}

// New returns a simulator configured by cfg.
func New(cfg Config) *Sim {
	if cfg.OrgID == "" {
		cfg.OrgID = "org_portsim"
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 3 * time.Hour
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = 1000
	}
	if cfg.RateLimitPeriod <= 0 {
		cfg.RateLimitPeriod = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	s := &Sim{
		cfg:        cfg,
		users:      map[string]User{},
		idRand:     rand.New(rand.NewPCG(cfg.Faults.Seed, 0x2545f4914f6cdd1d)),
		runs:       map[string]*runState{},
		blueprints: map[string]bool{},
		entities:   map[string]map[string]*Entity{},
	}
	s.gate = faults.New(&s.cfg.Faults, cfg.RateLimit, cfg.RateLimitPeriod, s.now, s.logCall)
	for email, u := range cfg.Users {
		s.users[strings.ToLower(email)] = u
	}
	for _, b := range cfg.Blueprints {
		s.blueprints[b] = true
	}
	s.catalog = catalogapi.New(catalogapi.Config{
		Now: s.now,
		KnownBlueprint: func(id string) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.blueprints[id]
		},
		// A blueprint created through the API takes entities.
		OnBlueprint: func(id string) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.blueprints[id] = true
		},
	})
	return s
}

// Blueprint returns a blueprint created through the API, as Port answers it.
func (s *Sim) Blueprint(id string) (map[string]any, bool) { return s.catalog.Blueprint(id) }

// Action returns an action created through the API, as Port answers it.
func (s *Sim) Action(id string) (map[string]any, bool) { return s.catalog.Action(id) }

func (s *Sim) now() time.Time { return s.cfg.Now().UTC() }

// nextID returns prefix + n characters from Port's id alphabet (Port's ids look like
// "r_QOz6WoOB1Q2lmhZZ"). Callers hold s.mu.
func (s *Sim) nextID(prefix string, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[s.idRand.IntN(len(alphabet))]
	}
	return prefix + string(b)
}

// userID is the id Port would show for email: the configured one or a stable fake.
func (s *Sim) userID(email string) string {
	if u, ok := s.users[strings.ToLower(email)]; ok && u.ID != "" {
		return u.ID
	}
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	return "auth0|" + hex.EncodeToString(sum[:12])
}

// CreateRun registers a run for inv as Port does when a user executes an action, without
// sending the webhook. It returns the run id ("r_" and 16 characters, like Port's).
func (s *Sim) CreateRun(inv Invocation) (string, error) {
	if inv.Action == "" || inv.Blueprint == "" {
		return "", fmt.Errorf("portsim: invocation needs Action and Blueprint")
	}
	if inv.Operation == "" {
		inv.Operation = "CREATE"
		if inv.Entity != nil {
			inv.Operation = "DAY-2"
		}
	}
	switch inv.Operation {
	case "CREATE", "DAY-2", "DELETE":
	default:
		return "", fmt.Errorf("portsim: operation %q is not CREATE, DAY-2 or DELETE", inv.Operation)
	}
	// Inputs travel as JSON; a round trip both validates them and makes them deep-copyable.
	inputs := map[string]any{}
	if inv.Inputs != nil {
		raw, err := json.Marshal(inv.Inputs)
		if err != nil {
			return "", fmt.Errorf("portsim: inputs are not JSON: %w", err)
		}
		if err := json.Unmarshal(raw, &inputs); err != nil {
			return "", fmt.Errorf("portsim: inputs are not a JSON object: %w", err)
		}
	}
	inv.Inputs = inputs
	if u, ok := s.users[strings.ToLower(inv.User.Email)]; ok {
		if inv.User.FirstName == "" {
			inv.User.FirstName = u.FirstName
		}
		if inv.User.LastName == "" {
			inv.User.LastName = u.LastName
		}
	}
	entityID := ""
	if inv.Entity != nil {
		e := model.CloneEntity(*inv.Entity)
		if e.Blueprint == "" {
			e.Blueprint = inv.Blueprint
		}
		inv.Entity = &e
		entityID = e.Identifier
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID("r_", 16)
	for s.runs[id] != nil {
		id = s.nextID("r_", 16)
	}
	s.runs[id] = &runState{inv: inv, RunRecord: RunRecord{
		ID: id, Action: inv.Action, Blueprint: inv.Blueprint, Entity: entityID,
		Operation: inv.Operation, Inputs: model.CloneMap(inputs), UserEmail: inv.User.Email,
		Status: StatusInProgress, CreatedAt: s.now(),
	}}
	s.runOrder = append(s.runOrder, id)
	return id, nil
}

// Run returns a deep copy of the run with the given id.
func (s *Sim) Run(id string) (RunRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok {
		return RunRecord{}, false
	}
	return r.copy(), true
}

// Runs returns deep copies of all runs in creation order.
func (s *Sim) Runs() []RunRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RunRecord, 0, len(s.runOrder))
	for _, id := range s.runOrder {
		out = append(out, s.runs[id].copy())
	}
	return out
}

// Entities returns deep copies of the entities of a blueprint, sorted by identifier.
func (s *Sim) Entities(blueprint string) []Entity {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entity, 0, len(s.entities[blueprint]))
	for _, e := range s.entities[blueprint] {
		out = append(out, model.CloneEntity(*e))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identifier < out[j].Identifier })
	return out
}

// Deleted returns the entities deleted through the API, "<blueprint>/<identifier>", in order.
func (s *Sim) Deleted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.deleted...)
}

// Calls returns the log of API requests served, oldest first.
func (s *Sim) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// addEvent appends an event to a run. Callers hold s.mu.
func (s *Sim) addEvent(r *runState, kind string, status int, detail string) {
	s.seq++
	r.Events = append(r.Events, Event{Seq: s.seq, Kind: kind, Status: status, Detail: detail})
}

func (r *runState) copy() RunRecord {
	c := r.RunRecord
	c.Inputs = model.CloneMap(r.Inputs)
	c.Links = append([]string(nil), r.Links...)
	c.Logs = append([]LogLine(nil), r.Logs...)
	c.Events = append([]Event(nil), r.Events...)
	c.Entities = append([]string(nil), r.Entities...)
	return c
}
