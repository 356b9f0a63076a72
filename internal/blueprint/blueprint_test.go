package blueprint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/srcpos"
)

func TestLoadShipped(t *testing.T) {
	bps, ps := Load("../../blueprints")
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	var ids []string
	for _, b := range bps {
		ids = append(ids, b.Identifier)
	}
	if got := strings.Join(ids, " "); got != "environment s3_bucket service sqs_queue tenant" {
		t.Fatalf("blueprints = %s", got)
	}
	s3 := bps[1]
	if s3.Properties["retentionDays"].Type != "number" || s3.Relations["service"].Target != "service" || !s3.Relations["service"].Required {
		t.Fatalf("s3_bucket = %+v", s3)
	}
	if s3.Doc["mirrorProperties"] == nil {
		t.Fatal("Doc lost the fields paved does not read")
	}
	if l := s3.Line("schema.properties.arn"); l != 11 {
		t.Fatalf("line of arn = %d", l)
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // "line: message part"
	}{
		{"syntax", "{\n  \"identifier\": \"x\",\n  \"title\": \n}", []string{"4: JSON: invalid character '}'"}},
		{"not an object", "[1]", []string{"1: a blueprint is a JSON object"}},
		{"type error", "{\n  \"identifier\": \"x\",\n  \"title\": \"X\",\n  \"schema\": {\"properties\": []}\n}", []string{"4: schema.properties: is a JSON array"}},
		{"missing", "{\n  \"icon\": \"x\"\n}", []string{"1: identifier: is required", "1: title: is required", "1: schema: is required"}},
		{"bad fields", "{\n  \"identifier\": \"a b\",\n  \"title\": \"X\",\n  \"schema\": {\n    \"properties\": {\n      \"p\": {\"type\": \"text\"}\n    },\n    \"required\": [\"q\"]\n  },\n  \"relations\": {\n    \"r\": {\"many\": true}\n  }\n}",
			[]string{"2: identifier: must match", "6: schema.properties.p.type: must be one of", "8: schema.required: \"q\" is not a property", "11: relations.r.target: is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ps := Parse("bp.json", []byte(tt.src))
			if len(ps) != len(tt.want) {
				t.Fatalf("Parse problems %v; want %d", ps, len(tt.want))
			}
			for i, w := range tt.want {
				if got := ps[i].String(); !strings.HasPrefix(got, "bp.json:"+w) {
					t.Errorf("problem %d = %q, want bp.json:%s…", i, got, w)
				}
			}
		})
	}
}

func TestLoadSetProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.json", `{"identifier": "a", "title": "A", "schema": {"properties": {}},
  "relations": {"b": {"target": "b"}, "ghost": {"target": "nobody"}}}`)
	write("b.json", `{"identifier": "b", "title": "B", "schema": {"properties": {}}}`)
	write("b2.json", "{\n  \"identifier\": \"b\", \"title\": \"B again\", \"schema\": {\"properties\": {}}}")
	write("broken.json", `{`)
	write("c.json", `{"identifier": "c", "title": "C", "schema": {"properties": {"p": {"type": "text"}}}, "relations": {"a": {"target": "a"}}}`)
	bps, ps := Load(dir)
	if len(bps) != 3 {
		t.Fatalf("loaded %d blueprints, want a, b and the c Parse could read", len(bps))
	}
	got := srcpos.Problems(ps).Error()
	for _, want := range []string{
		filepath.Join(dir, "a.json") + `:2: relations.ghost.target: no blueprint "nobody"`,
		filepath.Join(dir, "b2.json") + `:2: identifier "b" is already defined in ` + filepath.Join(dir, "b.json"),
		filepath.Join(dir, "broken.json") + ":1: JSON: unexpected end of file",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems:\n%s\nlack %s", got, want)
		}
	}
	if _, ps := Load(t.TempDir()); len(ps) != 1 || !strings.Contains(ps[0].Msg, "no *.json") {
		t.Errorf("empty dir: %v", ps)
	}
}
