package telemetry

import (
	"errors"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/run"
)

// RunFields are the fields every log line about a run carries.
func RunFields(r *run.Run) []zap.Field {
	return []zap.Field{zap.String("run_id", r.ID), zap.String("action", r.Request.Action),
		zap.String("tenant", r.Stack.Tenant), zap.String("environment", r.Stack.Environment)}
}

// RunError is an error about a run, carrying the run so that whoever logs
// it far from where the run was read still logs the run's fields.
type RunError struct {
	Run *run.Run
	Err error
}

func (e *RunError) Error() string { return e.Err.Error() }
func (e *RunError) Unwrap() error { return e.Err }

// AboutRun wraps err with the run it is about (nil stays nil).
func AboutRun(r *run.Run, err error) error {
	if err == nil || r == nil {
		return err
	}
	return &RunError{Run: r, Err: err}
}

// FieldsOf are the run fields of err's run, or only the run id when err
// names no run (it failed before the run was read).
func FieldsOf(err error, runID string) []zap.Field {
	var re *RunError
	if errors.As(err, &re) {
		return RunFields(re.Run)
	}
	return []zap.Field{zap.String("run_id", runID)}
}
