// Package store holds the types every run store shares: the change a state
// transition writes, and the outbox tasks that carry work to the workers.
// Backends live in subpackages; storetest holds the suite they all pass.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/run"
)

// Task kinds in the outbox.
const (
	KindDispatch = "dispatch" // trigger (or reconcile) the run's pipeline
	KindReport   = "report"   // deliver a run.Report to the run's portal
	KindCancel   = "cancel"   // cancel the run's pipeline in GitLab
)

// ErrNoChange, returned by an Update function, ends the transaction without
// writing anything.
var ErrNoChange = errors.New("no change")

// NewTask is outbox work written in the same transaction as a state change.
type NewTask struct {
	Kind    string
	Payload any // marshalled to JSON
	// NotBefore delays the task; zero means now.
	NotBefore time.Time
}

// Change is what a transaction appends besides the run itself.
type Change struct {
	Events []string // audit-trail messages, recorded with the run's new state
	Tasks  []NewTask
}

// Add appends an event message and returns the change for chaining.
func (c *Change) Add(msg string) *Change { c.Events = append(c.Events, msg); return c }

// Report queues a portal report. A log line travels as a task of its own
// when the rest of the report is another portal call (a link, an entity, a
// final status), so that a retried task never repeats a call that went
// through; a log line with only a new status label is one call (Port's log
// route sets the label too). A log line goes before a final status, which
// locks the portal's run.
func (c *Change) Report(r run.Report) *Change {
	if r.Log != "" && (r.Link != "" || r.Final != "" || r.Entity != nil) {
		log := run.Report{Log: r.Log}
		r.Log = ""
		if r.Final != "" {
			return c.Report(log).Report(r)
		}
		return c.Report(r).Report(log)
	}
	c.Tasks = append(c.Tasks, NewTask{Kind: KindReport, Payload: r})
	return c
}

// CancelPayload names the pipeline a cancel task stops; zero means the
// run's own.
type CancelPayload struct {
	PipelineID int64 `json:"pipelineId,omitempty"`
}

// CancelTask is a cancel task for a pipeline (0: the run's own).
func CancelTask(pipelineID int64) NewTask {
	return NewTask{Kind: KindCancel, Payload: CancelPayload{PipelineID: pipelineID}}
}

// maxLogReport bounds the text of one log report: lines posted together
// travel to the portal as few messages as fit, each well under Port's 1 MiB
// request limit.
const maxLogReport = 64 << 10

// ReportLines queues lines posted together as log reports of up to 64 KiB
// each, lines joined by newlines: one portal call for a typical post
// instead of one a line.
func (c *Change) ReportLines(lines []string) *Change {
	var b strings.Builder
	for _, l := range lines {
		if b.Len() > 0 && b.Len()+1+len(l) > maxLogReport {
			c.Report(run.Report{Log: b.String()})
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	if b.Len() > 0 {
		c.Report(run.Report{Log: b.String()})
	}
	return c
}

// Task is a claimed outbox row.
type Task struct {
	ID       int64
	RunID    string
	Kind     string
	Payload  json.RawMessage
	Attempts int // including this one
}

// Query filters ListRuns. Zero fields do not filter.
type Query struct {
	States        []run.State
	UpdatedBefore time.Time
	// ActivePipeline keeps runs whose pipeline has not finished in GitLab.
	ActivePipeline bool
	// HasPipeline keeps runs that have a pipeline, whatever its status.
	HasPipeline bool
	// OldestFirst orders by last update, oldest first (default: newest
	// created first).
	OldestFirst bool
	// ByID orders by run id and starts after AfterID: pages that reach
	// every matching run, however many there are and however they change.
	ByID    bool
	AfterID string
	// Action, Tenant, Environment and User (the invoker's email) keep runs
	// that match exactly; the operator page filters with them.
	Action, Tenant, Environment, User string
	// NotPortal leaves out the runs of a portal (paved's own drift checks).
	NotPortal string
	// Stack keeps the runs of one stack (its key).
	Stack string
	// Expiring keeps runs that made an ephemeral stack and still hold its
	// expiry (run.Run.ExpiresAt set).
	Expiring bool
	Limit    int // default 100
}

// Backlog is an outbox kind's open work: how many tasks, and since when
// the oldest claimable one has been due (zero when none is due yet).
type Backlog struct {
	Depth     int
	OldestDue time.Time
}

// Errors of the log and output callbacks, matched with errors.Is.
var (
	// ErrLimit means a run has reached a configured cap (log lines, outputs).
	ErrLimit = errors.New("limit reached")
	// ErrFinished means the run has ended and takes no more pipeline news.
	ErrFinished = errors.New("run has finished")
)

// LogLine is one line the pipeline posted to a run's log.
type LogLine struct {
	Seq  int64     `json:"seq"`
	At   time.Time `json:"at"`
	Line string    `json:"line"`
}

// Outbox is how a worker takes tasks: claim a batch under a lease, then
// complete, retry later, or hand back each one.
type Outbox interface {
	Claim(ctx context.Context, kind string, lease time.Duration, limit int) ([]Task, error)
	Complete(ctx context.Context, ids ...int64) error
	Retry(ctx context.Context, id int64, at time.Time, lastErr string) error
	Release(ctx context.Context, ids ...int64) error
}

// RunOutbox is what an outbox worker needs: its tasks, and the runs they
// are for.
type RunOutbox interface {
	Outbox
	Run(ctx context.Context, id string) (*run.Run, error)
	Update(ctx context.Context, id string, fn func(*run.Run) (Change, error)) (*run.Run, error)
}
