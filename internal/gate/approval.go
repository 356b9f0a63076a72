package gate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/clip"
	"github.com/paved-idp/paved/internal/intake"
	"github.com/paved-idp/paved/internal/policy"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
)

// Who may approve is the policy's rule "approvers": a set of team
// identifiers, emails and operator:<name> (operator:* for any operator of
// paved's operator page). It is asked again at each decision, so a policy
// change applies to runs already waiting.
const approversRule = "data.paved.policy.approvers"

// ErrNotApprover refuses an approval or denial the policy does not allow.
var ErrNotApprover = errors.New("not allowed to decide on this run")

// ApproverError says why an approver was refused.
type ApproverError struct {
	RunID, Approver string
	// Self is true when the approver asked for the run themselves.
	Self bool
	// Allowed is what the policy's approvers rule names.
	Allowed []string
}

func (e *ApproverError) Error() string {
	if e.Self {
		return fmt.Sprintf("%s asked for run %s and may not approve or deny it; another approver must (%s: %s)", e.Approver, e.RunID, approversRule, intake.Listed(e.Allowed))
	}
	return fmt.Sprintf("%s is not named by the policy's rule %s for run %s; it names: %s", e.Approver, approversRule, e.RunID, intake.Listed(e.Allowed))
}

func (e *ApproverError) Unwrap() error { return ErrNotApprover }

// mayDecide asks the policy whether by may approve or deny r: never the
// person who asked for it, and only someone its approvers rule names.
func (s *Service) mayDecide(ctx context.Context, r *run.Run, by run.Approver) error {
	in := policy.InputOf(r)
	if r.Preview != nil {
		in.Preview = previewInput(*r.Preview) // the approvers may depend on what it changes
	}
	d, err := s.Policy.Decide(ctx, in)
	if err != nil {
		return fmt.Errorf("ask the policy who may approve run %s: %w", r.ID, err)
	}
	if strings.EqualFold(by.ID, r.Request.User.Email) {
		return &ApproverError{RunID: r.ID, Approver: by.ID, Self: true, Allowed: d.Approvers}
	}
	if !named(d.Approvers, by) {
		return &ApproverError{RunID: r.ID, Approver: by.ID, Allowed: d.Approvers}
	}
	return nil
}

// named reports whether the approvers rule names by: its id (an email or
// operator:<name>), any operator when it says operator:*, or one of its teams.
func named(approvers []string, by run.Approver) bool {
	for _, a := range approvers {
		switch {
		case strings.EqualFold(a, by.ID):
			return true
		case a == "operator:*" && strings.HasPrefix(by.ID, "operator:"):
			return true
		case !strings.Contains(a, "@") && !strings.HasPrefix(a, "operator:") && slices.Contains(by.Teams, a):
			return true
		}
	}
	return false
}

// waiting reads run id, which must await approval (to is where by's
// decision would move it), and checks that by may decide on it.
func (s *Service) waiting(ctx context.Context, id string, by run.Approver, to run.State) (*run.Run, error) {
	r, err := s.Store.Run(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != run.AwaitingApproval {
		return nil, &run.TransitionError{RunID: id, From: r.State, To: to}
	}
	if err := s.expired(r); err != nil {
		return nil, err
	}
	if err := s.mayDecide(ctx, r, by); err != nil {
		return nil, err
	}
	return r, nil
}

// expired refuses a decision on a run whose approval time is over (the
// sweep that rejects it may not have come by yet).
func (s *Service) expired(r *run.Run) error {
	if r.ApprovalExpiresAt.IsZero() || s.now().Before(r.ApprovalExpiresAt) {
		return nil
	}
	return fmt.Errorf("the approval of run %s expired at %s: %w", r.ID, r.ApprovalExpiresAt.Format(time.RFC3339), run.ErrIllegalTransition)
}

// decided is the audit line of a decision: who, when, why.
func decided(verb string, by run.Approver, reason string, at time.Time) string {
	msg := decidedBy(verb, by.ID) + at.Format(time.RFC3339)
	if reason != "" {
		msg += ": " + clip.String(reason, 500)
	}
	return msg
}

// decidedBy is how a decision's audit line begins; alreadyDecided looks
// for it.
func decidedBy(verb, who string) string { return verb + " by " + who + " at " }

// Approve lets a run that awaits approval go ahead, if the policy names by.
func (s *Service) Approve(ctx context.Context, id string, by run.Approver, reason string) (*run.Run, error) {
	before, err := s.waiting(ctx, id, by, run.Queued)
	if err != nil {
		return nil, fmt.Errorf("approve run %s: %w", id, err)
	}
	ahead, err := s.Store.StackDepth(ctx, before.Stack.Key())
	if err != nil {
		return nil, fmt.Errorf("approve run %s: %w", id, err)
	}
	r, err := s.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if r.State != run.AwaitingApproval {
			return ch, &run.TransitionError{RunID: r.ID, From: r.State, To: run.Queued}
		}
		if err := s.expired(r); err != nil {
			return ch, err
		}
		msg := decided("approved", by, reason, s.now())
		if r.Preview != nil {
			// Bound to what the approver saw: the apply pipeline must
			// preview the same change, or it applies nothing.
			r.ApprovedDigest = r.Preview.Digest
			msg += fmt.Sprintf(" (preview %s, %s)", r.Preview.Label(), r.Preview.Digest)
			// The preview's pipeline has ended its part; the apply gets its own.
			r.PreviewPipelineID = r.PipelineID
			r.PipelineID, r.PipelineStatus = 0, ""
		}
		ch.Add(msg)
		return ch, intake.Queue(r, &ch, ahead, s.now(), msg)
	})
	if err != nil {
		return nil, fmt.Errorf("approve run %s: %w", id, err)
	}
	s.Log.Info("run approved", append(telemetry.RunFields(r), zap.String("approver", by.ID))...)
	if s.Notify != nil {
		s.Notify()
	}
	return r, nil
}

