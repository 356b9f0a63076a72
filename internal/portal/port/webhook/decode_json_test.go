package webhook

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/run"
)

// Decode scans the body itself instead of decoding it with encoding/json;
// these tests pin the JSON-level behaviour it must keep from
// json.Unmarshal: exact keys, the last of repeated keys, the error for
// each field at each level, unquoting, and numbers.

// jsonBase is a small run with every field Decode reads, each spelled so
// that one strings.Replace edits exactly one field.
const jsonBase = `{"action":"scale","resourceType":"run",` +
	`"trigger":{"by":{"user":{"email":"d@example.com","firstName":"Dana","lastName":"Levi"}}},` +
	`"context":{"entity":"svc","blueprint":"service","runId":"r_1"},` +
	`"payload":{"entity":{"identifier":"svc","blueprint":"svc-bp","title":"Svc","team":["t"],"properties":{"p":1}},` +
	`"action":{"identifier":"scale2","trigger":"DAY-2"},"properties":{"i":"x"}}}`

var jsonBaseWant = Invocation{
	Operation: run.Day2,
	Blueprint: "service",
	Request: run.Request{
		Portal: "port", PortalRunID: "r_1", Action: "scale",
		User: run.User{Email: "d@example.com", Name: "Dana Levi"},
		Entity: run.Entity{Identifier: "svc", Blueprint: "svc-bp", Title: "Svc",
			Team: []string{"t"}, Properties: map[string]any{"p": float64(1)}},
		Inputs: map[string]any{"i": "x"},
	},
}

// editBase applies old→new replacements, each of which must match once.
func editBase(t *testing.T, pairs ...string) []byte {
	t.Helper()
	body := jsonBase
	for i := 0; i < len(pairs); i += 2 {
		if n := strings.Count(body, pairs[i]); n != 1 {
			t.Fatalf("%q occurs %d times in the base body", pairs[i], n)
		}
		body = strings.Replace(body, pairs[i], pairs[i+1], 1)
	}
	return []byte(body)
}

func TestDecodeJSONBase(t *testing.T) {
	got, err := Decode([]byte(jsonBase))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, jsonBaseWant) {
		t.Fatalf("Decode =\n%+v\nwant\n%+v", got, jsonBaseWant)
	}
}

