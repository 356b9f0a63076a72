// Package preview reads what `pulumi preview --json` prints (Pulumi's
// PreviewDigest: "steps", "changeSummary", …) and makes of it the summary
// the pipeline posts to paved: the resources it would change and a digest
// of the change, which an approval is bound to.
package preview

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/paved-idp/paved/internal/cost"
	"github.com/paved-idp/paved/internal/run"
)

// step is the part of a Pulumi PreviewStep the summary and the digest use.
type step struct {
	Op             string                  `json:"op"`
	URN            string                  `json:"urn"`
	Provider       string                  `json:"provider,omitempty"`
	NewState       *state                  `json:"newState,omitempty"`
	OldState       *state                  `json:"oldState,omitempty"`
	DiffReasons    []string                `json:"diffReasons,omitempty"`
	ReplaceReasons []string                `json:"replaceReasons,omitempty"`
	DetailedDiff   map[string]propertyDiff `json:"detailedDiff,omitempty"`
}

type state struct {
	Type   string         `json:"type"`
	Custom bool           `json:"custom"`
	Inputs map[string]any `json:"inputs,omitempty"`
}

type propertyDiff struct {
	Kind      string `json:"kind"`
	InputDiff bool   `json:"inputDiff"`
}

type digest struct {
	Steps         []step         `json:"steps"`
	ChangeSummary map[string]int `json:"changeSummary"`
	Diagnostics   []struct {
		Severity string `json:"severity"`
		Message  string `json:"message"`
	} `json:"diagnostics"`
}

// ops maps Pulumi's step operations onto the four a summary counts. A
// replacement shows as "replace" with its "create-replacement" and
// "delete-replaced" companions; only the first counts. Steps that change
// nothing ("same", "read", "refresh", "discard", …) are left out.
var ops = map[string]string{
	"create": run.OpCreate, "import": run.OpCreate,
	"update":  run.OpUpdate,
	"replace": run.OpReplace, "import-replacement": run.OpReplace, "read-replacement": run.OpReplace,
	"delete": run.OpDelete,
}

// refreshOp reads a step of `pulumi refresh --preview-only --json`, which
// may print what it finds as "refresh" steps: a resource gone from the
// cloud has no new state (a delete), one changed outside Pulumi a diff (an
// update); one unchanged is no change.
func refreshOp(s step) (string, bool) {
	switch {
	case s.NewState == nil:
		return run.OpDelete, true
	case len(s.DetailedDiff) > 0 || len(s.DiffReasons) > 0:
		return run.OpUpdate, true
	}
	return "", false
}

// Parse reads `pulumi preview --json` output. destroy says it was
// `pulumi preview --destroy`. A preview that reports errors is refused:
// nothing would be applied from it. With prices, the preview carries an
// estimate of the stack's monthly cost before and after the change.
func Parse(r io.Reader, destroy bool, prices *cost.Table) (run.Preview, error) {
	var d digest
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return run.Preview{}, fmt.Errorf("read pulumi preview --json: %w", err)
	}
	if d.Steps == nil && d.ChangeSummary == nil {
		return run.Preview{}, errors.New("read pulumi preview --json: no steps and no changeSummary: not the output of pulumi preview --json")
	}
	for _, diag := range d.Diagnostics {
		if diag.Severity == "error" {
			return run.Preview{}, fmt.Errorf("the preview failed: %s", strings.TrimSpace(diag.Message))
		}
	}
	p := run.Preview{Destroy: destroy, Resources: []run.PreviewResource{}}
	var changed []step
	for _, s := range d.Steps {
		op, ok := ops[s.Op]
		if s.Op == "refresh" {
			op, ok = refreshOp(s)
		}
		if !ok {
			continue
		}
		typ, name, err := splitURN(s.URN)
		if err != nil {
			return run.Preview{}, err
		}
		p.Resources = append(p.Resources, run.PreviewResource{Op: op, Type: typ, Name: name})
		changed = append(changed, s)
	}
	slices.SortFunc(p.Resources, func(a, b run.PreviewResource) int {
		return strings.Compare(a.Type+"\x00"+a.Name+"\x00"+a.Op, b.Type+"\x00"+b.Name+"\x00"+b.Op)
	})
	sum, err := digestOf(changed, destroy)
	if err != nil {
		return run.Preview{}, err
	}
	p.Digest = sum
	if prices != nil {
		before, after := stackStates(d.Steps)
		c := prices.Estimate(before, after)
		p.Cost = &c
	}
	return p, nil
}

