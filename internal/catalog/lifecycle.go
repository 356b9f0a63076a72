package catalog

import (
	"maps"
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
)

// LifecycleProperties are the properties paved writes onto the entities
// its actions manage, as blueprint schema properties: `paved render port`
// adds them to every blueprint an action writes.
func LifecycleProperties() map[string]any {
	return map[string]any{
		"status": map[string]any{"type": "string", "title": "Status", "description": "Where paved's last run left it",
			"enum":       []any{StatusProvisioning, StatusReady, StatusFailed, StatusDestroying, StatusDestroyed},
			"enumColors": map[string]any{StatusProvisioning: "blue", StatusReady: "green", StatusFailed: "red", StatusDestroying: "orange", StatusDestroyed: "darkGray"}},
		"statusReason": map[string]any{"type": "string", "title": "Status reason", "description": "Why the last run failed"},
		"lastRun":      map[string]any{"type": "string", "format": "url", "title": "Last run", "description": "paved's page of the last run"},
		"lastRunAt":    map[string]any{"type": "string", "format": "date-time", "title": "Last run at"},
		"pipelineUrl":  map[string]any{"type": "string", "format": "url", "title": "Pipeline", "description": "The last run's GitLab pipeline"},
	}
}

// LifecycleFor is the entity write that tells the portal where run r has
// left the entity its action manages: status (one of Status*), why it
// failed, the run's page (runURL) and time, and its pipeline. Nil when the
// action writes no entity or its identifier needs outputs not reported yet.
func (a *Action) LifecycleFor(r *run.Run, status, reason, runURL string) *run.EntityUpsert {
	e := a.entity(r, false)
	if e == nil {
		return nil
	}
	addLifecycle(e, r, status, reason, runURL)
	return e
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
