package view

import (
	"bytes"
	"html"
	"strconv"
)

// markup builds a page. Markup the code writes goes in through raw, which
// takes only string constants (TestRawTakesOnlyConstants checks every call);
// anything from a run, a request or the store goes in through text or attr,
// which escape it. Values never stand in a script or style context: the
// CSP allows neither inline, and the one script reads data-* attributes.
//
// It replaces html/template on purpose: executing a template reaches
// reflect.Value.MethodByName, which makes the Go linker keep every exported
// method of every type in paved (13 MB of binary, ~11 MiB of idle memory).
type markup struct{ b bytes.Buffer }

// raw writes trusted markup: a string constant, never data.
func (m *markup) raw(s string) *markup { m.b.WriteString(s); return m }

// text writes s as element content.
func (m *markup) text(s string) *markup { m.b.WriteString(html.EscapeString(s)); return m }

// int writes a number as element content.
func (m *markup) int(n int64) *markup { m.b.WriteString(strconv.FormatInt(n, 10)); return m }

// attr writes ` name="value"`, the value escaped; name is a constant.
func (m *markup) attr(name, value string) *markup {
	m.b.WriteString(" ")
	m.b.WriteString(name)
	m.b.WriteString(`="`)
	m.b.WriteString(html.EscapeString(value))
	m.b.WriteString(`"`)
	return m
}

// when writes the constant s only if cond holds.
func (m *markup) when(cond bool, s string) *markup {
	if cond {
		m.b.WriteString(s)
	}
	return m
}
