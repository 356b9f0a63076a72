package run

// Report is one message for the portal about a run, portal-neutral. The
// reporter delivers a run's reports in the order they were recorded.
type Report struct {
	// Log is a line for the run's log in the portal.
	Log string `json:"log,omitempty"`
	// StatusLabel is a short progress text ("Queued (2nd in line)").
	StatusLabel string `json:"statusLabel,omitempty"`
	// Link is the pipeline URL, sent as soon as it exists.
	Link string `json:"link,omitempty"`
	// Final is "SUCCESS" or "FAILURE" on the last report of a run.
	Final string `json:"final,omitempty"`
	// Summary explains the final status.
	Summary string `json:"summary,omitempty"`
	// Entity is written to the portal catalog (upsert and merge).
	Entity *EntityUpsert `json:"entity,omitempty"`
	// Untied reports only the Entity, tied to no portal run: news of the
	// run's stack long after the run ended (an expiry's warning). It
	// updates an entity that exists and never creates one: the entity may
	// have been deleted since (a destroyed stack's), and news of another
	// run may overtake it.
	Untied bool `json:"untied,omitempty"`
	// Delete removes an entity from the portal catalog (a destroyed
	// stack's, for an action that deletes rather than marks them); one
	// already gone counts as deleted.
	Delete *EntityRef `json:"delete,omitempty"`
}

// Final statuses as Port names them.
const (
	Success = "SUCCESS"
	Failure = "FAILURE"
)

// EntityUpsert writes a run's outputs onto a portal entity.
type EntityUpsert struct {
	Blueprint  string         `json:"blueprint"`
	Identifier string         `json:"identifier"`
	Title      string         `json:"title,omitempty"`
	Team       []string       `json:"team,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
	Relations  map[string]any `json:"relations,omitempty"`
}

// PipelineRequest is the JSON paved passes to the pipeline as the file
// variable PAVED_REQUEST; cmd/provision reads it.
type PipelineRequest struct {
	RunID     string         `json:"runId"`
	Action    string         `json:"action"`
	Operation Operation      `json:"operation"`
	Stack     Stack          `json:"stack"`
	Team      string         `json:"team,omitempty"`
	User      User           `json:"user"`
	Entity    Entity         `json:"entity"`
	Inputs    map[string]any `json:"inputs"`
}

// PipelineRequestOf builds the pipeline's view of a run.
func PipelineRequestOf(r *Run) PipelineRequest {
	return PipelineRequest{
		RunID: r.ID, Action: r.Request.Action, Operation: r.Operation, Stack: r.Stack,
		Team: r.Team, User: r.Request.User, Entity: r.Request.Entity, Inputs: r.Request.Inputs,
	}
}
