package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"

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

// Decode reads a Port action run into a run request: Port's default WEBHOOK
// body, or the same shape from the explicit body paved renders for its
// actions (internal/render), which builds it from trigger data as Port's
// migration of old actions does. It fails with ErrNotJSON for malformed JSON
// and with ErrNotARun, naming the field, for JSON that is not a Port action
// run. Errors never quote more than a clipped piece of the body.
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
// therefore read key by key (see object) and only Port's spelling counts.
func Decode(body []byte) (Invocation, error) {
	if !json.Valid(body) {
		return Invocation{}, ErrNotJSON
	}
	if kind(body) != "object" {
		return Invocation{}, notARun("body is not a JSON object")
	}
	top, err := objectAt(body, "", "resourceType", "context", "payload", "action", "trigger")
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

	runCtx, err := top.object("context", "runId", "blueprint", "entity")
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

	payload, err := top.object("payload", "action", "entity", "properties")
	if err != nil {
		return Invocation{}, err
	}
	payloadAction, err := payload.object("action", "identifier", "trigger")
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

// object is what Decode reads from one JSON object: the value of each key
// it asked for, with the object's path in the body for error messages (""
// for the body itself).
//
// The body is validated once (json.Valid in Decode) and each object Decode
// reads is then scanned once for the keys it wants, without decoding the
// rest. Unmarshalling every level into map[string]json.RawMessage instead
// re-validated each nested object once per level above it.
type object struct {
	path string
	size int // members, whatever their keys
	keys [maxKeys]string
	vals [maxKeys]json.RawMessage
}

// maxKeys is the most keys Decode reads from one object (payload.entity).
const maxKeys = 5

// objectAt reads keys from raw, found at path. Absent and null read as an
// empty object: Port's templates turn a missing entity into null or {}.
func objectAt(raw json.RawMessage, path string, keys ...string) (object, error) {
	o := object{path: path}
	if copy(o.keys[:], keys) < len(keys) {
		panic("webhook: more than maxKeys keys for object " + path)
	}
	if isNull(raw) {
		return o, nil
	}
	if kind(raw) != "object" {
		return o, typeError(path, raw, "object")
	}
	for key, val := range members(raw) {
		o.size++
		for i, k := range keys {
			if string(key) == k {
				o.vals[i] = val // a repeated key keeps its last value
			}
		}
	}
	return o, nil
}

// members yields the members of raw, a valid JSON object, in order: the
// key unquoted, the value as sent without the space around it.
func members(raw []byte) iter.Seq2[[]byte, json.RawMessage] {
	return func(yield func([]byte, json.RawMessage) bool) {
		i := skipSpace(raw, skipSpace(raw, 0)+1) // past '{'
		for raw[i] != '}' {
			end := stringEnd(raw, i)
			key := raw[i+1 : end-1]
			if !plain(key) {
				key = []byte(unquote(raw[i:end])) // rare
			}
			i = skipSpace(raw, skipSpace(raw, end)+1) // past ':'
			end = valueEnd(raw, i)
			if !yield(key, raw[i:end:end]) {
				return
			}
			if i = skipSpace(raw, end); raw[i] == ',' {
				i = skipSpace(raw, i+1)
			}
		}
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the valid JSON string at b[i].
func stringEnd(b []byte, i int) int {
	for i++; ; {
		q := i + bytes.IndexByte(b[i:], '"')
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for q-n > i && b[q-n-1] == '\\' {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
}

// valueEnd returns the index just past the valid JSON value at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		// Valid JSON: brackets balance once strings are stepped over.
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	// A number, true, false or null runs to the next delimiter.
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// field is the body path of key in o.
func (o object) field(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

func (o object) empty() bool { return o.size == 0 }

// raw is the value of key, nil if absent. The keys o was read for are
// constants, so a key not among them is a bug: raw panics, for the tests to
// meet the first time they pass that line.
func (o object) raw(key string) json.RawMessage {
	for i, k := range o.keys {
		if k == key {
			return o.vals[i]
		}
	}
	panic("webhook: " + o.field(key) + " was not among the keys read")
}

func (o object) object(key string, keys ...string) (object, error) {
	return objectAt(o.raw(key), o.field(key), keys...)
}

// str reads a string member; absent or null reads as "".
func (o object) str(key string) (string, error) {
	raw := o.raw(key)
	if isNull(raw) {
		return "", nil
	}
	if kind(raw) != "string" {
		return "", typeError(o.field(key), raw, "string")
	}
	return unquote(raw), nil
}

// unquote reads a valid JSON string as json.Unmarshal does.
func unquote(raw []byte) string {
	if s := raw[1 : len(raw)-1]; plain(s) {
		return string(s)
	}
	var s string
	_ = json.Unmarshal(raw, &s) // cannot fail on a valid string
	return s
}

// plain reports whether the inside of a JSON string is its own unquoted
// form: no escapes, and valid UTF-8 (json.Unmarshal replaces invalid bytes
// with U+FFFD).
func plain(s []byte) bool { return bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) }

// anyMap reads a free-form object member (inputs, entity properties); absent
// or null reads as nil. Its keys are data, not Port's field names.
func (o object) anyMap(key string) (map[string]any, error) {
	raw := o.raw(key)
	if isNull(raw) {
		return nil, nil
	}
	if kind(raw) != "object" {
		return nil, typeError(o.field(key), raw, "object")
	}
	// As json.Unmarshal into map[string]any read it, down to failing on a
	// number beyond float64 even in a repeated key's discarded value.
	m := map[string]any{}
	for k, val := range members(raw) {
		v, ok := anyValue(val)
		if !ok {
			return nil, typeError(o.field(key), raw, "object")
		}
		m[string(k)] = v
	}
	return m, nil
}

// anyValue reads a valid raw value as json.Unmarshal into any does; false
// for a number beyond float64.
func anyValue(raw []byte) (any, bool) {
	switch raw[0] {
	case '"':
		return unquote(raw), true
	case 't':
		return true, true
	case 'f':
		return false, true
	case 'n':
		return nil, true
	case '{', '[':
		var v any
		err := json.Unmarshal(raw, &v)
		return v, err == nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
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
		a, err := top.object("action", "identifier")
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
		t, err := payloadAction.object("trigger", "operation")
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
	e, err := payload.object("entity", "identifier", "blueprint", "title", "team", "properties")
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
	if out.Blueprint == "" {
		// An entity from trigger data (a body template's {{ .entity }}) may
		// leave its blueprint out; it is the action's.
		out.Blueprint = ctxBlueprint
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
	switch raw := entity.raw("team"); kind(raw) {
	case "null", "nothing":
		return nil, nil
	case "string":
		if one := unquote(raw); one != "" {
			return []string{one}, nil
		}
		return nil, nil
	case "array":
		// As json.Unmarshal into []string: [] is an empty list, not nil,
		// and a null item reads as "".
		list := []string{}
		for i := skipSpace(raw, 1); raw[i] != ']'; {
			end := valueEnd(raw, i)
			switch item := raw[i:end]; kind(item) {
			case "string":
				list = append(list, unquote(item))
			case "null":
				list = append(list, "")
			default:
				return nil, notTeams(entity)
			}
			if i = skipSpace(raw, end); raw[i] == ',' {
				i = skipSpace(raw, i+1)
			}
		}
		return list, nil
	}
	return nil, notTeams(entity)
}

func notTeams(entity object) error {
	return notARun(entity.field("team") + " is neither a string nor a list of strings")
}

// decodeUser reads trigger.by.user. Runs started by a machine token carry
// only trigger.by.userId; the policy decides whether an anonymous run may
// proceed.
func decodeUser(top object) (run.User, error) {
	trigger, err := top.object("trigger", "by")
	if err != nil {
		return run.User{}, err
	}
	by, err := trigger.object("by", "user")
	if err != nil {
		return run.User{}, err
	}
	u, err := by.object("user", "email", "firstName", "lastName")
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
