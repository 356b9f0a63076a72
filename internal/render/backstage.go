package render

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/run"
)

// RunAction is the scaffolder action the templates call: paved's Backstage
// module (deploy/backstage/) posts the run to paved, waits for it and
// streams its log into the task.
const RunAction = "paved:run"

// Template is a Backstage scaffolder Template (scaffolder.backstage.io/v1beta3).
type Template struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       Spec     `yaml:"spec"`
}

// Metadata is the template entity's metadata.
type Metadata struct {
	Name        string   `yaml:"name"`
	Title       string   `yaml:"title"`
	Description string   `yaml:"description,omitempty"`
	Tags        []string `yaml:"tags"`
}

// Spec is what the scaffolder shows and runs.
type Spec struct {
	Type string `yaml:"type"`
	// Parameters are the form's pages, each a JSON Schema.
	Parameters []Page  `yaml:"parameters"`
	Steps      []Step  `yaml:"steps"`
	Output     *Output `yaml:"output"`
}

// Page is one page of the form.
type Page struct {
	Title      string   `yaml:"title"`
	Required   []string `yaml:"required,omitempty"`
	Properties Fields   `yaml:"properties"`
}

// Fields are a page's inputs in the order the action lists them.
type Fields []Field

// Field is one input and its JSON Schema.
type Field struct {
	Name   string
	Schema map[string]any
}

// MarshalYAML writes the fields as a mapping in their order (a Go map would
// sort them).
func (fs Fields) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range fs {
		var v yaml.Node
		if err := v.Encode(f.Schema); err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: f.Name}, &v)
	}
	return n, nil
}

// Step is one step of the template.
type Step struct {
	ID     string         `yaml:"id"`
	Name   string         `yaml:"name"`
	Action string         `yaml:"action"`
	Input  map[string]any `yaml:"input"`
}

// Output is what the finished task shows.
type Output struct {
	Links []Link `yaml:"links"`
}

// Link is one link on the finished task.
type Link struct {
	Title string `yaml:"title"`
	URL   string `yaml:"url"`
}

// entityParam is the parameter a DAY-2 or DELETE template names its entity
// with.
const entityParam = "entity"

// RenderBackstage renders one Template per action, sorted by identifier.
// The form asks the same inputs as the action's schema; a DAY-2 or DELETE
// action first asks for the entity it runs on.
func RenderBackstage(actions []*catalog.Action) ([]Template, error) {
	var out []Template
	for _, a := range actions {
		t, err := BackstageTemplate(a)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Template) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	return out, nil
}

// BackstageTemplate renders one action.
func BackstageTemplate(a *catalog.Action) (Template, error) {
	props := a.InputProperties()
	if _, clash := props[entityParam]; clash && a.Operation != run.Create {
		return Template{}, fmt.Errorf("render: action %s: an input named %q clashes with the entity the template asks for", a.Identifier, entityParam)
	}
	inputs := map[string]any{}
	page := Page{Title: a.Title, Required: a.RequiredInputs()}
	for _, name := range a.Order {
		schema := maps.Clone(props[name])
		inputs[name] = "${{ parameters." + name + " }}"
		if name == "team" && schema["type"] == "string" {
			// Backstage's picker answers an entity ref (group:default/payments);
			// paved wants the team's name.
			delete(schema, "pattern")
			schema["ui:field"] = "OwnerPicker"
			schema["ui:options"] = map[string]any{"catalogFilter": map[string]any{"kind": "Group"}}
			inputs[name] = "${{ parameters." + name + " | parseEntityRef | pick('name') }}"
		}
		page.Properties = append(page.Properties, Field{Name: name, Schema: schema})
	}
	input := map[string]any{"action": a.Identifier, "inputs": inputs}
	var pages []Page
	if a.Operation != run.Create {
		pages = append(pages, Page{Title: "Choose the " + a.Blueprint, Required: []string{entityParam}, Properties: Fields{{
			Name: entityParam,
			Schema: map[string]any{
				"type": "string", "title": titleCase(a.Blueprint), "description": "The " + a.Blueprint + " this action runs on.",
				"ui:field": "EntityPicker", "ui:options": map[string]any{"catalogFilter": catalogFilter(a.Blueprint)},
			},
		}}})
		input["entity"] = map[string]any{
			"blueprint":  a.Blueprint,
			"identifier": "${{ parameters." + entityParam + " | parseEntityRef | pick('name') }}",
		}
	}
	pages = append(pages, page)
	kind := a.Blueprint
	if a.Output.Blueprint != "" {
		kind = a.Output.Blueprint
	}
	return Template{
		APIVersion: "scaffolder.backstage.io/v1beta3",
		Kind:       "Template",
		Metadata: Metadata{
			Name: a.Identifier, Title: a.Title, Description: a.Description,
			Tags: []string{"paved", strings.ToLower(string(a.Operation))},
		},
		Spec: Spec{
			Type:       kind,
			Parameters: pages,
			Steps:      []Step{{ID: "run", Name: a.Title, Action: RunAction, Input: input}},
			Output: &Output{Links: []Link{
				{Title: "paved run", URL: "${{ steps.run.output.runUrl }}"},
				{Title: "Pipeline", URL: "${{ steps.run.output.pipelineUrl }}"},
			}},
		},
	}, nil
}

// catalogFilter is which Backstage entities stand for a Port blueprint: a
// service is a Component, anything else a Resource of that type.
func catalogFilter(bp string) map[string]any {
	if bp == "service" {
		return map[string]any{"kind": "Component"}
	}
	return map[string]any{"kind": "Resource", "spec.type": bp}
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + strings.ReplaceAll(s[1:], "_", " ")
}

// YAML encodes templates as rendered files are written: two-space indent,
// documents separated by ---.
func YAML(docs ...any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("render: encode YAML: %w", err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render: encode YAML: %w", err)
	}
	return buf.Bytes(), nil
}
