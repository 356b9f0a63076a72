// Package cloudsim is a simulated cloud for the demo and the end-to-end
// suite: what Pulumi stacks hold, previewed and applied as Pulumi would.
package cloudsim

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"sync"
)

// Cloud is the simulated cloud the demo's pipeline job (demo.ProvisionJob)
// provisions into: the
// resources of each stack, as a Pulumi stack's state would hold them. Its
// previews are printed the way `pulumi preview --json` prints them (a
// PreviewDigest: "steps" with op, urn, oldState and newState, detailedDiff,
// and a "changeSummary"), so paved's pipeline side reads them as it reads
// Pulumi's. Tests change a stack's resources behind paved's back with Set
// and Remove, as drift or another tool would.
type Cloud struct {
	mu sync.Mutex
	// stacks is what the cloud holds, state what the stack's Pulumi state
	// records (stack → URN → resource): they differ where the cloud drifted.
	stacks, state map[string]map[string]Resource
}

// Resource is one cloud resource of a stack.
type Resource struct {
	Type   string         // Pulumi type token
	Name   string         // Pulumi resource name
	Inputs map[string]any // its inputs, as Pulumi records them
}

// NewCloud returns an empty cloud.
func NewCloud() *Cloud {
	return &Cloud{stacks: map[string]map[string]Resource{}, state: map[string]map[string]Resource{}}
}

func urn(stack string, r Resource) string {
	return "urn:pulumi:" + stack + "::paved::" + r.Type + "::" + r.Name
}

// Resources lists a stack's resources, by URN.
func (c *Cloud) Resources(stack string) []Resource {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := slices.Sorted(maps.Keys(c.stacks[stack]))
	out := make([]Resource, len(keys))
	for i, k := range keys {
		out[i] = c.stacks[stack][k]
		out[i].Inputs = maps.Clone(out[i].Inputs) // the caller's to change
	}
	return out
}

// Set puts a resource into a stack, in the cloud and in its state, as
// another Pulumi update of the stack would; one of the same type and name
// is replaced.
func (c *Cloud) Set(stack string, r Resource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	put(c.stacks, stack, r)
	put(c.state, stack, r)
}

// Drift changes a resource in the cloud only, behind Pulumi's back (a
// console edit): the stack's state still records it as it was.
func (c *Cloud) Drift(stack string, r Resource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	put(c.stacks, stack, r)
}

func put(m map[string]map[string]Resource, stack string, r Resource) {
	if m[stack] == nil {
		m[stack] = map[string]Resource{}
	}
	r.Inputs = maps.Clone(r.Inputs)
	m[stack][urn(stack, r)] = r
}

type state struct {
	URN    string         `json:"urn"`
	Custom bool           `json:"custom"`
	Type   string         `json:"type"`
	Inputs map[string]any `json:"inputs,omitempty"`
}

type propertyDiff struct {
	Kind      string `json:"kind"`
	InputDiff bool   `json:"inputDiff"`
}

type step struct {
	Op             string                  `json:"op"`
	URN            string                  `json:"urn"`
	OldState       *state                  `json:"oldState,omitempty"`
	NewState       *state                  `json:"newState,omitempty"`
	DiffReasons    []string                `json:"diffReasons,omitempty"`
	ReplaceReasons []string                `json:"replaceReasons,omitempty"`
	DetailedDiff   map[string]propertyDiff `json:"detailedDiff,omitempty"`
}

// replaceOn are the inputs the providers cannot change in place (a
// bucket's or queue's name, a database's engine): a change replaces the
// resource.
var replaceOn = map[string]bool{"bucket": true, "name": true, "engine": true}

