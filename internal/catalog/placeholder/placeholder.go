// Package placeholder is the template language of an action's output: text
// with ${ref} placeholders, a ref being tenant, environment, service, stack,
// inputs.<name> or an outputs path (outputs.a.b, where a segment
// [inputs.x] is the value of input x). It checks a template's syntax and
// fills one in from a run; which refs an output field may use is
// internal/catalog's rule, so that this package holds only the language.
package placeholder

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/paved-idp/paved/internal/run"
)

// outputPathRE matches one segment of an outputs path: .name or [inputs.name].
var outputPathRE = regexp.MustCompile(`\.([A-Za-z0-9_-]+)|\[inputs\.([A-Za-z0-9_]+)\]`)

// placeholderRE is a ${name} reference inside an output template.
var placeholderRE = regexp.MustCompile(`\$\{([^}]*)\}`)

var refRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)?|outputs(\.[A-Za-z0-9_-]+|\[inputs\.[A-Za-z0-9_]+\])+)$`)

// Refs lists the references in a template and refuses malformed ones.
func Refs(tmpl string) ([]string, error) {
	var refs []string
	for _, m := range placeholderRE.FindAllStringSubmatch(tmpl, -1) {
		if !refRE.MatchString(m[1]) {
			return nil, fmt.Errorf("malformed placeholder ${%s}", m[1])
		}
		refs = append(refs, m[1])
	}
	if rest := placeholderRE.ReplaceAllString(tmpl, ""); strings.Contains(rest, "${") {
		return nil, errors.New("unclosed ${")
	}
	return refs, nil
}

// PathInputs lists, in order, the inputs whose values an outputs path
// ("outputs.buckets[inputs.bucketName].arn") takes a segment from.
func PathInputs(ref string) []string {
	var ins []string
	for _, seg := range outputPathRE.FindAllStringSubmatch(ref, -1) {
		if seg[2] != "" {
			ins = append(ins, seg[2])
		}
	}
	return ins
}

// Whole is the ref of a template that is exactly one placeholder, the one
// kind whose value Expand keeps as it is; ok is false for any other.
func Whole(tmpl string) (ref string, ok bool) {
	m := placeholderRE.FindStringSubmatchIndex(tmpl)
	if m == nil || m[0] != 0 || m[1] != len(tmpl) {
		return "", false
	}
	return tmpl[m[2]:m[3]], true
}

// Expand fills a template. A template that is exactly one placeholder keeps
// the value's type, so a boolean input stays a boolean property; anything
// else becomes a string. ok is false when a referenced value is missing.
func Expand(tmpl string, lookup func(string) (any, bool)) (any, bool) {
	if ref, ok := Whole(tmpl); ok {
		return lookup(ref)
	}
	return ExpandString(tmpl, lookup)
}

// ExpandString is Expand always as a string.
func ExpandString(tmpl string, lookup func(string) (any, bool)) (string, bool) {
	ok := true
	out := placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		v, found := lookup(m[2 : len(m)-1])
		if !found {
			ok = false
			return ""
		}
		return fmt.Sprint(v) // strings, bools, float64 and json.Number read naturally
	})
	return out, ok
}

// Lookup resolves refs against a run, for Expand.
func Lookup(r *run.Run) func(string) (any, bool) {
	return func(ref string) (any, bool) {
		switch ref {
		case "tenant":
			return r.Stack.Tenant, r.Stack.Tenant != ""
		case "environment":
			return r.Stack.Environment, r.Stack.Environment != ""
		case "service":
			return r.Stack.Service, r.Stack.Service != ""
		case "stack":
			return r.Stack.Key(), r.Stack.Service != ""
		}
		if k, ok := strings.CutPrefix(ref, "inputs."); ok {
			v, ok := r.Request.Inputs[k]
			return v, ok && v != nil
		}
		if strings.HasPrefix(ref, "outputs.") {
			return outputAt(r, ref)
		}
		return nil, false
	}
}

// outputAt walks an outputs path into the run's stack outputs, so that an
// action reads its own resource from a map of them
// (outputs.buckets[inputs.bucketName].arn).
func outputAt(r *run.Run, ref string) (any, bool) {
	var cur any = r.Outputs
	for _, seg := range outputPathRE.FindAllStringSubmatch(strings.TrimPrefix(ref, "outputs"), -1) {
		key := seg[1]
		if seg[2] != "" {
			v, ok := r.Request.Inputs[seg[2]]
			if !ok || v == nil {
				return nil, false
			}
			key = fmt.Sprint(v)
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok || cur == nil {
			return nil, false
		}
	}
	return cur, true
}
