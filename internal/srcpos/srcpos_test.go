package srcpos

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestIndexYAML(t *testing.T) {
	src := "# comment\nidentifier: x\noutput:\n  properties:\n    arn: ${outputs.arn}\n\n    url: u\ninputs:\n  order: [a, b]\n"
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	ix := IndexYAML(&doc)
	for path, want := range map[string]int{
		"":                       2, // the document starts at its first key
		"identifier":             2,
		"output":                 3,
		"output.properties.arn":  5,
		"output.properties.url":  7,
		"output.properties.nope": 4, // a missing key: where its parent is
		"inputs.order":           9,
		"gitlab.project":         2,
	} {
		if got := ix.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
}

func TestIndexJSON(t *testing.T) {
	src := "{\n  \"identifier\": \"s3\",\n  \"schema\": {\n    \"properties\": {\n      \"arn\": {\"type\": \"string\"},\n      \"list\": [1, {\"inner\": 2}],\n      \"url\": {\n        \"type\": \"string\"\n      }\n    }\n  },\n  \"relations\": {}\n}\n"
	ix, err := IndexJSON([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{
		"identifier":                  2,
		"schema":                      3,
		"schema.properties.arn":       5,
		"schema.properties.arn.type":  5,
		"schema.properties.list":      6,
		"schema.properties.url.type":  8,
		"schema.properties.gone.type": 4,
		"relations":                   12,
	} {
		if got := ix.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
}

func TestJSONSyntaxErrorLine(t *testing.T) {
	for src, want := range map[string]int{
		"{\n  \"a\": 1,\n  \"b\": ,\n}": 3,
		"{\n  \"a\": 1\n":               3,
		"{\"a\": 1}\n{\"b\": 2}":        2,
		"\n\n[1, 2,\n  3 4]":            4,
		"{\n  \"a\": \"unterminated\n}": 2,
	} {
		_, err := IndexJSON([]byte(src))
		var le *LineError
		if !errors.As(err, &le) || le.Line != want {
			t.Errorf("%q: err = %v, want a *LineError at line %d", src, err, want)
		}
	}
}

func TestYAMLErrors(t *testing.T) {
	tests := []struct {
		src  string
		line int
		msg  string
	}{
		{"a: 1\nb: [x\nc: 2\n", 2, "did not find expected ',' or ']'"}, // a parser error: yaml.v3 says line 1
		{"a: 1\nb: 2\n c: 3\n", 3, "mapping values are not allowed"},   // a scanner error: yaml.v3 is right
		{"a: 1\n\tb: 2\n", 2, "tab character"},
		{"[x", 1, "did not find expected"},   // the end of the file
		{"[x\n", 1, "did not find expected"}, // the end: the last line with content
	}
	for _, tt := range tests {
		var n yaml.Node
		err := yaml.Unmarshal([]byte(tt.src), &n)
		les := YAMLErrors([]byte(tt.src), err)
		if len(les) != 1 || les[0].Line != tt.line || !strings.Contains(les[0].Msg, tt.msg) || !strings.HasPrefix(les[0].Msg, "YAML: ") {
			t.Errorf("%q: %v → %+v, want line %d %q", tt.src, err, les[0], tt.line, tt.msg)
		}
	}
	// A type error lists one problem per line, each at its own line.
	var v struct {
		A int `yaml:"a"`
	}
	dec := yaml.NewDecoder(strings.NewReader("a: x\nb: 1\n"))
	dec.KnownFields(true)
	les := YAMLErrors([]byte("a: x\nb: 1\n"), dec.Decode(&v))
	if len(les) != 2 || les[0].Line != 1 || les[1].Line != 2 || !strings.Contains(les[1].Msg, "field b not found") {
		t.Fatalf("type errors = %+v", les)
	}
}

func TestProblems(t *testing.T) {
	ps := Problems{{File: "b.yaml", Line: 3, Msg: "z"}, {File: "a.yaml", Line: 10, Msg: "y"}, {File: "a.yaml", Line: 2, Msg: "x"}, {File: "dir", Msg: "no files"}}
	ps.Sort()
	want := "a.yaml:2: x\na.yaml:10: y\nb.yaml:3: z\ndir: no files"
	if got := ps.Error(); got != want {
		t.Fatalf("Error() =\n%s\nwant\n%s", got, want)
	}
}
