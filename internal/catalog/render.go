package catalog

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/paved-idp/paved/internal/catalog/placeholder"
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
	lookup := placeholder.Lookup(r)
	id, ok := placeholder.ExpandString(a.Output.Identifier, lookup)
	if !ok || id == "" {
		return nil
	}
	e := &run.EntityUpsert{
		Blueprint:  a.Output.Blueprint,
		Identifier: portIdentifier(id),
		Properties: map[string]any{},
	}
	if a.Output.Title != "" {
		e.Title, _ = placeholder.ExpandString(a.Output.Title, lookup)
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
		if v, ok := placeholder.Expand(tmpl, lookup); ok {
			e.Properties[k] = v
		}
	}
	if len(a.Output.Relations) > 0 {
		e.Relations = map[string]any{}
		for k, tmpl := range a.Output.Relations {
			if v, ok := placeholder.ExpandString(tmpl, lookup); ok && v != "" {
				e.Relations[k] = portIdentifier(v)
			}
		}
	}
	return e
}

// notPortRE matches what Port identifiers (^[A-Za-z0-9@_.:\/=-]+$) may not hold.
var notPortRE = regexp.MustCompile(`[^A-Za-z0-9@_.:/=-]`)

// portIdentifier makes s a valid Port identifier by replacing every other
// character with "-".
func portIdentifier(s string) string { return notPortRE.ReplaceAllString(s, "-") }
