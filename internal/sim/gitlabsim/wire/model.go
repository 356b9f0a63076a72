// Package wire is gitlabsim's model of GitLab projects and pipelines and the
// REST API v4 wire format around them: the JSON entities the API answers
// with (as doc/api/pipelines.md and doc/api/jobs.md show them), the parsing
// of request parameters as Grape does it, and GitLab's response conventions
// (error bodies, offset pagination, Rack::Attack throttling). Package
// gitlabsim re-exports the model types and keeps the simulator's state.
package wire

import "time"

// Pipeline statuses the simulator produces (a subset of GitLab's).
const (
	StatusCreated  = "created"
	StatusPending  = "pending"
	StatusRunning  = "running"
	StatusSuccess  = "success"
	StatusFailed   = "failed"
	StatusCanceled = "canceled"
)

// Variable is one pipeline variable.
type Variable struct {
	Key          string
	Value        string
	VariableType string // env_var or file
}

// Pipeline is a snapshot of one simulated pipeline.
type Pipeline struct {
	ID, IID, ProjectID int64
	ProjectPath        string
	Ref, SHA, Source   string
	// Name is what the project's workflow:name made of the pipeline's
	// variables; "" when it has none (the API shows null).
	Name       string
	Status     string
	Variables  []Variable
	WebURL     string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	StartedAt  time.Time // zero until running
	FinishedAt time.Time // zero until terminal
	Job        Job
}

// Var returns the value of the pipeline variable key.
func (p Pipeline) Var(key string) (string, bool) {
	for _, v := range p.Variables {
		if v.Key == key {
			return v.Value, true
		}
	}
	return "", false
}

// Job is the pipeline's single build, "provision" in stage "deploy".
type Job struct {
	ID                    int64
	Name, Stage, Status   string
	FailureReason         string
	CreatedAt             time.Time
	StartedAt, FinishedAt time.Time
}

// Terminal reports whether a status is final.
func Terminal(status string) bool {
	switch status {
	case StatusSuccess, StatusFailed, StatusCanceled, "skipped":
		return true
	}
	return false
}
