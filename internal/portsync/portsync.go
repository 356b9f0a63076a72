// Package portsync makes the blueprints and actions in Port what paved's
// catalog renders (internal/render): it reads each one from Port's API,
// compares, and creates or replaces only what differs. Blueprints go first,
// in the order render gives (a relation's target before the blueprint
// relating to it), then actions, which name their blueprint. A second sync
// finds nothing to do and says so; a dry run only reads.
package portsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/paved-idp/paved/internal/clip"
	"github.com/paved-idp/paved/internal/render"
)

// Kind is what a document is: a blueprint or an action.
type Kind string

// The kinds, as Port's routes name them.
const (
	Blueprint Kind = "blueprint"
	Action    Kind = "action"
)

// ErrNotFound is API.Get's answer for an identifier Port does not have.
var ErrNotFound = errors.New("portsync: not found")

// API is what a sync needs of Port; Client implements it over Port's REST
// API.
type API interface {
	// Get returns the document as Port has it, or ErrNotFound.
	Get(ctx context.Context, kind Kind, id string) (map[string]any, error)
	Create(ctx context.Context, kind Kind, doc map[string]any) error
	// Replace replaces the whole document (PUT).
	Replace(ctx context.Context, kind Kind, id string, doc map[string]any) error
}

// Op is what a sync does to one document.
type Op string

// The ops.
const (
	Create    Op = "create"
	Update    Op = "update"
	Unchanged Op = "unchanged"
)

// Change is the plan for one document.
type Change struct {
	Kind       Kind
	Identifier string
	Op         Op
	// Diffs are what an Update changes, by path, sorted.
	Diffs []Diff

	doc map[string]any
}

// Diff is one difference between Port's document and the rendered one.
type Diff struct {
	Path string // "trigger.userInputs.properties.tenant.title"
	// Old is Port's value, New the rendered one; a missing side is absent
	// (HasOld/HasNew false).
	Old, New       any
	HasOld, HasNew bool
}

// Plan reads every rendered document from Port and says what a sync would
// do to it. It only reads.
func Plan(ctx context.Context, api API, want render.Port) ([]Change, error) {
	var out []Change
	for _, set := range []struct {
		kind Kind
		docs []map[string]any
	}{{Blueprint, want.Blueprints}, {Action, want.Actions}} {
		for _, doc := range set.docs {
			id, _ := doc["identifier"].(string)
			if id == "" {
				return nil, fmt.Errorf("portsync: a rendered %s has no identifier", set.kind)
			}
			desired, err := normal(doc)
			if err != nil {
				return nil, fmt.Errorf("portsync: %s %s: %w", set.kind, id, err)
			}
			c := Change{Kind: set.kind, Identifier: id, doc: doc}
			have, err := api.Get(ctx, set.kind, id)
			switch {
			case errors.Is(err, ErrNotFound):
				c.Op = Create
			case err != nil:
				return nil, fmt.Errorf("portsync: read %s %s: %w", set.kind, id, err)
			default:
				// Port adds fields of its own (createdAt, an action's id, ...):
				// only the fields paved renders are compared, each in full.
				for _, k := range slices.Sorted(maps.Keys(desired)) {
					old, ok := have[k]
					c.Diffs = append(c.Diffs, diff(k, old, ok, desired[k], true)...)
				}
				c.Op = Unchanged
				if len(c.Diffs) > 0 {
					c.Op = Update
				}
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// Apply carries out a plan in its order.
func Apply(ctx context.Context, api API, plan []Change) error {
	for _, c := range plan {
		var err error
		switch c.Op {
		case Create:
			err = api.Create(ctx, c.Kind, c.doc)
		case Update:
			err = api.Replace(ctx, c.Kind, c.Identifier, c.doc)
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("portsync: %s %s %s: %w", c.Op, c.Kind, c.Identifier, err)
		}
	}
	return nil
}

// Options tune Sync.
type Options struct {
	// DryRun prints the plan and writes nothing.
	DryRun bool
	// Out receives the plan, one line per document and one per difference.
	Out io.Writer
}

// Sync plans, prints the plan, and applies it unless DryRun. It returns the
// plan.
func Sync(ctx context.Context, api API, want render.Port, opt Options) ([]Change, error) {
	plan, err := Plan(ctx, api, want)
	if err != nil {
		return nil, err
	}
	out := opt.Out
	if out == nil {
		out = io.Discard
	}
	if err := Print(out, plan, opt.DryRun); err != nil {
		return plan, err
	}
	if opt.DryRun {
		return plan, nil
	}
	return plan, Apply(ctx, api, plan)
}

// maxDiffs bounds the differences printed per document.
const maxDiffs = 20

// Print writes a plan for a person to read.
func Print(w io.Writer, plan []Change, dryRun bool) error {
	var b strings.Builder
	n := map[Op]int{}
	for _, c := range plan {
		n[c.Op]++
		fmt.Fprintf(&b, "%s %s: %s\n", c.Kind, c.Identifier, c.Op)
		for i, d := range c.Diffs {
			if i == maxDiffs {
				fmt.Fprintf(&b, "    … and %d more\n", len(c.Diffs)-maxDiffs)
				break
			}
			switch {
			case !d.HasOld:
				fmt.Fprintf(&b, "    + %s: %s\n", d.Path, show(d.New))
			case !d.HasNew:
				fmt.Fprintf(&b, "    - %s: %s\n", d.Path, show(d.Old))
			default:
				fmt.Fprintf(&b, "    ~ %s: %s → %s\n", d.Path, show(d.Old), show(d.New))
			}
		}
	}
	switch {
	case n[Create]+n[Update] == 0:
		fmt.Fprintf(&b, "nothing to do: all %d are as rendered\n", len(plan))
	case dryRun:
		fmt.Fprintf(&b, "dry run: would create %d, update %d, leave %d unchanged; nothing written\n", n[Create], n[Update], n[Unchanged])
	default:
		fmt.Fprintf(&b, "creating %d, updating %d, leaving %d unchanged\n", n[Create], n[Update], n[Unchanged])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func show(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return clip.String(string(raw), 80)
}

// diff lists the paths where Port's value (have) and the rendered one
// (want) differ: objects key by key, any other value as a whole.
func diff(path string, have any, hasHave bool, want any, hasWant bool) []Diff {
	hm, hIsMap := have.(map[string]any)
	wm, wIsMap := want.(map[string]any)
	if hasHave && hasWant && hIsMap && wIsMap {
		keys := slices.Collect(maps.Keys(hm))
		for k := range wm {
			if _, ok := hm[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		var out []Diff
		for _, k := range keys {
			hv, ok1 := hm[k]
			wv, ok2 := wm[k]
			out = append(out, diff(path+"."+k, hv, ok1, wv, ok2)...)
		}
		return out
	}
	if hasHave == hasWant && reflect.DeepEqual(have, want) {
		return nil
	}
	return []Diff{{Path: path, Old: have, New: want, HasOld: hasHave, HasNew: hasWant}}
}

// normal is doc as JSON decodes it (numbers float64, lists []any), the form
// Port's answers have, so that equal documents compare equal.
func normal(doc map[string]any) (map[string]any, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	return out, nil
}
