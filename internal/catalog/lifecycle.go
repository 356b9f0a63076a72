package catalog

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/clip"
	"github.com/paved-idp/paved/internal/run"
)

// The lifecycle states paved keeps on every entity it manages (property
// "status"), for the portal's dashboards.
const (
	StatusProvisioning = "provisioning"
	StatusReady        = "ready"
	StatusFailed       = "failed"
	StatusDestroying   = "destroying"
	StatusDestroyed    = "destroyed"
	StatusDrifted      = "drifted"
	StatusExpiring     = "expiring"
)

// StatusAfter is the status a change of operation op gives its entity:
// while it is applied (provisioning, destroying), then once done (ready,
// destroyed).
func StatusAfter(op run.Operation, done bool) string {
	switch {
	case op == run.Delete && done:
		return StatusDestroyed
	case op == run.Delete:
		return StatusDestroying
	case done:
		return StatusReady
	}
	return StatusProvisioning
}

// LifecycleProperties are the properties paved writes onto the entities
// its actions manage, as blueprint schema properties: `paved render port`
// adds them to every blueprint an action writes.
func LifecycleProperties() map[string]any {
	return map[string]any{
		"status": map[string]any{"type": "string", "title": "Status", "description": "Where paved's last run left it",
			"enum":       []any{StatusProvisioning, StatusReady, StatusFailed, StatusDrifted, StatusExpiring, StatusDestroying, StatusDestroyed},
			"enumColors": map[string]any{StatusProvisioning: "blue", StatusReady: "green", StatusFailed: "red", StatusDrifted: "yellow", StatusExpiring: "purple", StatusDestroying: "orange", StatusDestroyed: "darkGray"}},
		"monthlyCost": map[string]any{"type": "number", "title": "Monthly cost (estimated)",
			"description": "The stack's fixed monthly cost, in the price table's currency (USD), estimated by paved from its last applied preview; use (requests, storage, transfer) not included"},
		"expiresAt":      map[string]any{"type": "string", "format": "date-time", "title": "Expires at", "description": "When paved destroys this ephemeral stack (extend it with paved-extend-ttl)"},
		"drift":          map[string]any{"type": "string", "title": "Drift", "description": "The last drift check: in sync, or what changed outside paved"},
		"driftCheckedAt": map[string]any{"type": "string", "format": "date-time", "title": "Drift checked at"},
		"statusReason":   map[string]any{"type": "string", "title": "Status reason", "description": "Why the last run failed"},
		"lastRun":        map[string]any{"type": "string", "format": "url", "title": "Last run", "description": "paved's page of the last run"},
		"lastRunAt":      map[string]any{"type": "string", "format": "date-time", "title": "Last run at"},
		"pipelineUrl":    map[string]any{"type": "string", "format": "url", "title": "Pipeline", "description": "The last run's GitLab pipeline"},
	}
}

// LifecycleFor are the entity writes that tell the portal where run r has
// left what its action manages: status (one of Status*), why it failed,
// the run's page (runURL) and time, and its pipeline. That is the action's
// entity, and for a DELETE or a run of paved's own (an expiry's destroy)
// the stack's own entities it reports on (ReportsOn). None when the action writes no entity or its
// identifier needs outputs not reported yet.
func (a *Action) LifecycleFor(r *run.Run, status, reason, runURL string) []*run.EntityUpsert {
	var out []*run.EntityUpsert
	if r.Request.Portal != run.PortalPaved {
		if e := a.entity(r, false); e != nil {
			out = append(out, e)
		}
	}
	if r.Request.Portal == run.PortalPaved || r.Operation == run.Delete {
		// A stack's destroy: every entity that is the stack's own.
		for _, ref := range r.ReportsOn {
			if !slices.ContainsFunc(out, func(e *run.EntityUpsert) bool { return e.Blueprint == ref.Blueprint && e.Identifier == ref.Identifier }) {
				out = append(out, &run.EntityUpsert{Blueprint: ref.Blueprint, Identifier: ref.Identifier})
			}
		}
	}
	for _, e := range out {
		addLifecycle(e, r, status, reason, runURL)
	}
	return out
}

// EntityWithLifecycle is EntityFor with the lifecycle properties added.
func (a *Action) EntityWithLifecycle(r *run.Run, status, reason, runURL string) *run.EntityUpsert {
	e := a.EntityFor(r)
	if e == nil {
		return nil
	}
	addLifecycle(e, r, status, reason, runURL)
	return e
}