// TestDecodeTypeErrors: a value of the wrong JSON type is refused at every
// level with the same message, naming the field and the kinds only.
func TestDecodeTypeErrors(t *testing.T) {
	entity := `"entity":{"identifier":"svc","blueprint":"svc-bp","title":"Svc","team":["t"],"properties":{"p":1}}`
	tests := []struct {
		name  string
		edits []string
		want  string
	}{
		{"resourceType", []string{`"resourceType":"run"`, `"resourceType":7`}, "resourceType is a JSON number, want string"},
		{"context", []string{`"context":{"entity":"svc","blueprint":"service","runId":"r_1"}`, `"context":[]`}, "context is a JSON array, want object"},
		{"context.runId", []string{`"runId":"r_1"`, `"runId":1`}, "context.runId is a JSON number, want string"},
		{"context.blueprint", []string{`"blueprint":"service"`, `"blueprint":true`}, "context.blueprint is a JSON boolean, want string"},
		{"context.entity", []string{entity, `"entity":{}`, `"entity":"svc"`, `"entity":3`}, "context.entity is not a string"},
		{"payload", []string{`"payload":{`, `"payload":"x","p":{`}, "payload is a JSON string, want object"},
		{"payload.action", []string{`"action":{"identifier":"scale2","trigger":"DAY-2"}`, `"action":5`}, "payload.action is a JSON number, want object"},
		{"action", []string{`"action":"scale"`, `"action":[]`}, "action is a JSON array, want string or object"},
		{"action.identifier", []string{`"action":"scale"`, `"action":{"identifier":2}`}, "action.identifier is a JSON number, want string"},
		{"payload.action.identifier", []string{`"action":"scale"`, `"action":""`, `"identifier":"scale2"`, `"identifier":{}`},
			"payload.action.identifier is a JSON object, want string"},
		{"payload.action.trigger", []string{`"trigger":"DAY-2"`, `"trigger":1`}, "payload.action.trigger is neither a string nor an object"},
		{"payload.action.trigger.operation", []string{`"trigger":"DAY-2"`, `"trigger":{"operation":false}`},
			"payload.action.trigger.operation is a JSON boolean, want string"},
		{"payload.entity", []string{entity, `"entity":"svc"`}, "payload.entity is a JSON string, want object"},
		{"payload.entity.identifier", []string{`"identifier":"svc"`, `"identifier":1`}, "payload.entity.identifier is a JSON number, want string"},
		{"payload.entity.blueprint", []string{`"blueprint":"svc-bp"`, `"blueprint":{}`}, "payload.entity.blueprint is a JSON object, want string"},
		{"payload.entity.title", []string{`"title":"Svc"`, `"title":[]`}, "payload.entity.title is a JSON array, want string"},
		{"payload.entity.team object", []string{`"team":["t"]`, `"team":{}`}, "payload.entity.team is neither a string nor a list of strings"},
		{"payload.entity.team item", []string{`"team":["t"]`, `"team":["t",2]`}, "payload.entity.team is neither a string nor a list of strings"},
		{"payload.entity.properties", []string{`"properties":{"p":1}`, `"properties":"p"`}, "payload.entity.properties is a JSON string, want object"},
		{"payload.properties", []string{`"properties":{"i":"x"}`, `"properties":true`}, "payload.properties is a JSON boolean, want object"},
		{"trigger", []string{`"trigger":{"by"`, `"trigger":"UI","t":{"by"`}, "trigger is a JSON string, want object"},
		{"trigger.by", []string{`"by":{`, `"by":1,"b":{`}, "trigger.by is a JSON number, want object"},
		{"trigger.by.user", []string{`"user":{`, `"user":[],"u":{`}, "trigger.by.user is a JSON array, want object"},
		{"trigger.by.user.email", []string{`"email":"d@example.com"`, `"email":0`}, "trigger.by.user.email is a JSON number, want string"},
		{"trigger.by.user.firstName", []string{`"firstName":"Dana"`, `"firstName":false`}, "trigger.by.user.firstName is a JSON boolean, want string"},
		{"trigger.by.user.lastName", []string{`"lastName":"Levi"`, `"lastName":{}`}, "trigger.by.user.lastName is a JSON object, want string"},
		// Fields are checked in a fixed order: the run id before the user.
		{"first error wins", []string{`"runId":"r_1"`, `"runId":1`, `"email":"d@example.com"`, `"email":0`},
			"context.runId is a JSON number, want string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(editBase(t, tt.edits...))
			if want := "port: body is not a Port action run: " + tt.want; err == nil || err.Error() != want {
				t.Fatalf("Decode error = %v\nwant %s", err, want)
			}
		})
	}
}