// gone are the step operations after which a resource is not in the stack.
var gone = map[string]bool{"delete": true, "delete-replaced": true, "discard": true, "discard-replaced": true, "remove-pending-replace": true}

// stackStates are the stack's resources (custom ones: components and the
// stack itself cost nothing) as they are and as the change leaves them,
// from every step, unchanged ones included: Pulumi lists each resource of
// the program, with its old state where it has one.
func stackStates(steps []step) (before, after []cost.Resource) {
	seenBefore, seenAfter := map[string]bool{}, map[string]bool{}
	for _, s := range steps {
		_, name, err := splitURN(s.URN)
		if err != nil {
			continue
		}
		old := s.OldState
		if old == nil && s.Op == "same" {
			old = s.NewState
		}
		if old != nil && old.Custom && !seenBefore[s.URN] {
			seenBefore[s.URN] = true
			before = append(before, cost.Resource{Type: old.Type, Name: name, Inputs: old.Inputs})
		}
		if s.NewState != nil && s.NewState.Custom && !gone[s.Op] && !seenAfter[s.URN] {
			seenAfter[s.URN] = true
			after = append(after, cost.Resource{Type: s.NewState.Type, Name: name, Inputs: s.NewState.Inputs})
		}
	}
	return before, after
}

// digestOf fingerprints the change itself: every changing step's operation,
// URN, provider, reasons, detailed diff and new inputs, in URN order. Two
// previews proposing the same change give the same digest, whatever order
// Pulumi printed them in; a different input value, resource or operation
// gives another. Secrets appear as Pulumi prints them ("[secret]").
func digestOf(steps []step, destroy bool) (string, error) {
	type entry struct {
		Op, URN, Provider string
		DiffReasons       []string
		ReplaceReasons    []string
		DetailedDiff      map[string]propertyDiff
		Inputs            map[string]any
	}
	entries := make([]entry, 0, len(steps))
	for _, s := range steps {
		e := entry{Op: s.Op, URN: s.URN, Provider: s.Provider, DiffReasons: sorted(s.DiffReasons), ReplaceReasons: sorted(s.ReplaceReasons), DetailedDiff: s.DetailedDiff}
		if s.NewState != nil && s.Op != "delete" {
			e.Inputs = s.NewState.Inputs
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.URN+"\x00"+a.Op, b.URN+"\x00"+b.Op) })
	b, err := json.Marshal(struct {
		Destroy bool
		Steps   []entry
	}{destroy, entries})
	if err != nil {
		return "", fmt.Errorf("digest the preview: %w", err)
	}
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:]), nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// splitURN takes a resource's type and name from its URN,
// urn:pulumi:<stack>::<project>::<qualified type>::<name>, where the
// qualified type is the parents' types and its own, joined by "$".
func splitURN(urn string) (typ, name string, err error) {
	parts := strings.SplitN(urn, "::", 4)
	if len(parts) != 4 || !strings.HasPrefix(parts[0], "urn:pulumi:") {
		return "", "", fmt.Errorf("read pulumi preview --json: %q is not a resource URN", urn)
	}
	qualified := parts[2]
	if i := strings.LastIndex(qualified, "$"); i >= 0 {
		qualified = qualified[i+1:]
	}
	return qualified, parts[3], nil
}
