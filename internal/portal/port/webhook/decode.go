package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/paved-idp/paved/internal/clip"
	"github.com/paved-idp/paved/internal/portal/port"
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

// Decode reads Port's default WEBHOOK body into a run request. It fails
// with ErrNotJSON for malformed JSON and with ErrNotARun, naming the field,
// for JSON that is not a Port action run. Errors never quote more than a
// clipped piece of the body.
//
// Port's documented sample:
//
//	{"action": "<action identifier>", "resourceType": "run", "status": "TRIGGERED",
//	 "trigger": {"by": {"orgId", "userId", "user": {"email", "firstName", "lastName", ...}}, "origin", "at"},
//	 "context": {"entity": "<identifier>"|null, "blueprint", "runId"},
//	 "payload": {"entity": {...}|null, "action": {"invocationMethod": {...}, "trigger": "DAY-2"},
//	             "properties": {...inputs}, "censoredProperties": []}}
//
// Older (v1 actions) bodies carried the identifier in payload.action, with
// the action's full definition; both are accepted.
//
// Every key is matched exactly. encoding/json matches struct fields without
// regard to case, so with structs a later "ACTION" would override "action"
// and a body of wrongly cased keys would pass as a run; objects are
// therefore read as maps (see object) and only Port's spelling counts.
func Decode(body []byte) (Invocation, error) {
	if !json.Valid(body) {
		return Invocation{}, ErrNotJSON
	}
	if kind(body) != "object" {
		return Invocation{}, notARun("body is not a JSON object")
	}
	top, err := objectAt(body, "")
	if err != nil {
		return Invocation{}, err
	}

	if isNull(top.raw("resourceType")) {
		return Invocation{}, notARun(`resourceType is missing, want "run"`)
	}
	resourceType, err := top.str("resourceType")
	if err != nil {
		return Invocation{}, err
	}
	if resourceType != "run" {
		return Invocation{}, notARun(fmt.Sprintf("resourceType is %q, want \"run\"", clip.String(resourceType, 40)))
	}

	runCtx, err := top.object("context")
	if err != nil {
		return Invocation{}, err
	}
	runID, err := runCtx.str("runId")
	if err != nil {
		return Invocation{}, err
	}
	if strings.TrimSpace(runID) == "" {
		return Invocation{}, notARun("context.runId is missing")
	}
	// The run id keys the stored run and goes into Port URLs: refuse any
	// id that is not shaped like Port's before anything else uses it.
	if err := port.ValidRunID(runID); err != nil {
		return Invocation{}, notARun("context.runId: " + err.Error())
	}
	blueprint, err := runCtx.str("blueprint")
	if err != nil {
		return Invocation{}, err
	}

	payload, err := top.object("payload")
	if err != nil {
		return Invocation{}, err
	}
	payloadAction, err := payload.object("action")
	if err != nil {
		return Invocation{}, err
	}
	action, err := actionIdentifier(top, payloadAction)
	if err != nil {
		return Invocation{}, err
	}
	op, err := operation(payloadAction)
	if err != nil {
		return Invocation{}, err
	}

	ent, err := decodeEntity(payload, runCtx, blueprint)
	if err != nil {
		return Invocation{}, err
	}
	if op != run.Create && ent.Identifier == "" {
		return Invocation{}, notARun(fmt.Sprintf("payload.entity is missing for a %s action", op))
	}
	inputs, err := payload.anyMap("properties")
	if err != nil {
		return Invocation{}, err
	}
	if inputs == nil {
		// Downstream schema checks and templates expect an object.
		inputs = map[string]any{}
	}
	user, err := decodeUser(top)
	if err != nil {
		return Invocation{}, err
	}

	inv := Invocation{
		Operation: op,
		Blueprint: blueprint,
		Request: run.Request{
			Portal:      port.PortalName,
			PortalRunID: runID,
			Action:      action,
			User:        user,
			Entity:      ent,
			Inputs:      inputs,
		},
	}
	if inv.Blueprint == "" {
		inv.Blueprint = ent.Blueprint
	}
	return inv, nil
}

func notARun(why string) error { return fmt.Errorf("%w: %s", ErrNotARun, why) }

// object is one JSON object's members by exact key, with the path of the
// object in the body for error messages ("" for the body itself). Decoding
// into a map keeps keys as sent; a repeated key keeps its last value.
type object struct {
	path    string
	members map[string]json.RawMessage
}

// objectAt reads raw, found at path, as an object. Absent and null read as
// an empty object: Port's templates turn a missing entity into null or {}.
func objectAt(raw json.RawMessage, path string) (object, error) {
	o := object{path: path}
	if isNull(raw) {
		return o, nil
	}
	if kind(raw) != "object" {
		return o, typeError(path, raw, "object")
	}
	if err := json.Unmarshal(raw, &o.members); err != nil {
		// Unreachable for valid JSON; kept so a surprise is not silent.
		return o, notARun(fmt.Sprintf("%s: %s", path, clip.String(err.Error(), 80)))
	}
	return o, nil
}

