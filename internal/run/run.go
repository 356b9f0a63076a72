// Package run is paved's domain: a run of a portal action, its states and the
// legal transitions between them. It imports nothing of paved's own.
package run

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// State is where a run is in its life.
type State string

// The run states; see shared/DESIGN.md "Run states".
const (
	Received         State = "received"
	Rejected         State = "rejected"
	AwaitingApproval State = "awaiting_approval"
	Queued           State = "queued"
	Dispatching      State = "dispatching"
	Running          State = "running"
	Succeeded        State = "succeeded"
	Failed           State = "failed"
	Canceled         State = "canceled"
	TimedOut         State = "timed_out"
)

// Terminal reports whether no transition leaves s.
func (s State) Terminal() bool {
	switch s {
	case Rejected, Succeeded, Failed, Canceled, TimedOut:
		return true
	}
	return false
}

var transitions = map[State][]State{
	Received:         {Rejected, AwaitingApproval, Queued},
	AwaitingApproval: {Queued, Rejected, Canceled},
	Queued:           {Dispatching, Canceled, TimedOut},
	Dispatching:      {Running, Failed, Canceled, TimedOut},
	// A guarded run's preview pipeline ends without applying; the run then
	// waits for an approval of exactly that preview.
	Running: {Succeeded, Failed, Canceled, TimedOut, AwaitingApproval},
}

// CanTransition reports whether a run may move from one state to another.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Errors callers match with errors.Is.
var (
	ErrNotFound          = errors.New("run not found")
	ErrIllegalTransition = errors.New("illegal run state transition")
)

// TransitionError says which move was refused.
type TransitionError struct {
	RunID    string
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("run %s: cannot move from %s to %s", e.RunID, e.From, e.To)
}

// Unwrap lets errors.Is(err, ErrIllegalTransition) match.
func (e *TransitionError) Unwrap() error { return ErrIllegalTransition }

// Operation is what an action does to its entity, as Port names it.
type Operation string

// Port's action trigger operations, and paved's own.
const (
	Create Operation = "CREATE"
	Day2   Operation = "DAY-2"
	Delete Operation = "DELETE"
	// Drift checks a stack against its cloud and never applies anything
	// (the pipeline's PAVED_OPERATION=DRIFT: pulumi refresh --preview-only).
	Drift Operation = "DRIFT"
)

// PortalPaved is the portal of runs paved starts itself (drift checks):
// they have no portal run; only their entity writes reach a portal.
const PortalPaved = "paved"

// User is the person who pressed the button.
type User struct {
	Email string   `json:"email"`
	Name  string   `json:"name,omitempty"`
	Teams []string `json:"teams,omitempty"`
}

