package engine

import (
	"regexp"
	"strings"
)

// MaxNameLength is the longest pipeline name GitLab stores
// (ci_pipeline_metadata.name); a longer one fails the pipeline's creation.
const MaxNameLength = 255

// nameRef is ExpandVariables::VARIABLES_REGEXP, what workflow:name
// expands: $NAME, ${NAME} and %NAME%.
var nameRef = regexp.MustCompile(`\$([a-zA-Z_][a-zA-Z0-9_]*)|\$\{([a-zA-Z_][a-zA-Z0-9_]*)\}|%([a-zA-Z_][a-zA-Z0-9_]*)%`)

// valueRef is Gitlab::Ci::Variables::Collection::Item::VARIABLES_REGEXP,
// what variable values refer to each other with; "$$" and "%%" are
// escapes and stay as they are.
var valueRef = regexp.MustCompile(`\$\$|%%|\$([a-zA-Z_][a-zA-Z0-9_]*)|\$\{([a-zA-Z_][a-zA-Z0-9_]*)\}|%([a-zA-Z_][a-zA-Z0-9_]*)%`)

// refName is the variable a match of nameRef or valueRef names, "" for an escape.
func refName(m []string) string {
	for _, g := range m[1:] {
		if g != "" {
			return g
		}
	}
	return ""
}

// ExpandName is the name GitLab gives a pipeline whose configuration has
// workflow:name template (Gitlab::Ci::Pipeline::Chain::PopulateMetadata):
// the variables' values are expanded first (a value may refer to other
// variables; a cycle anywhere leaves every value as it is), then every
// reference in the template becomes its variable's value, an unknown
// variable becoming nothing, and the result loses its surrounding
// whitespace. "" means the pipeline gets no name.
func ExpandName(template string, vars map[string]string) string {
	if strings.TrimSpace(template) == "" {
		return ""
	}
	vals := expandValues(vars)
	name := nameRef.ReplaceAllStringFunc(template, func(ref string) string {
		return vals[refName(nameRef.FindStringSubmatch(ref))]
	})
	return strings.Trim(name, " \t\n\v\f\r\x00") // Ruby's String#strip
}

// expandValues is Collection#sort_and_expand_all: each value with its
// references to other variables replaced, undefined ones dropped.
func expandValues(vars map[string]string) map[string]string {
	const (
		unseen = iota
		visiting
		done
	)
	state := make(map[string]int, len(vars))
	out := make(map[string]string, len(vars))
	cyclic := false
	var expand func(key string) string
	expand = func(key string) string {
		switch state[key] {
		case done:
			return out[key]
		case visiting:
			cyclic = true
			return ""
		}
		state[key] = visiting
		v := valueRef.ReplaceAllStringFunc(vars[key], func(ref string) string {
			name := refName(valueRef.FindStringSubmatch(ref))
			if name == "" {
				return ref // $$ or %%
			}
			if _, ok := vars[name]; !ok {
				return ""
			}
			return expand(name)
		})
		state[key] = done
		out[key] = v
		return v
	}
	for k := range vars {
		expand(k)
	}
	if cyclic {
		return vars
	}
	return out
}
