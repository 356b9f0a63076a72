package app

import (
	"context"

	"github.com/paved-idp/paved/internal/gate"
	"github.com/paved-idp/paved/internal/intake"
	"github.com/paved-idp/paved/internal/run"
)

// runControl is everything the server and the operator page do to runs,
// as one value, from the two services that do it: intake takes requests
// and cancels runs; the gate judges previews and takes the decisions.
type runControl struct {
	*intake.Service
	gate *gate.Service
}

func (c runControl) Preview(ctx context.Context, id string, p run.Preview) (*run.Run, error) {
	return c.gate.Preview(ctx, id, p)
}

func (c runControl) Approve(ctx context.Context, id string, by run.Approver, reason string) (*run.Run, error) {
	return c.gate.Approve(ctx, id, by, reason)
}

func (c runControl) Deny(ctx context.Context, id string, by run.Approver, reason string) (*run.Run, error) {
	return c.gate.Deny(ctx, id, by, reason)
}

func (c runControl) Decide(ctx context.Context, req run.Request) (*run.Run, error) {
	return c.gate.Decide(ctx, req)
}
