// Package model holds the records of the Port simulator (package portsim), which re-exports
// them: users, invocations, entities, runs and the events and calls recorded about them.
package model

import (
	"encoding/json"
	"time"
)

// User is a Port user known to the simulator.
type User struct {
	ID        string // default "auth0|" + a hash of the email
	FirstName string
	LastName  string
	// Teams are the names of the user's teams (Port's user "teams").
	Teams []string
	// TeamIdentifiers are the identifiers of the same teams (Port's
	// "teamsIdentifiers"), the values an entity's "team" holds. Nil means
	// each team's identifier is its name.
	TeamIdentifiers []string
	Roles           []string // default ["Member"]
}

// Invoker is the user who executes an action.
type Invoker struct {
	Email     string
	FirstName string // default from Config.Users
	LastName  string
}

// Invocation describes one execution of a self-service action.
type Invocation struct {
	Action    string // action identifier
	Blueprint string
	Operation string // CREATE, DAY-2 or DELETE; default CREATE without Entity, DAY-2 with
	User      Invoker
	Entity    *Entity        // the entity a DAY-2 or DELETE action runs on; nil for CREATE
	Inputs    map[string]any // user inputs, sent as payload.properties
}

// Entity is a catalog entity as Port stores it.
type Entity struct {
	Identifier string         `json:"identifier"`
	Title      string         `json:"title"`
	Icon       string         `json:"icon,omitempty"`
	Blueprint  string         `json:"blueprint"`
	Team       []string       `json:"team"`
	Properties map[string]any `json:"properties"`
	Relations  map[string]any `json:"relations"`
	CreatedAt  time.Time      `json:"createdAt"`
	CreatedBy  string         `json:"createdBy"`
	UpdatedAt  time.Time      `json:"updatedAt"`
	UpdatedBy  string         `json:"updatedBy"`
}

// Run statuses as Port reports them.
const (
	StatusInProgress = "IN_PROGRESS"
	StatusSuccess    = "SUCCESS"
	StatusFailure    = "FAILURE"
)

// RunRecord is everything the simulator knows about one action run.
type RunRecord struct {
	ID            string
	Action        string
	Blueprint     string
	Entity        string // identifier of the entity the action ran on, "" for CREATE
	Operation     string
	Inputs        map[string]any
	UserEmail     string
	Status        string // IN_PROGRESS, SUCCESS or FAILURE
	StatusLabel   string
	Links         []string // the last link value PATCHed (Port replaces, never appends)
	Summary       string
	ExternalRunID string
	Logs          []LogLine // accepted log lines only
	// TerminalAttempts counts every request that tried to set a terminal status (PATCH
	// status or a log's terminationStatus), accepted or refused.
	TerminalAttempts int
	Events           []Event  // every webhook delivery and API call that named this run, in order
	Entities         []string // "blueprint/identifier" upserted with ?run_id=this run
	CreatedAt        time.Time
	EndedAt          time.Time // zero while IN_PROGRESS
}

// LogLine is one accepted POST /v1/actions/runs/{id}/logs.
type LogLine struct {
	Message           string
	TerminationStatus string
	StatusLabel       string
	At                time.Time
}

// Event is one thing that happened to a run. Seq is shared with Calls, so events of different
// runs and the call log can be ordered against each other.
type Event struct {
	Seq    int
	Kind   string // webhook, get, patch, log, entity
	Status int    // HTTP status answered (for webhook: the status paved answered; 0 = no answer)
	Detail string // request body, or the delivery error
}

// Call is one API request the simulator served.
type Call struct {
	Seq    int
	Method string
	Path   string // path and query
	Status int    // 0 when the client went away before an answer
	At     time.Time
}

func CloneEntity(e Entity) Entity {
	e.Team = append([]string{}, e.Team...)
	e.Properties = CloneMap(e.Properties)
	e.Relations = CloneMap(e.Relations)
	if e.Properties == nil {
		e.Properties = map[string]any{}
	}
	if e.Relations == nil {
		e.Relations = map[string]any{}
	}
	return e
}

// CloneMap deep-copies JSON-shaped data. Everything the simulator stores in maps came
// through encoding/json, so a JSON round trip copies it exactly.
func CloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	raw, _ := json.Marshal(m) // cannot fail: the map holds decoded JSON values only
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	return out
}
