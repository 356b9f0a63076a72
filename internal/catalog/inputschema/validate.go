package inputschema

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// FieldError is one thing wrong with a request's inputs, phrased for the
// developer who filled in the form.
type FieldError struct {
	Field   string `json:"field"`   // e.g. "inputs.bucketName"
	Message string `json:"message"` // e.g. "must match pattern ^[a-z0-9-]{3,63}$"
}

func (e FieldError) String() string { return e.Field + " " + e.Message }

// Validate checks inputs against the schema and returns every violation,
// sorted by field; nil means valid.
func (s *Schema) Validate(inputs map[string]any) []FieldError {
	if inputs == nil {
		inputs = map[string]any{}
	}
	// Inputs arrive as float64 or json.Number from JSON decoders and as Go
	// ints from tests and the CLI; one JSON round trip gives the validator
	// a single, exact representation of all of them.
	doc, err := jsonValue(inputs)
	if err != nil {
		return []FieldError{{Field: "inputs", Message: "are " + err.Error()}}
	}
	err = s.compiled.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []FieldError{{Field: "inputs", Message: err.Error()}}
	}
	var out []FieldError
	collect(ve, &out)
	slices.SortFunc(out, func(x, y FieldError) int {
		if c := strings.Compare(x.Field, y.Field); c != 0 {
			return c
		}
		return strings.Compare(x.Message, y.Message)
	})
	return slices.Compact(out)
}

// collect flattens the validator's error tree into one FieldError per leaf,
// replacing the library's wording with sentences a developer can act on.
func collect(e *jsonschema.ValidationError, out *[]FieldError) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			collect(c, out)
		}
		return
	}
	field := "inputs"
	for _, tok := range e.InstanceLocation {
		field += "." + tok
	}
	add := func(msg string) { *out = append(*out, FieldError{Field: field, Message: msg}) }
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, FieldError{Field: field + "." + m, Message: "is required"})
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			*out = append(*out, FieldError{Field: field + "." + p, Message: "is not an input of this action"})
		}
	case *kind.Type:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = article(w)
		}
		add(fmt.Sprintf("must be %s, not %s", strings.Join(want, " or "), article(k.Got)))
	case *kind.Enum:
		vals := make([]string, len(k.Want))
		for i, w := range k.Want {
			vals[i] = display(w)
		}
		add("must be one of: " + strings.Join(vals, ", "))
	case *kind.Const:
		add("must be " + display(k.Want))
	case *kind.Pattern:
		add("must match pattern " + k.Want)
	case *kind.MinLength:
		add(fmt.Sprintf("must be at least %d characters long", k.Want))
	case *kind.MaxLength:
		add(fmt.Sprintf("must be at most %d characters long", k.Want))
	case *kind.Minimum:
		add("must be >= " + ratString(k.Want))
	case *kind.Maximum:
		add("must be <= " + ratString(k.Want))
	case *kind.ExclusiveMinimum:
		add("must be > " + ratString(k.Want))
	case *kind.ExclusiveMaximum:
		add("must be < " + ratString(k.Want))
	case *kind.MultipleOf:
		add("must be a multiple of " + ratString(k.Want))
	case *kind.Format:
		add("must be a valid " + k.Want)
	case *kind.MinItems:
		add(fmt.Sprintf("must have at least %d items", k.Want))
	case *kind.MaxItems:
		add(fmt.Sprintf("must have at most %d items", k.Want))
	case *kind.UniqueItems:
		add("must not repeat items")
	case *kind.FalseSchema:
		add("is not allowed")
	default:
		// Keywords paved's actions do not use; name the rule at least.
		add("does not satisfy " + strings.Join(e.ErrorKind.KeywordPath(), "/"))
	}
}

func article(t string) string {
	switch t {
	case "integer", "object", "array":
		return "an " + t
	case "null":
		return "null"
	}
	return "a " + t
}

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func display(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
