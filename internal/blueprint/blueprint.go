// Package blueprint reads Port blueprints from blueprints/*.json: the
// documents paved's actions write their results into. paved does not use
// them to serve; `paved render port` and `paved sync port` send them to
// Port, and `paved validate` checks that every action's outputs fit them.
package blueprint

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/paved-idp/paved/internal/srcpos"
)

// Blueprint is one blueprint file, checked.
type Blueprint struct {
	Identifier string
	// Doc is the file as written: what Port receives.
	Doc        map[string]any
	Properties map[string]Property
	Relations  map[string]Relation
	File       string

	index *srcpos.Index
}

// Property is one property of the blueprint's schema.
type Property struct {
	Type   string
	Format string
}

// Relation is one relation to another blueprint.
type Relation struct {
	Target   string
	Required bool
	Many     bool
}

// Line is the line a field of the file is on ("schema.properties.arn"), or
// its nearest ancestor's.
func (b *Blueprint) Line(field string) int { return b.index.Line(field) }

// PropertyTypes are the types Port's blueprint properties have.
var PropertyTypes = []string{"array", "boolean", "number", "object", "string"}

// identifierRE is Port's blueprint identifier pattern.
var identifierRE = regexp.MustCompile(`^[A-Za-z0-9@_=\-]+$`)

// file is the part of a blueprint paved checks; Port checks the rest.
type file struct {
	Identifier *string `json:"identifier"`
	Title      *string `json:"title"`
	Schema     *struct {
		Properties map[string]struct {
			Type   string `json:"type"`
			Format string `json:"format"`
		} `json:"properties"`
		Required []string `json:"required"`
	} `json:"schema"`
	Relations map[string]struct {
		Target   string `json:"target"`
		Required bool   `json:"required"`
		Many     bool   `json:"many"`
	} `json:"relations"`
}

// Parse reads one blueprint; name is the file's path, for problems. It
// returns every problem it finds and, unless the file is not a blueprint at
// all, what it could read: a caller checking other files against it should
// not also report a blueprint whose only problem is a property's type as
// missing.
func Parse(name string, data []byte) (*Blueprint, srcpos.Problems) {
	at := func(line int, format string, args ...any) srcpos.Problem {
		return srcpos.Problem{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	ix, err := srcpos.IndexJSON(data)
	if err != nil {
		var le *srcpos.LineError
		if errors.As(err, &le) {
			return nil, srcpos.Problems{at(le.Line, "%s", le.Msg)}
		}
		return nil, srcpos.Problems{at(1, "%v", err)}
	}
	var f file
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, srcpos.Problems{at(1, "a blueprint is a JSON object: %v", err)}
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, srcpos.Problems{problemOf(name, data, err)}
	}
	var ps srcpos.Problems
	switch {
	case f.Identifier == nil:
		ps = append(ps, at(ix.Line(""), "identifier: is required"))
	case !identifierRE.MatchString(*f.Identifier):
		ps = append(ps, at(ix.Line("identifier"), "identifier: must match %s, got %q", identifierRE, *f.Identifier))
	}
	if f.Title == nil || strings.TrimSpace(*f.Title) == "" {
		ps = append(ps, at(ix.Line("title"), "title: is required"))
	}
	b := &Blueprint{Doc: doc, File: name, index: ix, Properties: map[string]Property{}, Relations: map[string]Relation{}}
	if f.Identifier != nil {
		b.Identifier = *f.Identifier
	}
	if f.Schema == nil {
		ps = append(ps, at(ix.Line(""), "schema: is required (schema.properties may be empty)"))
	} else {
		for _, k := range slices.Sorted(maps.Keys(f.Schema.Properties)) {
			p := f.Schema.Properties[k]
			if !slices.Contains(PropertyTypes, p.Type) {
				ps = append(ps, at(ix.Line("schema.properties."+k+".type"), "schema.properties.%s.type: must be one of %s, got %q", k, strings.Join(PropertyTypes, ", "), p.Type))
			}
			b.Properties[k] = Property{Type: p.Type, Format: p.Format}
		}
		for _, r := range f.Schema.Required {
			if _, ok := f.Schema.Properties[r]; !ok {
				ps = append(ps, at(ix.Line("schema.required"), "schema.required: %q is not a property", r))
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(f.Relations)) {
		r := f.Relations[k]
		if r.Target == "" {
			ps = append(ps, at(ix.Line("relations."+k), "relations.%s.target: is required", k))
		}
		b.Relations[k] = Relation(r)
	}
	return b, ps
}

// problemOf places a JSON decoding error at its line; a type error names the
// field.
func problemOf(name string, data []byte, err error) srcpos.Problem {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return srcpos.Problem{File: name, Line: srcpos.LineAt(data, te.Offset), Msg: fmt.Sprintf("%s: is a JSON %s, want %s", te.Field, te.Value, te.Type)}
	}
	le := srcpos.JSONError(data, err)
	var l *srcpos.LineError
	if errors.As(le, &l) {
		return srcpos.Problem{File: name, Line: l.Line, Msg: l.Msg}
	}
	return srcpos.Problem{File: name, Line: 1, Msg: err.Error()}
}

// Load reads every *.json file in dir and checks the set: identifiers are
// unique and every relation targets a blueprint of the set. It returns the
// blueprints it could read (see Parse), sorted by identifier, and every
// problem; only a load without problems is fit to send to Port.
func Load(dir string) ([]*Blueprint, srcpos.Problems) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, srcpos.Problems{{File: dir, Msg: err.Error()}}
	}
	if len(paths) == 0 {
		return nil, srcpos.Problems{{File: dir, Msg: "no *.json blueprint files"}}
	}
	sort.Strings(paths)
	var ps srcpos.Problems
	byID := map[string]*Blueprint{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			ps = append(ps, srcpos.Problem{File: p, Msg: fmt.Sprintf("read blueprint: %v", err)})
			continue
		}
		b, bps := Parse(p, data)
		ps = append(ps, bps...)
		if b == nil || b.Identifier == "" {
			continue
		}
		if prev, dup := byID[b.Identifier]; dup {
			ps = append(ps, srcpos.Problem{File: p, Line: b.Line("identifier"), Msg: fmt.Sprintf("identifier %q is already defined in %s", b.Identifier, prev.File)})
			continue
		}
		byID[b.Identifier] = b
	}
	for _, b := range byID {
		for _, k := range slices.Sorted(maps.Keys(b.Relations)) {
			if t := b.Relations[k].Target; byID[t] == nil {
				ps = append(ps, srcpos.Problem{File: b.File, Line: b.Line("relations." + k + ".target"), Msg: fmt.Sprintf("relations.%s.target: no blueprint %q in %s", k, t, dir)})
			}
		}
	}
	ps.Sort()
	return slices.SortedFunc(maps.Values(byID), func(a, b *Blueprint) int { return strings.Compare(a.Identifier, b.Identifier) }), ps
}
