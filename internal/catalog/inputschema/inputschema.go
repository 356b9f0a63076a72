// Package inputschema is an action's input schema: the JSON Schema (draft
// 2020-12) an action file declares, compiled once and held to the shape
// paved's forms need, and the check of a request's inputs against it
// (validate.go). It knows nothing of action files, so that internal/catalog
// keeps the file's rules and this package the schema library's.
package inputschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema is a compiled input schema. It is immutable, so it is safe for
// concurrent use.
type Schema struct {
	compiled *jsonschema.Schema
	shape    shape
}

// shape is the part of an input schema the platform's conventions inspect.
type shape struct {
	Type                 any                       `json:"type"`
	AdditionalProperties any                       `json:"additionalProperties"`
	Properties           map[string]map[string]any `json:"properties"`
	Required             []string                  `json:"required"`
}

// Properties is the schema of each input as written (numbers as float64);
// callers must not change it. Nil for a nil Schema, the one a hand-built
// action has.
func (s *Schema) Properties() map[string]map[string]any {
	if s == nil {
		return nil
	}
	return s.shape.Properties
}

// Required lists the inputs the schema requires.
func (s *Schema) Required() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.shape.Required)
}

// Compile compiles the input schema of the action file name and checks the
// shape the structural checks that follow rely on: an object of declared
// properties that refuses any other.
func Compile(name string, doc map[string]any) (*Schema, error) {
	if doc == nil {
		return nil, errors.New("is required")
	}
	if s, ok := doc["$schema"]; ok && s != draft2020 {
		return nil, fmt.Errorf("$schema must be %q (or absent), got %v", draft2020, s)
	}
	// YAML and JSON disagree on number types; a JSON round trip gives the
	// compiler exactly what it would get from a JSON file.
	norm, err := jsonValue(doc)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{}) // an action must not reach the network or disk at load
	url := "paved:///actions/" + filepath.Base(name) + ".json"
	if err := c.AddResource(url, norm); err != nil {
		return nil, fmt.Errorf("add schema: %w", err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	var sh shape
	raw, _ := json.Marshal(doc) // jsonValue proved it marshals
	if err := json.Unmarshal(raw, &sh); err != nil {
		return nil, fmt.Errorf("properties must be objects and required a list of names: %w", err)
	}
	switch {
	case sh.Type != "object":
		return nil, errors.New("type must be object")
	case sh.AdditionalProperties != false:
		return nil, errors.New("additionalProperties must be false, so inputs the action does not declare are refused")
	case len(sh.Properties) == 0:
		return nil, errors.New("properties must declare the action's inputs")
	}
	return &Schema{compiled: sch, shape: sh}, nil
}

const draft2020 = "https://json-schema.org/draft/2020-12/schema"

// jsonValue is v as encoding/json would decode it, numbers as json.Number:
// the one representation the schema library handles exactly.
func jsonValue(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("not representable as JSON: %w", err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not representable as JSON: %w", err)
	}
	return out, nil
}

type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema %s not allowed; inline it", url)
}

// TypeError is an input whose type is not a JSON Schema type.
type TypeError struct {
	Input string // the property, e.g. "replicas"
	Msg   string
}

// jsonTypes are the type names JSON Schema knows.
var jsonTypes = []string{"array", "boolean", "integer", "null", "number", "object", "string"}

// CheckTypes names each input whose type is not a JSON Schema type. Run
// before Compile, it says which input is wrong, where the compiler's error
// is about the whole schema.
func CheckTypes(doc map[string]any) []TypeError {
	props, _ := doc["properties"].(map[string]any)
	var errs []TypeError
	for _, name := range slices.Sorted(maps.Keys(props)) {
		p, _ := props[name].(map[string]any)
		t, ok := p["type"]
		if !ok {
			continue
		}
		names, _ := t.([]any)
		if s, isStr := t.(string); isStr {
			names = []any{s}
		}
		for _, n := range names {
			if s, _ := n.(string); !slices.Contains(jsonTypes, s) {
				errs = append(errs, TypeError{name, fmt.Sprintf("unknown type %v; use one of %s", n, strings.Join(jsonTypes, ", "))})
			}
		}
		if len(names) == 0 {
			errs = append(errs, TypeError{name, fmt.Sprintf("must be a type name or a list of them, got %v", t)})
		}
	}
	return errs
}