// Entity is the portal entity an action runs on (empty for CREATE actions).
type Entity struct {
	Identifier string         `json:"identifier,omitempty"`
	Blueprint  string         `json:"blueprint,omitempty"`
	Title      string         `json:"title,omitempty"`
	Team       []string       `json:"team,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// EntityRef names a portal entity.
type EntityRef struct {
	Blueprint  string `json:"blueprint"`
	Identifier string `json:"identifier"`
}

// Request is a portal's ask, decoded and not yet judged.
type Request struct {
	Portal      string `json:"portal"`      // "port", "backstage" or "api"
	PortalRunID string `json:"portalRunId"` // the portal's own run id; with Portal, the idempotency key
	Action      string `json:"action"`
	// Caller is the API client that submitted the request on the user's
	// behalf (empty for portal webhooks).
	Caller string         `json:"caller,omitempty"`
	User   User           `json:"user"`
	Entity Entity         `json:"entity"`
	Inputs map[string]any `json:"inputs"`
}

// Stack names the deployment a run changes: one Pulumi stack.
type Stack struct {
	Tenant      string `json:"tenant"`
	Environment string `json:"environment"`
	Service     string `json:"service"`
}

// Key is the stack's name, <tenant>-<environment>-<service>.
func (s Stack) Key() string { return s.Tenant + "-" + s.Environment + "-" + s.Service }

// Run is one execution of an action, from the button press to its result.
type Run struct {
	ID        string    `json:"id"`
	Request   Request   `json:"request"`
	Operation Operation `json:"operation"`
	Blueprint string    `json:"blueprint"` // the blueprint the action writes results to
	Stack     Stack     `json:"stack"`
	Team      string    `json:"team,omitempty"` // the owning team of the service
	State     State     `json:"state"`
	// Reasons say why a run was rejected or failed, one sentence each.
	Reasons []string `json:"reasons,omitempty"`
	// Project and Ref name the GitLab project and ref the run triggers.
	Project string `json:"project"`
	Ref     string `json:"ref"`
	// ProjectID is the numeric id of Project, learnt from GitLab with the
	// run's pipeline; a pipeline hook must name it to count.
	ProjectID   int64  `json:"projectId,omitempty"`
	PipelineID  int64  `json:"pipelineId,omitempty"`
	PipelineURL string `json:"pipelineUrl,omitempty"`
	// PipelineStatus is GitLab's last known status of the pipeline.
	PipelineStatus string         `json:"pipelineStatus,omitempty"`
	Outputs        map[string]any `json:"outputs,omitempty"`
	// DispatchedAt is when the trigger call began; reconciliation looks for
	// pipelines created since then.
	DispatchedAt time.Time `json:"dispatchedAt,omitzero"`
	// TriggeredAt is when the latest trigger call began.
	TriggeredAt time.Time `json:"triggeredAt,omitzero"`
	// QueueAhead is how many runs of its stack went before it when it was
	// last told (queued runs only).
	QueueAhead int `json:"queueAhead,omitempty"`
	// Timeout is how long the run may take once dispatched; Deadline is
	// set from it when the dispatch begins.
	Timeout  time.Duration `json:"timeout,omitempty"`
	Deadline time.Time     `json:"deadline,omitzero"`
	// RequestDigest fingerprints the request as submitted, so that a repeat
	// of its idempotency key with a different request is refused.
	RequestDigest string `json:"requestDigest,omitempty"`
	// Approvers are who the policy said may approve the run, when it began
	// to wait (asked again at the decision); ApprovalExpiresAt is when an
	// undecided run is rejected (zero: never).
	Approvers         []string  `json:"approvers,omitempty"`
	ApprovalExpiresAt time.Time `json:"approvalExpiresAt,omitzero"`
	// TraceParent is the W3C trace context of the run's intake: work done
	// for the run later (dispatch, reports, the pipeline) joins its trace.
	TraceParent string `json:"traceParent,omitempty"`
	// DryRun runs stop after the preview: nothing is applied.
	DryRun bool `json:"dryRun,omitempty"`
	// Guarded runs apply only after an approval of their preview (the
	// policy's approval at intake, or the preview's judgement).
	Guarded bool `json:"guarded,omitempty"`
	// Preview is what the pipeline's latest preview said the run changes.
	Preview *Preview `json:"preview,omitempty"`
	// ApprovedDigest is the digest of the preview an approver approved:
	// the apply pipeline must preview the same, or it applies nothing.
	ApprovedDigest string `json:"approvedDigest,omitempty"`
	// PreviewPipelineID is the pipeline that previewed an approved run: its
	// apply pipeline is a later one (GitLab's ids only grow), and news of
	// the earlier one must never be taken for it.
	PreviewPipelineID int64 `json:"previewPipelineId,omitempty"`
	// ReportsOn are the entities a run of paved's own reports on (a drift
	// check, an expiry's destroy): those the stack's runs wrote. The JSON
	// name is the one drift checks were stored with.
	ReportsOn []EntityRef `json:"driftOf,omitempty"`
	// TTL makes a CREATE's stack ephemeral: it expires TTL after the run
	// succeeds (ExpiresAt, moved by an extension), is warned about before,
	// and is then destroyed by a run of paved's own. ExpiryWarnedAt is when
	// the portal was told of the coming expiry.
	TTL            time.Duration `json:"ttl,omitempty"`
	ExpiresAt      time.Time     `json:"expiresAt,omitzero"`
	ExpiryWarnedAt time.Time     `json:"expiryWarnedAt,omitzero"`
	// ExpiryShown is the expiry last written onto the stack's entities;
	// ExpiryDestroying the expiry whose destroy was decided, by the run
	// ExpiryDestroyRun (decided under this row, so that an extension
	// either comes first and moves the expiry, or comes after and is
	// refused).
	ExpiryShown      time.Time `json:"expiryShown,omitzero"`
	ExpiryDestroying time.Time `json:"expiryDestroying,omitzero"`
	ExpiryDestroyRun string    `json:"expiryDestroyRun,omitempty"`
	CreatedAt        time.Time `json:"createdAt"`
	UpdatedAt        time.Time `json:"updatedAt"`
}

// NewID returns a fresh run id: "r_" and 32 hex digits, the first 12 the
// creation time in milliseconds, the rest random (80 bits, as many as ids
// had when they were random throughout). Ids made later sort later, so a
// new run's rows land at the end of every index keyed by run id instead of
// on a random page of it: the store writes a few hot pages rather than
// one cold one per index per run.
func NewID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	return "r_" + hex.EncodeToString(b[:])
}

// MoveTo changes the run's state if the move is legal.
func (r *Run) MoveTo(to State, now time.Time) error {
	if !CanTransition(r.State, to) {
		return &TransitionError{RunID: r.ID, From: r.State, To: to}
	}
	r.State = to
	r.UpdatedAt = now
	return nil
}

// ApproveRunAction is the portal action by which an approver decides on a
// waiting run from the portal itself; its inputs are runId, decision
// ("approve" or "deny") and reason.
const ApproveRunAction = "paved-approve-run"

// Approver is who approves or denies a run: ID is an email, or
// operator:<name> for an operator of paved's operator page.
type Approver struct {
	ID    string   `json:"id"`
	Teams []string `json:"teams,omitempty"`
}

// Event is one line of a run's append-only audit trail.
type Event struct {
	Seq     int64     `json:"seq"`
	At      time.Time `json:"at"`
	State   State     `json:"state"`
	Message string    `json:"message"`
}

// QueueLabel is the status label of a queued run with ahead runs of its
// stack before it.
func QueueLabel(stackKey string, ahead int) string {
	if ahead == 0 {
		return "Queued"
	}
	return fmt.Sprintf("Queued: %d run(s) ahead on %s", ahead, stackKey)
}

// TTLInput is the input by which a CREATE action's stack is made
// ephemeral: a TTL like "30m", "8h" or "3d" (see ParseTTL).
const TTLInput = "ttl"

// ParseTTL reads a TTL: a whole number of minutes, hours or days ("30m",
// "8h", "3d"), up to four digits. Days are 24 hours: a TTL is a span, not
// a date.
func ParseTTL(s string) (time.Duration, error) {
	bad := fmt.Errorf("ttl %q is not a whole number of minutes, hours or days, like 30m, 8h or 3d", s)
	if len(s) < 2 || len(s) > 5 || s[0] < '1' || s[0] > '9' {
		return 0, bad
	}
	n := 0
	for _, c := range s[:len(s)-1] {
		if c < '0' || c > '9' {
			return 0, bad
		}
		n = n*10 + int(c-'0')
	}
	unit := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, bad
	}
	return time.Duration(n) * unit, nil
}

// FormatTTL writes d the way ParseTTL reads it, in the largest whole unit.
func FormatTTL(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}