// PreviewJSON is `pulumi preview --json` of a stack whose program declares
// want, next to what the stack holds (which want adds to: the golden path
// keeps every resource earlier runs added). destroy previews the stack's
// destruction instead.
func (c *Cloud) PreviewJSON(stack string, want []Resource, destroy bool) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	have := c.state[stack] // pulumi preview diffs the program against the state
	var steps []step
	summary := map[string]int{}
	add := func(s step) {
		steps = append(steps, s)
		summary[s.Op]++
	}
	stateOf := func(r Resource) *state {
		return &state{URN: urn(stack, r), Custom: true, Type: r.Type, Inputs: r.Inputs}
	}
	if destroy {
		for _, k := range slices.Sorted(maps.Keys(have)) {
			add(step{Op: "delete", URN: k, OldState: stateOf(have[k])})
		}
	} else {
		wanted := map[string]bool{}
		for _, r := range want {
			k := urn(stack, r)
			wanted[k] = true
			old, ok := have[k]
			switch {
			case !ok:
				add(step{Op: "create", URN: k, NewState: stateOf(r)})
			case reflect.DeepEqual(old.Inputs, r.Inputs):
				add(step{Op: "same", URN: k, OldState: stateOf(old), NewState: stateOf(r)})
			default:
				s := step{Op: "update", URN: k, OldState: stateOf(old), NewState: stateOf(r), DetailedDiff: map[string]propertyDiff{}}
				for _, key := range slices.Sorted(maps.Keys(union(old.Inputs, r.Inputs))) {
					if reflect.DeepEqual(old.Inputs[key], r.Inputs[key]) {
						continue
					}
					s.DiffReasons = append(s.DiffReasons, key)
					kind := "update"
					if replaceOn[key] {
						kind = "update-replace"
						s.Op, s.ReplaceReasons = "replace", append(s.ReplaceReasons, key)
					}
					s.DetailedDiff[key] = propertyDiff{Kind: kind, InputDiff: true}
				}
				add(s)
				if s.Op == "replace" {
					// Pulumi shows a replacement as three steps: replace, then
					// the new one's creation and the old one's deletion.
					add(step{Op: "create-replacement", URN: k, NewState: stateOf(r), ReplaceReasons: s.ReplaceReasons})
					add(step{Op: "delete-replaced", URN: k, OldState: stateOf(old)})
				}
			}
		}
		for _, k := range slices.Sorted(maps.Keys(have)) {
			if !wanted[k] {
				add(step{Op: "same", URN: k, OldState: stateOf(have[k]), NewState: stateOf(have[k])})
			}
		}
	}
	b, err := json.MarshalIndent(map[string]any{"steps": steps, "changeSummary": summary, "duration": 1200000000}, "", "    ")
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b
}

// Apply makes the stack hold want (or nothing, for destroy), in the cloud
// and in its state.
func (c *Cloud) Apply(stack string, want []Resource, destroy bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if destroy {
		delete(c.stacks, stack)
		delete(c.state, stack)
		return
	}
	for _, r := range want {
		put(c.stacks, stack, r)
		put(c.state, stack, r)
	}
}

// RefreshJSON is `pulumi refresh --preview-only --json` of a stack: what
// refreshing its state from the cloud would change — an update for a
// resource changed outside Pulumi, a delete for one gone.
func (c *Cloud) RefreshJSON(stack string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var steps []step
	summary := map[string]int{}
	stateOf := func(r Resource) *state {
		return &state{URN: urn(stack, r), Custom: true, Type: r.Type, Inputs: r.Inputs}
	}
	for _, k := range slices.Sorted(maps.Keys(c.state[stack])) {
		recorded := c.state[stack][k]
		actual, ok := c.stacks[stack][k]
		s := step{Op: "same", URN: k, OldState: stateOf(recorded), NewState: stateOf(actual)}
		switch {
		case !ok:
			s = step{Op: "delete", URN: k, OldState: stateOf(recorded)}
		case !reflect.DeepEqual(recorded.Inputs, actual.Inputs):
			s.Op, s.DetailedDiff = "update", map[string]propertyDiff{}
			for _, key := range slices.Sorted(maps.Keys(union(recorded.Inputs, actual.Inputs))) {
				if !reflect.DeepEqual(recorded.Inputs[key], actual.Inputs[key]) {
					s.DiffReasons = append(s.DiffReasons, key)
					s.DetailedDiff[key] = propertyDiff{Kind: "update"}
				}
			}
		}
		steps = append(steps, s)
		summary[s.Op]++
	}
	b, err := json.MarshalIndent(map[string]any{"steps": steps, "changeSummary": summary, "duration": 900000000}, "", "    ")
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b
}

func union(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]any{}
	}
	maps.Copy(out, b)
	return out
}