// TestDecodeRepeatedKeys: at every level a repeated key keeps its last
// value, whatever the earlier one was.
func TestDecodeRepeatedKeys(t *testing.T) {
	tests := []struct {
		name  string
		edits []string
		edit  func(*Invocation) // jsonBaseWant changed as the body says
	}{
		{"resourceType", []string{`"resourceType":"run"`, `"resourceType":7,"resourceType":"run"`}, nil},
		{"context", []string{`"context":{`, `"context":{"runId":"r_0","blueprint":"x"},"context":{`}, nil},
		{"context.runId", []string{`"runId":"r_1"`, `"runId":1,"runId":"r_2"`}, func(w *Invocation) { w.Request.PortalRunID = "r_2" }},
		{"action", []string{`"action":"scale"`, `"action":"other","action":"scale3"`}, func(w *Invocation) { w.Request.Action = "scale3" }},
		{"payload", []string{`"payload":{`, `"payload":7,"payload":{`}, nil},
		{"payload.action.trigger", []string{`"trigger":"DAY-2"`, `"trigger":"DAY-2","trigger":"DELETE"`}, func(w *Invocation) { w.Operation = run.Delete }},
		{"payload.entity.identifier", []string{`"identifier":"svc"`, `"identifier":"a","identifier":"svc2"`},
			func(w *Invocation) { w.Request.Entity.Identifier = "svc2" }},
		{"payload.entity.team", []string{`"team":["t"]`, `"team":7,"team":"u"`}, func(w *Invocation) { w.Request.Entity.Team = []string{"u"} }},
		{"payload.entity.properties", []string{`"properties":{"p":1}`, `"properties":[],"properties":{"p":2}`},
			func(w *Invocation) { w.Request.Entity.Properties = map[string]any{"p": float64(2)} }},
		{"input", []string{`"properties":{"i":"x"}`, `"properties":{"i":"x","j":1,"i":[]}`},
			func(w *Invocation) { w.Request.Inputs = map[string]any{"i": []any{}, "j": float64(1)} }},
		{"trigger.by.user.email", []string{`"email":"d@example.com"`, `"email":1,"email":"e@example.com"`},
			func(w *Invocation) { w.Request.User.Email = "e@example.com" }},
		// A later empty entity replaces a full one: context.entity is used.
		{"payload.entity emptied", []string{`"payload":{`, `"payload":{"entity":{},`, `"properties":{"i":"x"}}`, `"properties":{"i":"x"},"entity":null}`},
			func(w *Invocation) { w.Request.Entity = run.Entity{Identifier: "svc", Blueprint: "service"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(editBase(t, tt.edits...))
			if err != nil {
				t.Fatal(err)
			}
			want := jsonBaseWant
			want.Request.Entity.Properties = map[string]any{"p": float64(1)}
			want.Request.Inputs = map[string]any{"i": "x"}
			if tt.edit != nil {
				tt.edit(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
	// The other way round, the later value is the one refused.
	_, err := Decode(editBase(t, `"resourceType":"run"`, `"resourceType":"run","resourceType":"entity"`))
	if err == nil || !strings.Contains(err.Error(), `resourceType is "entity"`) {
		t.Fatalf("Decode error = %v, want the later resourceType refused", err)
	}
}

// TestDecodeJSONForms: spacing, escapes and odd strings read as
// json.Unmarshal read them.
func TestDecodeJSONForms(t *testing.T) {
	t.Run("white space everywhere", func(t *testing.T) {
		var buf bytes.Buffer
		if err := json.Indent(&buf, []byte(jsonBase), "\r\n ", "\t"); err != nil {
			t.Fatal(err)
		}
		spaced := strings.ReplaceAll(buf.String(), ":", " :\n")
		got, err := Decode([]byte(" \n\t" + strings.ReplaceAll(spaced, ",", "\r, ") + "\n\t "))
		if err != nil || !reflect.DeepEqual(got, jsonBaseWant) {
			t.Fatalf("Decode = %+v, %v", got, err)
		}
	})

	tests := []struct {
		name  string
		edits []string
		edit  func(*Invocation)
	}{
		// Keys are compared unquoted, as map keys were: an escaped key is
		// Port's key, and an escaped wrongly cased one is not.
		{"escaped keys", []string{`"runId":"r_1"`, `"run\u0049d":"r_2"`, `"title"`, `"\u0074itle"`, `"firstName":"Dana"`, `"\u0046irstName":"X"`},
			func(w *Invocation) {
				w.Request.PortalRunID = "r_2"
				w.Request.Entity.Title = "Svc"
				w.Request.User.Name = "Levi"
			}},
		{"escaped values", []string{`"title":"Svc"`, `"title":"S\u0076c \"q\" \\ \/ \ud83d\ude00 \ud800"`},
			func(w *Invocation) { w.Request.Entity.Title = "Svc \"q\" \\ / 😀 \uFFFD" }},
		{"invalid UTF-8", []string{`"title":"Svc"`, "\"title\":\"\xffSvc\xc3\"", `"properties":{"i":"x"}`, "\"properties\":{\"\xfe\":\"\xe2\x82\"}"},
			func(w *Invocation) {
				w.Request.Entity.Title = "\uFFFDSvc\uFFFD"
				w.Request.Inputs = map[string]any{"\uFFFD": "\uFFFD\uFFFD"} // one per invalid byte
			}},
		// Strings with quotes, backslashes and brackets inside, in fields
		// Decode skips and in ones it reads.
		{"strings that look like JSON", []string{`"resourceType":"run"`, `"status":"\\\"}],{[\\","x":["]}\"",{"\\":"}"}],"resourceType":"run"`,
			`"lastName":"Levi"`, `"lastName":"Levi\\\\"`},
			func(w *Invocation) { w.Request.User.Name = `Dana Levi\\` }},
		{"team forms", []string{`"team":["t"]`, `"team":[ "t" , null , "\u0075" ]`}, func(w *Invocation) { w.Request.Entity.Team = []string{"t", "", "u"} }},
		{"empty team list", []string{`"team":["t"]`, `"team":[]`}, func(w *Invocation) { w.Request.Entity.Team = []string{} }},
		{"empty team string", []string{`"team":["t"]`, `"team":""`}, func(w *Invocation) { w.Request.Entity.Team = nil }},
		{"ignored number beyond float64", []string{`"resourceType":"run"`, `"status":1e400,"resourceType":"run"`}, nil},
		{"discarded inputs with a number beyond float64", []string{`"properties":{"i":"x"}`, `"properties":{"i":1e400},"properties":{"i":"x"}`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(editBase(t, tt.edits...))
			if err != nil {
				t.Fatal(err)
			}
			want := jsonBaseWant
			want.Request.Entity.Properties = map[string]any{"p": float64(1)}
			want.Request.Inputs = map[string]any{"i": "x"}
			if tt.edit != nil {
				tt.edit(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode =\n%#v\nwant\n%#v", got, want)
			}
		})
	}

	// Inputs and entity properties are exactly what json.Unmarshal makes
	// of them: float64 numbers, []any, nested maps.
	t.Run("free-form values", func(t *testing.T) {
		inputs := `{"n":-1.5e2,"m":0.1,"b":false,"z":null,"s":"a\"b","a":[1,"x",{"k":true},[]],"o":{"p":{},"q":[null]},"A":2}`
		got, err := Decode(editBase(t, `"properties":{"i":"x"}`, `"properties":`+inputs, `"properties":{"p":1}`, `"properties":`+inputs))
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(inputs), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Request.Inputs, want) || !reflect.DeepEqual(got.Request.Entity.Properties, want) {
			t.Fatalf("inputs %#v\nproperties %#v\nwant %#v", got.Request.Inputs, got.Request.Entity.Properties, want)
		}
	})

	// json.Unmarshal into map[string]any fails on a number beyond float64,
	// even in a repeated key's discarded value; Decode refused such inputs
	// with this message and still does.
	for name, props := range map[string]string{
		"inputs":             `{"i":1e400}`,
		"nested":             `{"i":[{"j":-1e999}]}`,
		"discarded repeated": `{"i":1e400,"i":"x"}`,
	} {
		t.Run("number beyond float64 in "+name, func(t *testing.T) {
			_, err := Decode(editBase(t, `"properties":{"i":"x"}`, `"properties":`+props))
			if want := "port: body is not a Port action run: payload.properties is a JSON object, want object"; err == nil || err.Error() != want {
				t.Fatalf("Decode error = %v, want %s", err, want)
			}
		})
	}
	_, err := Decode(editBase(t, `"resourceType":"run"`, `"resourceType":1e400`))
	if want := "port: body is not a Port action run: resourceType is a JSON number, want string"; err == nil || err.Error() != want {
		t.Fatalf("Decode error = %v, want %s", err, want)
	}
}
