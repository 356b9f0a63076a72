package gate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/intake/intaketest"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/store/sqlite/sqlitetest"
)

// A production delete waits for approval; the policy's approvers rule says
// who may decide, the asker may not, and the decision is audited.
func TestApprovalsAreDecidedByPolicy(t *testing.T) {
	s, in, st := setup(t)
	s.ApprovalTTL = 72 * time.Hour
	ctx := context.Background()
	r := awaiting(t, s, in, st, deleteReq("d1"))
	if got := strings.Join(r.Approvers, ","); got != "operator:*,payments,platform" {
		t.Fatalf("approvers %q", got)
	}
	if want := r.Preview.At.Add(72 * time.Hour); !r.ApprovalExpiresAt.Equal(want) {
		t.Fatalf("expires %s, want %s", r.ApprovalExpiresAt, want)
	}
	reps := reports(t, st)
	if last := reps[len(reps)-1]; !strings.Contains(last.StatusLabel, "Awaiting approval by operator:*, payments, platform of +0 ~0 -1") || !strings.Contains(last.Log, "not by Dana") && !strings.Contains(last.Log, "not by dana@acme.example") {
		t.Fatalf("portal told %+v", last)
	}
	if n, _ := st.Pending(ctx, store.KindDispatch); n != 0 {
		t.Fatal("dispatch before approval")
	}

	var ae *ApproverError
	_, err := s.Approve(ctx, r.ID, run.Approver{ID: "DANA@acme.example", Teams: []string{"platform"}}, "")
	if !errors.As(err, &ae) || !ae.Self || !errors.Is(err, ErrNotApprover) {
		t.Fatalf("self-approval: %v", err)
	}
	_, err = s.Approve(ctx, r.ID, run.Approver{ID: "sam@acme.example", Teams: []string{"web"}}, "")
	if !errors.Is(err, ErrNotApprover) || !strings.Contains(err.Error(), "sam@acme.example is not named by the policy's rule data.paved.policy.approvers") ||
		!strings.Contains(err.Error(), "operator:*, payments, platform") {
		t.Fatalf("outsider: %v", err)
	}
	if _, err := s.Deny(ctx, "r_nope", run.Approver{ID: "lead@acme.example"}, ""); !errors.Is(err, run.ErrNotFound) {
		t.Fatalf("deny unknown: %v", err)
	}
	got, err := s.Approve(ctx, r.ID, run.Approver{ID: "lead@acme.example", Teams: []string{"platform"}}, "change window CHG-42")
	if err != nil || got.State != run.Queued {
		t.Fatalf("approve: %v %v", got, err)
	}
	if n, _ := st.Pending(ctx, store.KindDispatch); n != 1 {
		t.Fatal("no dispatch after approval")
	}
	evs, _ := st.Events(ctx, r.ID)
	var trail []string
	for _, e := range evs {
		trail = append(trail, e.Message)
	}
	if !strings.Contains(strings.Join(trail, "\n"), "approved by lead@acme.example at ") || !strings.Contains(strings.Join(trail, "\n"), ": change window CHG-42") {
		t.Fatalf("audit trail lacks the approval:\n%s", strings.Join(trail, "\n"))
	}
	if after := sqlitetest.Reports(t, st); len(after) == 0 || !strings.Contains(after[len(after)-1].Log, "approved by lead@acme.example") {
		t.Fatal("the portal's log lacks the approval")
	}
	if _, err := s.Approve(ctx, r.ID, run.Approver{ID: "lead@acme.example", Teams: []string{"platform"}}, ""); !errors.Is(err, run.ErrIllegalTransition) {
		t.Fatalf("second approve: %v", err)
	}

	// Any operator, as the policy says operator:*; a deny records its reason.
	r2 := awaiting(t, s, in, st, deleteReq("d2"))
	denied, err := s.Deny(ctx, r2.ID, run.Approver{ID: "operator:olivia"}, "not during the freeze")
	if err != nil || denied.State != run.Rejected || !strings.Contains(denied.Reasons[0], "denied by operator:olivia at ") || !strings.HasSuffix(denied.Reasons[0], ": not during the freeze") {
		t.Fatalf("deny: %+v %v", denied, err)
	}
	// The owning team may approve a delete too.
	r3 := awaiting(t, s, in, st, deleteReq("d3"))
	if _, err := s.Approve(ctx, r3.ID, run.Approver{ID: "pat@acme.example", Teams: []string{"payments"}}, ""); err != nil {
		t.Fatalf("owning team: %v", err)
	}
}

// From Port's approve-run action: the approver is Port's user, their teams
// looked up in Port; bad inputs are refused before anything is read.
func TestDecideFromThePortal(t *testing.T) {
	s, in, st := setup(t)
	ctx := context.Background()
	r := awaiting(t, s, in, st, deleteReq("p1"))
	decide := func(email string, inputs map[string]any) (*run.Run, error) {
		return s.Decide(ctx, run.Request{Portal: "port", PortalRunID: "x", Action: ApproveRunAction, User: run.User{Email: email}, Inputs: inputs})
	}
	if _, err := decide("lead@acme.example", map[string]any{"runId": r.ID, "decision": "maybe"}); !errors.Is(err, ErrBadDecision) {
		t.Fatalf("bad decision: %v", err)
	}
	// sam's teams (web) are looked up: not an approver of this run.
	if _, err := decide("sam@acme.example", map[string]any{"runId": r.ID, "decision": "approve"}); !errors.Is(err, ErrNotApprover) {
		t.Fatalf("sam: %v", err)
	}
	// dana's teams (payments, the owning team) would do, but she asked.
	var ae *ApproverError
	if _, err := decide("dana@acme.example", map[string]any{"runId": r.ID, "decision": "approve"}); !errors.As(err, &ae) || !ae.Self {
		t.Fatalf("dana: %v", err)
	}
	s.Teams = intaketest.Teams{"pat@acme.example": {"payments"}}
	got, err := decide("pat@acme.example", map[string]any{"runId": r.ID, "decision": "deny", "reason": "wrong service"})
	if err != nil || got.State != run.Rejected || !strings.HasSuffix(got.Reasons[0], ": wrong service") {
		t.Fatalf("pat denies: %+v %v", got, err)
	}
	// Port sending the same decision again gets the same answer; another
	// decision on a decided run is refused.
	if again, err := decide("pat@acme.example", map[string]any{"runId": r.ID, "decision": "deny"}); err != nil || again.State != run.Rejected {
		t.Fatalf("the same deny again: %+v %v", again, err)
	}
	if _, err := decide("pat@acme.example", map[string]any{"runId": r.ID, "decision": "approve"}); !errors.Is(err, run.ErrIllegalTransition) {
		t.Fatalf("approve after deny: %v", err)
	}
}

// A decision after the approval expired is refused, even before the sweep
// has rejected the run.
func TestNoDecisionAfterTheApprovalExpired(t *testing.T) {
	s, in, st := setup(t)
	s.ApprovalTTL = time.Hour
	ctx := context.Background()
	start := time.Now()
	s.Now = func() time.Time { return start }
	r := awaiting(t, s, in, st, deleteReq("e1"))
	s.Now = func() time.Time { return start.Add(time.Hour) }
	_, err := s.Approve(ctx, r.ID, run.Approver{ID: "lee@acme.example", Teams: []string{"platform"}}, "")
	if !errors.Is(err, run.ErrIllegalTransition) || !strings.Contains(err.Error(), "expired at") {
		t.Fatalf("late approval: %v", err)
	}
}
