package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/paved-idp/paved/internal/portal/port"
	"github.com/paved-idp/paved/internal/portal/port/internal/clip"
	"github.com/paved-idp/paved/internal/run"
)

// Errors of Decode; both mean HTTP 400.
var (
	ErrNotJSON = errors.New("port: body is not JSON")
	ErrNotARun = errors.New("port: body is not a Port action run")
)

// Invocation is one decoded Port action run.
type Invocation struct {
	Request   run.Request
	Operation run.Operation
	// Blueprint is the action's blueprint (context.blueprint), the one the
	// run's results are written to.
	Blueprint string
}

// wireRun is Port's default WEBHOOK body. Port's documented sample:
//
//	{"action": "<action identifier>", "resourceType": "run", "status": "TRIGGERED",
//	 "trigger": {"by": {"orgId", "userId", "user": {"email", "firstName", "lastName", ...}}, "origin", "at"},
//	 "context": {"entity": "<identifier>"|null, "blueprint", "runId"},
//	 "payload": {"entity": {...}|null, "action": {"invocationMethod": {...}, "trigger": "DAY-2"},
//	             "properties": {...inputs}, "censoredProperties": []}}
//
// Older (v1 actions) bodies carried the identifier in payload.action, with
// the action's full definition; both are accepted. Fields whose shape differs
// between the two are kept raw and read by hand.
type wireRun struct {
	Action       json.RawMessage `json:"action"`
	ResourceType *string         `json:"resourceType"`
	Status       string          `json:"status"`
	Trigger      struct {
		By struct {
			OrgID  string `json:"orgId"`
			UserID string `json:"userId"`
			User   *struct {
				Email     string `json:"email"`
				FirstName string `json:"firstName"`
				LastName  string `json:"lastName"`
			} `json:"user"`
		} `json:"by"`
		Origin string `json:"origin"`
	} `json:"trigger"`
	Context struct {
		Entity    json.RawMessage `json:"entity"`
		Blueprint string          `json:"blueprint"`
		RunID     string          `json:"runId"`
	} `json:"context"`
	Payload struct {
		Entity     json.RawMessage `json:"entity"`
		Action     json.RawMessage `json:"action"`
		Properties map[string]any  `json:"properties"`
	} `json:"payload"`
}

type wireEntity struct {
	Identifier string          `json:"identifier"`
	Title      string          `json:"title"`
	Blueprint  string          `json:"blueprint"`
	Team       json.RawMessage `json:"team"`
	Properties map[string]any  `json:"properties"`
}

// wireAction is payload.action (or a top-level action object): the
// identifier appears only in older bodies, and trigger is either the
// operation itself or, in an action definition, {"operation": ...}.
type wireAction struct {
	Identifier string          `json:"identifier"`
	Trigger    json.RawMessage `json:"trigger"`
}

// Decode reads Port's default WEBHOOK body into a run request. It fails
// with ErrNotJSON for malformed JSON and with ErrNotARun, naming the field,
// for JSON that is not a Port action run.
func Decode(body []byte) (Invocation, error) {
	if !json.Valid(body) {
		return Invocation{}, ErrNotJSON
	}
	var w wireRun
	if err := json.Unmarshal(body, &w); err != nil {
		return Invocation{}, notARun(fieldOf(err))
	}

	switch {
	case w.ResourceType == nil:
		return Invocation{}, notARun(`resourceType is missing, want "run"`)
	case *w.ResourceType != "run":
		return Invocation{}, notARun(fmt.Sprintf("resourceType is %q, want \"run\"", clip.String(*w.ResourceType, 40)))
	case strings.TrimSpace(w.Context.RunID) == "":
		return Invocation{}, notARun("context.runId is missing")
	}

	payloadAction, err := decodeAction(w.Payload.Action, "payload.action")
	if err != nil {
		return Invocation{}, err
	}
	action, err := actionIdentifier(w.Action, payloadAction)
	if err != nil {
		return Invocation{}, err
	}
	op, err := operation(payloadAction.Trigger)
	if err != nil {
		return Invocation{}, err
	}

	ent, err := decodeEntity(w.Payload.Entity, w.Context.Entity, w.Context.Blueprint)
	if err != nil {
		return Invocation{}, err
	}
	if op != run.Create && ent.Identifier == "" {
		return Invocation{}, notARun(fmt.Sprintf("payload.entity is missing for a %s action", op))
	}

	inv := Invocation{
		Operation: op,
		Blueprint: w.Context.Blueprint,
		Request: run.Request{
			Portal:      port.PortalName,
			PortalRunID: w.Context.RunID,
			Action:      action,
			Entity:      ent,
			Inputs:      w.Payload.Properties,
		},
	}
	if inv.Blueprint == "" {
		inv.Blueprint = ent.Blueprint
	}
	if inv.Request.Inputs == nil {
		// Downstream schema checks and templates expect an object.
		inv.Request.Inputs = map[string]any{}
	}
	// Runs started by a machine token carry only trigger.by.userId; the
	// policy decides whether an anonymous run may proceed.
	if u := w.Trigger.By.User; u != nil {
		inv.Request.User = run.User{
			Email: strings.TrimSpace(u.Email),
			Name:  strings.TrimSpace(u.FirstName + " " + u.LastName),
		}
	}
	return inv, nil
}

