// Package srcpos says where in a definition file something is: the
// problems found in action, blueprint and policy files, each with its file
// and line, and indexes from a key's path in a YAML or JSON document to the
// line it is written on. Authors fix what they are pointed at; a message
// without a line makes them search.
package srcpos

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a definition file. Line is 1-based; 0
// means the problem is about the file as a whole (it cannot be read, say).
type Problem struct {
	File string
	Line int
	Msg  string
}

// String is "file:line: msg", the form editors and CI logs link to.
func (p Problem) String() string {
	if p.Line <= 0 {
		return p.File + ": " + p.Msg
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// Problems is a list of problems that is also an error, one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Sort orders problems by file, then line, then message, so that output is
// stable whatever order the checks ran in.
func (ps Problems) Sort() {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), strings.Compare(a.Msg, b.Msg))
	})
}

// Index maps the dotted path of each key in a document ("output.properties.arn")
// to the line the key is on.
type Index struct {
	lines map[string]int
	root  int // the line the document's top-level value starts on
}

// Line returns the line of path, or of its nearest ancestor that exists
// (a missing key is reported where its parent is), or the document's first
// line. "" is the document itself.
func (ix *Index) Line(path string) int {
	for path != "" {
		if l, ok := ix.lines[path]; ok {
			return l
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return max(ix.root, 1)
}

// IndexYAML indexes the mapping keys of a parsed YAML document.
func IndexYAML(doc *yaml.Node) *Index {
	ix := &Index{lines: map[string]int{}}
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	ix.root = n.Line
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(prefix, k.Value)
			if _, seen := ix.lines[p]; !seen { // a repeated key is an error elsewhere; point at the first
				ix.lines[p] = k.Line
			}
			walk(v, p)
		}
	}
	walk(n, "")
	return ix
}

// IndexJSON indexes the object keys of a JSON document. Array elements are
// not indexed: definitions name things by key. A syntax error is returned as
// a *LineError.
func IndexJSON(data []byte) (*Index, error) {
	ix := &Index{lines: map[string]int{}, root: LineAt(data, skipSpace(data, 0))}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := ix.jsonValue(dec, data, ""); err != nil {
		return nil, JSONError(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &LineError{Line: LineAt(data, dec.InputOffset()), Msg: "JSON: more than one value"}
	}
	return ix, nil
}

// jsonValue reads one value at path, recording the line of every key in it.
func (ix *Index) jsonValue(dec *json.Decoder, data []byte, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		for dec.More() {
			// The offset is just past the previous token: '{' or a value,
			// and then the ',' the next Token consumes.
			at := skipSpace(data, dec.InputOffset())
			k, err := dec.Token()
			if err != nil {
				return err
			}
			p := join(path, k.(string)) // a key is always a string
			if _, seen := ix.lines[p]; !seen {
				ix.lines[p] = LineAt(data, at)
			}
			if err := ix.jsonValue(dec, data, p); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
	case json.Delim('['):
		for dec.More() {
			if err := ix.jsonValue(dec, data, path); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
	}
	return err
}

// LineError is a syntax error at a line.
type LineError struct {
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// JSONError gives a JSON decoding error of data the line it is on, when the
// error says where (syntax and type errors do).
func JSONError(data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &LineError{Line: LineAt(data, se.Offset), Msg: "JSON: " + se.Error()}
	case errors.As(err, &te):
		return &LineError{Line: LineAt(data, te.Offset), Msg: "JSON: " + te.Error()}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &LineError{Line: LineAt(data, int64(len(data))), Msg: "JSON: unexpected end of file"}
	}
	return err
}

// LineAt is the 1-based line of byte offset off in data.
func LineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// skipSpace returns the offset of the first byte at or after off that is
// neither JSON white space nor a comma.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
		default:
			return off
		}
	}
	return off
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// yamlLineRE finds the line yaml.v3 names in its errors: "yaml: line 3: ..."
// for syntax errors, "line 3: ..." for each of a *yaml.TypeError's.
var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// YAMLErrors splits a yaml.v3 error decoding data into one *LineError per
// problem, at the line yaml.v3 names (0 where it names none).
func YAMLErrors(data []byte, err error) []*LineError {
	last := bytes.Count(bytes.TrimRight(data, "\n"), []byte("\n")) + 1
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]*LineError, 0, len(msgs))
	for _, m := range msgs {
		m = strings.TrimSpace(m)
		le := &LineError{Msg: m}
		if sub := yamlLineRE.FindStringSubmatch(m); sub != nil {
			le.Line, _ = strconv.Atoi(sub[1])
			le.Msg = "YAML: " + sub[2]
		} else if rest, ok := strings.CutPrefix(m, "yaml: "); ok {
			le.Msg = "YAML: " + rest
		}
		if te == nil && parserProblem(le.Msg) {
			// Past the end means the end: the last line with content.
			le.Line = min(le.Line+1, last)
		}
		out = append(out, le)
	}
	return out
}

// parserProblem reports a syntax error from yaml.v3's parser rather than
// its scanner: yaml.v3 numbers the parser's lines from 0 (decode.go,
// parser.fail) and leaves the line out when it is 0.
func parserProblem(msg string) bool {
	msg = strings.TrimPrefix(msg, "YAML: ")
	for _, p := range []string{"did not find expected", "found undefined tag handle", "found duplicate %"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