// Deny refuses a run that awaits approval, if the policy names by.
func (s *Service) Deny(ctx context.Context, id string, by run.Approver, reason string) (*run.Run, error) {
	if _, err := s.waiting(ctx, id, by, run.Rejected); err != nil {
		return nil, fmt.Errorf("deny run %s: %w", id, err)
	}
	r, err := s.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if err := r.MoveTo(run.Rejected, s.now()); err != nil {
			return ch, err
		}
		msg := decided("denied", by, reason, s.now())
		r.Reasons = []string{msg}
		ch.Add(msg)
		ch.Report(run.Report{Log: "✗ " + msg}).Report(run.Report{Final: run.Failure, StatusLabel: "Denied", Summary: msg})
		return ch, nil
	})
	if err != nil {
		return nil, fmt.Errorf("deny run %s: %w", id, err)
	}
	s.Log.Info("run denied", append(telemetry.RunFields(r), zap.String("approver", by.ID))...)
	return r, nil
}

// ApproveRunAction is run.ApproveRunAction. `paved render port` renders it
// as a synchronous webhook: Port marks the action's own run by paved's answer.
const ApproveRunAction = run.ApproveRunAction

// ErrBadDecision refuses a decision action whose inputs are not a run id
// and approve or deny.
var ErrBadDecision = errors.New(`inputs must be {"runId": "r_…", "decision": "approve" or "deny", "reason": "…"}`)

// Decide applies a decision sent as the portal action ApproveRunAction: the
// approver is the portal's user, with their teams (looked up when the
// portal sent none).
func (s *Service) Decide(ctx context.Context, req run.Request) (*run.Run, error) {
	id, _ := req.Inputs["runId"].(string)
	verdict, _ := req.Inputs["decision"].(string)
	reason, _ := req.Inputs["reason"].(string)
	if id == "" || (verdict != "approve" && verdict != "deny") || !strings.Contains(req.User.Email, "@") || strings.HasPrefix(req.User.Email, "operator:") {
		return nil, fmt.Errorf("%s: %w", ApproveRunAction, ErrBadDecision)
	}
	by := run.Approver{ID: req.User.Email, Teams: req.User.Teams}
	if len(by.Teams) == 0 && s.Teams != nil {
		teams, err := s.Teams.UserTeams(ctx, req.User.Email)
		if err != nil {
			// Without teams a team approver would be refused: say why.
			return nil, fmt.Errorf("%s: look up the teams of %s: %w", ApproveRunAction, req.User.Email, err)
		}
		by.Teams = teams
	}
	var r *run.Run
	var err error
	if verdict == "approve" {
		r, err = s.Approve(ctx, id, by, reason)
	} else {
		r, err = s.Deny(ctx, id, by, reason)
	}
	if errors.Is(err, run.ErrIllegalTransition) {
		// Port may send a synchronous invocation again (a timeout, a retry):
		// the same person's same decision, already applied, is a success.
		if done, derr := s.alreadyDecided(ctx, id, by.ID, verdict); derr == nil && done != nil {
			return done, nil
		}
	}
	return r, err
}

// alreadyDecided is run id if its trail shows who deciding verdict on it.
func (s *Service) alreadyDecided(ctx context.Context, id, who, verdict string) (*run.Run, error) {
	evs, err := s.Store.Events(ctx, id)
	if err != nil {
		return nil, err
	}
	prefix := decidedBy(map[string]string{"approve": "approved", "deny": "denied"}[verdict], who)
	for _, e := range evs {
		if strings.HasPrefix(strings.ToLower(e.Message), strings.ToLower(prefix)) {
			return s.Store.Run(ctx, id)
		}
	}
	return nil, nil
}
