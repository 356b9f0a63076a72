package catalog

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/paved-idp/paved/internal/clip"
	"github.com/paved-idp/paved/internal/run"
)

// StackOf names the Pulumi stack a request changes: tenant and environment
// from the inputs, the service from where the action says it comes from.
func (a *Action) StackOf(req run.Request) (run.Stack, error) {
	var errs []error
	str := func(what, input string) string {
		v, ok := req.Inputs[input]
		s, isStr := v.(string)
		switch {
		case !ok || v == nil:
			errs = append(errs, fmt.Errorf("%s: input %q is missing", what, input))
		case !isStr || strings.TrimSpace(s) == "":
			errs = append(errs, fmt.Errorf("%s: input %q must be a non-empty string, got %s", what, input, clipped(fmt.Sprint(v))))
		}
		return s
	}
	st := run.Stack{Tenant: str("tenant", "tenant"), Environment: str("environment", "environment")}
	if in, ok := strings.CutPrefix(a.ServiceFrom, "inputs."); ok {
		st.Service = str("service", in)
	} else {
		st.Service = req.Entity.Identifier
		if st.Service == "" {
			errs = append(errs, fmt.Errorf("service: action %s runs on a %s entity, but the request names none", a.Identifier, a.Blueprint))
		}
	}
	if len(errs) == 0 {
		// Each part becomes part of a Pulumi stack name, a Kubernetes
		// namespace and a GitLab variable: it must be a DNS label.
		for _, p := range []struct{ what, v string }{{"tenant", st.Tenant}, {"environment", st.Environment}, {"service", st.Service}} {
			if !dnsLabel(p.v) {
				errs = append(errs, fmt.Errorf("%s %q is not a valid name: use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit", p.what, clipped(p.v)))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return run.Stack{}, fmt.Errorf("action %s: stack: %w", a.Identifier, err)
	}
	return st, nil
}

// dnsLabel reports whether s is an RFC 1123 label, as Kubernetes names
// namespaces: ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$, written out because the
// regexp's {0,61} compiled to a 44 KB program at every start.
func dnsLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// clipped shortens a value quoted back in an error.
func clipped(s string) string { return clip.String(s, 80) }

// TeamOf is the team that owns the service: for CREATE the developer names
// it in the input "team"; afterwards it is the entity's (first) team.
func (a *Action) TeamOf(req run.Request) string {
	if a.Operation == run.Create {
		s, _ := req.Inputs["team"].(string)
		return s
	}
	if len(req.Entity.Team) > 0 {
		return req.Entity.Team[0]
	}
	return ""
}

// EntityFor is the portal entity paved upserts when the run has finished:
// its outputs mapped to properties, related to its service, tenant and
// environment as the action says. Nil when the action writes no entity.
func (a *Action) EntityFor(r *run.Run) *run.EntityUpsert { return a.entity(r, true) }

// entity is the entity's identity (blueprint, identifier, title, team,
// relations) and, with outputs, its mapped properties.
func (a *Action) entity(r *run.Run, outputs bool) *run.EntityUpsert {
	if a.Output.Blueprint == "" {
		return nil
	}
	lookup := a.lookup(r)
	id, ok := expandString(a.Output.Identifier, lookup)
	if !ok || id == "" {
		return nil
	}
	e := &run.EntityUpsert{
		Blueprint:  a.Output.Blueprint,
		Identifier: portIdentifier(id),
		Properties: map[string]any{},
	}
	if a.Output.Title != "" {
		e.Title, _ = expandString(a.Output.Title, lookup)
	}
	if r.Team != "" {
		e.Team = []string{r.Team}
	}
	for k, tmpl := range a.Output.Properties {
		if !outputs {
			break
		}
		// A property whose output the pipeline did not report is left out,
		// so an upsert with merge keeps what the portal already shows.
		if v, ok := expand(tmpl, lookup); ok {
			e.Properties[k] = v
		}
	}
	if len(a.Output.Relations) > 0 {
		e.Relations = map[string]any{}
		for k, tmpl := range a.Output.Relations {
			if v, ok := expandString(tmpl, lookup); ok && v != "" {
				e.Relations[k] = portIdentifier(v)
			}
		}
	}
	return e
}

// lookup resolves template placeholders against a run.
func (a *Action) lookup(r *run.Run) func(string) (any, bool) {
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

// outputAt walks a path into the run's stack outputs: outputs.a.b, where a
// segment [inputs.x] is the value of input x, so that an action reads its
// own resource from a map of them (outputs.buckets[inputs.bucketName].arn).
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

// outputPathRE matches one segment of an outputs path: .name or [inputs.name].
var outputPathRE = regexp.MustCompile(`\.([A-Za-z0-9_-]+)|\[inputs\.([A-Za-z0-9_]+)\]`)

// placeholderRE is a ${name} reference inside an output template.
var placeholderRE = regexp.MustCompile(`\$\{([^}]*)\}`)

var refRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)?|outputs(\.[A-Za-z0-9_-]+|\[inputs\.[A-Za-z0-9_]+\])+)$`)

// placeholders lists the references in a template and refuses malformed ones.
func placeholders(tmpl string) ([]string, error) {
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

// expand fills a template. A template that is exactly one placeholder keeps
// the value's type, so a boolean input stays a boolean property; anything
// else becomes a string. ok is false when a referenced value is missing.
func expand(tmpl string, lookup func(string) (any, bool)) (any, bool) {
	if m := placeholderRE.FindStringSubmatchIndex(tmpl); m != nil && m[0] == 0 && m[1] == len(tmpl) {
		return lookup(tmpl[m[2]:m[3]])
	}
	return expandString(tmpl, lookup)
}

func expandString(tmpl string, lookup func(string) (any, bool)) (string, bool) {
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

// notPortRE matches what Port identifiers (^[A-Za-z0-9@_.:\/=-]+$) may not hold.
var notPortRE = regexp.MustCompile(`[^A-Za-z0-9@_.:/=-]`)

// portIdentifier makes s a valid Port identifier by replacing every other
// character with "-".
func portIdentifier(s string) string { return notPortRE.ReplaceAllString(s, "-") }