func notARun(why string) error { return fmt.Errorf("%w: %s", ErrNotARun, why) }

// fieldOf names the field a json.Unmarshal error is about.
func fieldOf(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "body is not a JSON object"
		}
		return fmt.Sprintf("%s is a JSON %s, want %s", te.Field, te.Value, te.Type)
	}
	return err.Error()
}

// isNull reports whether a raw field is absent, null or an empty object;
// Port's templates turn an empty entity into {} or null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return true
	}
	var m map[string]json.RawMessage
	return json.Unmarshal(t, &m) == nil && len(m) == 0
}

func decodeAction(raw json.RawMessage, field string) (wireAction, error) {
	var a wireAction
	if isNull(raw) {
		return a, nil
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, notARun(fmt.Sprintf("%s: %s", field, fieldOf(err)))
	}
	return a, nil
}

// actionIdentifier takes the top-level "action" (a string in Port's current
// default body, an object in some older ones) and falls back to
// payload.action.identifier.
func actionIdentifier(top json.RawMessage, payload wireAction) (string, error) {
	var id string
	if !isNull(top) {
		if err := json.Unmarshal(top, &id); err != nil {
			a, err := decodeAction(top, "action")
			if err != nil {
				return "", err
			}
			id = a.Identifier
		}
	}
	if strings.TrimSpace(id) == "" {
		id = payload.Identifier
	}
	if strings.TrimSpace(id) == "" {
		return "", notARun("action identifier is missing (action or payload.action.identifier)")
	}
	return id, nil
}

// operation reads payload.action.trigger: "CREATE", "DAY-2" or "DELETE", or
// an action definition's trigger object {"operation": ...}.
func operation(raw json.RawMessage) (run.Operation, error) {
	if isNull(raw) {
		return "", notARun("payload.action.trigger is missing, want CREATE, DAY-2 or DELETE")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var t struct {
			Operation string `json:"operation"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return "", notARun("payload.action.trigger is neither a string nor an object")
		}
		s = t.Operation
	}
	switch op := run.Operation(strings.ToUpper(strings.TrimSpace(s))); op {
	case run.Create, run.Day2, run.Delete:
		return op, nil
	}
	return "", notARun(fmt.Sprintf("payload.action.trigger is %q, want CREATE, DAY-2 or DELETE", clip.String(s, 40)))
}

// decodeEntity reads payload.entity; when a template left it out but
// context.entity names the entity, that identifier is used.
func decodeEntity(raw, ctxEntity json.RawMessage, ctxBlueprint string) (run.Entity, error) {
	if isNull(raw) {
		var id string
		if !isNull(ctxEntity) && json.Unmarshal(ctxEntity, &id) != nil {
			return run.Entity{}, notARun("context.entity is not a string")
		}
		if id == "" {
			return run.Entity{}, nil
		}
		return run.Entity{Identifier: id, Blueprint: ctxBlueprint}, nil
	}
	var e wireEntity
	if err := json.Unmarshal(raw, &e); err != nil {
		return run.Entity{}, notARun("payload.entity: " + fieldOf(err))
	}
	team, err := teams(e.Team)
	if err != nil {
		return run.Entity{}, err
	}
	return run.Entity{
		Identifier: e.Identifier,
		Blueprint:  e.Blueprint,
		Title:      e.Title,
		Team:       team,
		Properties: e.Properties,
	}, nil
}

// teams reads an entity's team, which Port allows as one string or a list.
func teams(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, notARun("payload.entity.team is neither a string nor a list of strings")
	}
	if one == "" {
		return nil, nil
	}
	return []string{one}, nil
}
