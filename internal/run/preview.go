package run

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// The operations of a preview's resources, as Pulumi names its steps.
const (
	OpCreate  = "create"
	OpUpdate  = "update"
	OpReplace = "replace"
	OpDelete  = "delete"
)

// Verdicts on a preview: what the pipeline does next.
const (
	VerdictApply         = "apply"          // go on and apply
	VerdictDryRun        = "dry_run"        // stop: the run asked only for the preview
	VerdictAwaitApproval = "await_approval" // stop: apply after an approval of this preview
	VerdictRefused       = "refused"        // fail: the policy refuses what the preview shows
	VerdictChanged       = "digest_changed" // fail: not the preview that was approved
	VerdictDrift         = "drift_checked"  // stop: a drift check applies nothing
)

// Preview summarises a `pulumi preview` of a run's stack: what it would
// create, update, replace and delete, and a digest of the whole preview
// (made by the pipeline) that an approval is bound to.
type Preview struct {
	Resources []PreviewResource `json:"resources"`
	Digest    string            `json:"digest"`
	// Destroy is a preview of the stack's destruction (a DELETE run).
	Destroy bool      `json:"destroy,omitempty"`
	At      time.Time `json:"at"`
	// Verdict is paved's judgement (Verdict*), Reasons why it stopped.
	Verdict string   `json:"verdict"`
	Reasons []string `json:"reasons,omitempty"`
	// Cost is the pipeline's estimate of what the stack costs a month,
	// before and after the change (absent from older pipelines).
	Cost *Cost `json:"cost,omitempty"`
}

// Cost is an estimate of a stack's monthly cost from its preview and
// paved's price table (internal/cost): the fixed part of each resource
// (instance hours, provisioned capacity, keys, secrets, pods' requests),
// not what use adds (requests, storage, transfer).
type Cost struct {
	Monthly  float64 `json:"monthly"` // the stack after the change
	Before   float64 `json:"before"`  // the stack as it is
	Delta    float64 `json:"delta"`   // Monthly - Before
	Currency string  `json:"currency"`
	// Prices names the price table: region, source and date.
	Prices string `json:"prices"`
	// Unpriced are resources the table has no price for, "<type> <name>:
	// why"; their cost is not in the figures.
	Unpriced []string `json:"unpriced,omitempty"`
}

// Label is the estimate as a short text: "$52.30/month (+$12.00)".
func (c *Cost) Label() string {
	sign := "+"
	if c.Delta < 0 {
		sign = "-"
	}
	sym := c.Currency + " "
	if c.Currency == "USD" {
		sym = "$"
	}
	return fmt.Sprintf("%s%.2f/month (%s%s%.2f)", sym, c.Monthly, sign, sym, math.Abs(c.Delta))
}

// PreviewResource is one resource the preview would change.
type PreviewResource struct {
	Op   string `json:"op"`   // OpCreate, OpUpdate, OpReplace or OpDelete
	Type string `json:"type"` // the Pulumi type token, e.g. aws:s3/bucketV2:BucketV2
	Name string `json:"name"` // the Pulumi resource name
}

// Verdict is paved's verdict on the preview of the run's current dispatch,
// "" when this dispatch has posted none (an earlier dispatch's preview, the
// one an approval was given for, does not count).
func (r *Run) Verdict() string {
	if r.Preview == nil || r.Preview.At.Before(r.DispatchedAt) {
		return ""
	}
	return r.Preview.Verdict
}

// Counts tells how many resources each operation touches.
func (p *Preview) Counts() (create, update, replace, del int) {
	for _, r := range p.Resources {
		switch r.Op {
		case OpCreate:
			create++
		case OpUpdate:
			update++
		case OpReplace:
			replace++
		case OpDelete:
			del++
		}
	}
	return
}

// Label is the preview in a status label's few characters, the way plan
// tools print it: "+3 ~1 -0 (1 replace)".
func (p *Preview) Label() string {
	c, u, r, d := p.Counts()
	s := fmt.Sprintf("+%d ~%d -%d", c, u, d)
	if r > 0 {
		s += fmt.Sprintf(" (%d replace)", r)
	}
	return s
}

// LabelWithCost is Label and, when the preview has one, the estimate:
// "+3 ~1 -0, $52.30/month (+$12.00)".
func (p *Preview) LabelWithCost() string {
	if p.Cost == nil {
		return p.Label()
	}
	return p.Label() + ", " + p.Cost.Label()
}

// Lines are the preview as log lines: the counts, then one line a resource.
func (p *Preview) Lines() []string {
	what := "Preview"
	if p.Destroy {
		what = "Preview of the stack's destruction"
	}
	lines := []string{fmt.Sprintf("%s: %s (digest %s)", what, p.Label(), shortDigest(p.Digest))}
	if c := p.Cost; c != nil {
		lines = append(lines, fmt.Sprintf("  estimated cost %s: the fixed part (instances, capacity, pods' requests), not use; prices: %s", c.Label(), c.Prices))
		for _, u := range c.Unpriced {
			lines = append(lines, "  not priced: "+u)
		}
	}
	if len(p.Resources) == 0 {
		return append(lines, "  no changes")
	}
	sign := map[string]string{OpCreate: "+", OpUpdate: "~", OpReplace: "+-", OpDelete: "-"}
	for _, r := range p.Resources {
		lines = append(lines, fmt.Sprintf("  %s %s %s (%s)", sign[r.Op], r.Type, r.Name, r.Op))
	}
	return lines
}

func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return d[:len(d)-len(hex)] + hex[:12]
	}
	return d
}