func addLifecycle(e *run.EntityUpsert, r *run.Run, status, reason, runURL string) {
	props := map[string]any{"status": status, "statusReason": clip.String(reason, 500), "lastRunAt": r.UpdatedAt.UTC().Format(time.RFC3339)}
	if runURL != "" {
		props["lastRun"] = runURL
	}
	if r.PipelineURL != "" {
		props["pipelineUrl"] = r.PipelineURL
	}
	if e.Properties == nil {
		e.Properties = map[string]any{}
	}
	maps.Copy(e.Properties, props)
}

// DriftFor is the entity write of a drift check of the stack entity e (an
// identity: blueprint and identifier) belongs to: the check's summary, when
// it ran, and status drifted when the cloud differs from the stack.
func DriftFor(e *run.EntityUpsert, p *run.Preview, at time.Time) *run.EntityUpsert {
	out := &run.EntityUpsert{Blueprint: e.Blueprint, Identifier: e.Identifier, Properties: map[string]any{
		"drift": DriftSummary(p), "driftCheckedAt": at.UTC().Format(time.RFC3339)}}
	if len(p.Resources) > 0 {
		out.Properties["status"] = StatusDrifted
	}
	return out
}

// DriftSummary says what a drift check found: "in sync", or the changes
// made outside paved, "drifted: ~1 -0 (aws:s3/bucketV2:BucketV2 x updated)".
func DriftSummary(p *run.Preview) string {
	if len(p.Resources) == 0 {
		return "in sync"
	}
	what := make([]string, 0, len(p.Resources))
	for _, r := range p.Resources {
		what = append(what, r.Type+" "+r.Name+" "+map[string]string{run.OpUpdate: "changed", run.OpDelete: "deleted", run.OpCreate: "added", run.OpReplace: "replaced"}[r.Op])
	}
	_, u, _, d := p.Counts()
	return clip.String(fmt.Sprintf("drifted: ~%d -%d (%s)", u, d, strings.Join(what, ", ")), 1000)
}

// FailedIfApplied is the entity write of a run that ended (canceled, timed
// out) after paved let its pipeline apply: the entity failed, with the
// reason. Nil when nothing was let apply in this dispatch (a dry run, a
// drift check, a refused or unapproved preview), which leaves the entity
// as it was.
func (a *Action) FailedIfApplied(r *run.Run, reason, runURL string) []*run.EntityUpsert {
	if r.DryRun || r.Operation == run.Drift || r.Verdict() != run.VerdictApply {
		return nil
	}
	return a.LifecycleFor(r, StatusFailed, reason, runURL)
}

// checkTTL allows the input run.TTLInput only where it means something: on
// a CREATE (the run that makes a stack), as a string ParseTTL reads.
func checkTTL(op run.Operation, props map[string]map[string]any) []error {
	p, ok := props[run.TTLInput]
	if !ok {
		return nil
	}
	field := "inputs.schema.properties." + run.TTLInput
	if op != run.Create {
		return []error{defErr(field, "makes the stack a CREATE makes ephemeral; a %s action cannot have it", op)}
	}
	if p["type"] != "string" {
		return []error{defErr(field, "must be a string like 8h or 3d (whole minutes, hours or days)")}
	}
	return nil
}

// ExpiryFor is the entity write of an ephemeral stack's expiry onto e (an
// identity): when it expires (the zero time: no more, written as null),
// and status, when not "": expiring once the portal was warned, ready again
// after an extension.
func ExpiryFor(e run.EntityRef, expiresAt time.Time, status string) *run.EntityUpsert {
	var at any
	if !expiresAt.IsZero() {
		at = expiresAt.UTC().Format(time.RFC3339)
	}
	out := &run.EntityUpsert{Blueprint: e.Blueprint, Identifier: e.Identifier, Properties: map[string]any{"expiresAt": at}}
	if status != "" {
		out.Properties["status"] = status
	}
	return out
}

// AddCost writes the estimate of the preview an applied change followed
// onto its entity (monthlyCost), when the pipeline sent one.
func AddCost(e *run.EntityUpsert, p *run.Preview) {
	if p == nil || p.Cost == nil {
		return
	}
	if e.Properties == nil {
		e.Properties = map[string]any{}
	}
	e.Properties["monthlyCost"] = p.Cost.Monthly
}