// field is the body path of key in o.
func (o object) field(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

func (o object) empty() bool                       { return len(o.members) == 0 }
func (o object) raw(key string) json.RawMessage    { return o.members[key] }
func (o object) object(key string) (object, error) { return objectAt(o.members[key], o.field(key)) }

// str reads a string member; absent or null reads as "".
func (o object) str(key string) (string, error) {
	raw := o.members[key]
	if isNull(raw) {
		return "", nil
	}
	var s string
	if kind(raw) != "string" || json.Unmarshal(raw, &s) != nil {
		return "", typeError(o.field(key), raw, "string")
	}
	return s, nil
}

// anyMap reads a free-form object member (inputs, entity properties); absent
// or null reads as nil. Its keys are data, not Port's field names.
func (o object) anyMap(key string) (map[string]any, error) {
	raw := o.members[key]
	if isNull(raw) {
		return nil, nil
	}
	var m map[string]any
	if kind(raw) != "object" || json.Unmarshal(raw, &m) != nil {
		return nil, typeError(o.field(key), raw, "object")
	}
	return m, nil
}

// typeError names the field and the kinds, never the value: the value may
// be as large as the body.
func typeError(path string, raw json.RawMessage, want string) error {
	if path == "" {
		path = "body"
	}
	return notARun(fmt.Sprintf("%s is a JSON %s, want %s", path, kind(raw), want))
}

// kind names the JSON type of a valid raw value by its first byte.
func kind(raw []byte) string {
	t := bytes.TrimLeft(raw, " \t\r\n")
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// isNull reports whether a raw member is absent or null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// actionIdentifier takes the top-level "action" (a string in Port's current
// default body, an object in some older ones) and falls back to
// payload.action.identifier.
func actionIdentifier(top, payloadAction object) (string, error) {
	var id string
	switch raw := top.raw("action"); kind(raw) {
	case "string":
		var err error
		if id, err = top.str("action"); err != nil {
			return "", err
		}
	case "object":
		a, err := top.object("action")
		if err != nil {
			return "", err
		}
		if id, err = a.str("identifier"); err != nil {
			return "", err
		}
	case "null", "nothing":
	default:
		return "", typeError("action", raw, "string or object")
	}
	if strings.TrimSpace(id) == "" {
		var err error
		if id, err = payloadAction.str("identifier"); err != nil {
			return "", err
		}
	}
	if strings.TrimSpace(id) == "" {
		return "", notARun("action identifier is missing (action or payload.action.identifier)")
	}
	return id, nil
}

// operation reads payload.action.trigger: "CREATE", "DAY-2" or "DELETE", or
// an action definition's trigger object {"operation": ...}.
func operation(payloadAction object) (run.Operation, error) {
	var s string
	switch raw := payloadAction.raw("trigger"); kind(raw) {
	case "string":
		var err error
		if s, err = payloadAction.str("trigger"); err != nil {
			return "", err
		}
	case "object":
		t, err := payloadAction.object("trigger")
		if err != nil {
			return "", err
		}
		if s, err = t.str("operation"); err != nil {
			return "", err
		}
	case "null", "nothing":
		return "", notARun("payload.action.trigger is missing, want CREATE, DAY-2 or DELETE")
	default:
		return "", notARun("payload.action.trigger is neither a string nor an object")
	}
	switch op := run.Operation(strings.ToUpper(strings.TrimSpace(s))); op {
	case run.Create, run.Day2, run.Delete:
		return op, nil
	}
	return "", notARun(fmt.Sprintf("payload.action.trigger is %q, want CREATE, DAY-2 or DELETE", clip.String(s, 40)))
}

// decodeEntity reads payload.entity; when a template left it out (absent,
// null or {}) but context.entity names the entity, that identifier is used.
func decodeEntity(payload, runCtx object, ctxBlueprint string) (run.Entity, error) {
	e, err := payload.object("entity")
	if err != nil {
		return run.Entity{}, err
	}
	if e.empty() {
		if raw := runCtx.raw("entity"); !isNull(raw) && kind(raw) != "string" {
			return run.Entity{}, notARun("context.entity is not a string")
		}
		id, err := runCtx.str("entity")
		if err != nil || id == "" {
			return run.Entity{}, err
		}
		return run.Entity{Identifier: id, Blueprint: ctxBlueprint}, nil
	}
	var out run.Entity
	for _, f := range []struct {
		key string
		dst *string
	}{{"identifier", &out.Identifier}, {"blueprint", &out.Blueprint}, {"title", &out.Title}} {
		if *f.dst, err = e.str(f.key); err != nil {
			return run.Entity{}, err
		}
	}
	if out.Team, err = teams(e); err != nil {
		return run.Entity{}, err
	}
	if out.Properties, err = e.anyMap("properties"); err != nil {
		return run.Entity{}, err
	}
	return out, nil
}

// teams reads an entity's team, which Port allows as one string or a list.
func teams(entity object) ([]string, error) {
	raw := entity.raw("team")
	if isNull(raw) {
		return nil, nil
	}
	var list []string
	if kind(raw) == "array" && json.Unmarshal(raw, &list) == nil {
		return list, nil
	}
	var one string
	if kind(raw) != "string" || json.Unmarshal(raw, &one) != nil {
		return nil, notARun(entity.field("team") + " is neither a string nor a list of strings")
	}
	if one == "" {
		return nil, nil
	}
	return []string{one}, nil
}

// decodeUser reads trigger.by.user. Runs started by a machine token carry
// only trigger.by.userId; the policy decides whether an anonymous run may
// proceed.
func decodeUser(top object) (run.User, error) {
	trigger, err := top.object("trigger")
	if err != nil {
		return run.User{}, err
	}
	by, err := trigger.object("by")
	if err != nil {
		return run.User{}, err
	}
	u, err := by.object("user")
	if err != nil || u.empty() {
		return run.User{}, err
	}
	var email, first, last string
	for _, f := range []struct {
		key string
		dst *string
	}{{"email", &email}, {"firstName", &first}, {"lastName", &last}} {
		if *f.dst, err = u.str(f.key); err != nil {
			return run.User{}, err
		}
	}
	return run.User{Email: strings.TrimSpace(email), Name: strings.TrimSpace(first + " " + last)}, nil
}
