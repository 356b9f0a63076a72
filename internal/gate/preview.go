package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/clip"
	"github.com/paved-idp/paved/internal/intake"
	"github.com/paved-idp/paved/internal/policy"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
)

// ErrBadPreview refuses a preview that does not say what it changes.
var ErrBadPreview = errors.New("a preview must list its resources, each with op create, update, replace or delete, a type and a name, and carry a sha256: digest")

// ErrNotYet is a preview for a run whose dispatch is still recording its
// pipeline: the pipeline should send it again in a moment.
var ErrNotYet = errors.New("the run's pipeline is still being recorded; send the preview again")

// maxPreviewResources bounds what one preview may list (the log and the
// run record carry every one).
const maxPreviewResources = 2000

// Preview judges the preview the run's pipeline posted before applying
// anything, and records it with the verdict, which tells the pipeline what
// to do next (run.Verdict*): the policy sees the preview (input.preview)
// and may refuse it or ask for an approval; a dry run stops; a guarded run
// waits for an approval of exactly this preview (by its digest), after
// which its apply pipeline must preview the same, or it applies nothing.
func (s *Service) Preview(ctx context.Context, id string, p run.Preview) (*run.Run, error) {
	if err := checkPreview(p); err != nil {
		return nil, fmt.Errorf("preview of run %s: %w", id, err)
	}
	before, err := s.Store.Run(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("preview of run %s: %w", id, err)
	}
	if before.Verdict() != "" && before.Preview.Digest == p.Digest {
		// The pipeline sent this dispatch's preview again (its answer was
		// lost): the same verdict, whatever the run became since.
		return before, nil
	}
	switch before.State {
	case run.Running:
	case run.Dispatching:
		return nil, fmt.Errorf("preview of run %s: %w", id, ErrNotYet)
	default:
		return nil, fmt.Errorf("preview of run %s (%s): %w", id, before.State, store.ErrFinished)
	}
	decision := policy.Decision{Allow: true}
	if before.Operation == run.Drift {
		p.Cost = nil // what the cloud drifted to is not a change's cost
	} else {
		// A drift check applies nothing: there is nothing to judge.
		in := policy.InputOf(before)
		in.Preview = previewInput(p)
		if p.Cost != nil {
			if in.Preview["cost"], err = s.costInput(ctx, before, p.Cost); err != nil {
				return nil, fmt.Errorf("preview of run %s: %w", id, err)
			}
		}
		if decision, err = s.Policy.Decide(ctx, in); err != nil {
			return nil, fmt.Errorf("preview of run %s: evaluate policy: %w", id, err)
		}
		for _, d := range decision.Denials {
			s.Metrics.PolicyDenied(d.Rule)
		}
	}
	now := s.now()
	p.At = now
	switch {
	case before.Operation == run.Drift:
		p.Verdict = run.VerdictDrift
	case !decision.Allow:
		p.Verdict, p.Reasons = run.VerdictRefused, decision.Reasons
	case before.ApprovedDigest != "" && p.Digest != before.ApprovedDigest:
		p.Verdict, p.Reasons = run.VerdictChanged, []string{fmt.Sprintf(
			"the preview changed since it was approved (approved %s, now %s): nothing was applied; run the action again for a new approval", before.ApprovedDigest, p.Digest)}
	case before.ApprovedDigest != "":
		p.Verdict = run.VerdictApply
	case before.DryRun:
		p.Verdict = run.VerdictDryRun
	case before.Guarded || decision.RequireApproval:
		p.Verdict = run.VerdictAwaitApproval
	default:
		p.Verdict = run.VerdictApply
	}
	// The preview joins the run's log (what the portal, Backstage and the
	// operator page show), before the verdict it leads to.
	if err := s.Store.AppendLogs(ctx, id, logLines(p), s.maxLogLines()); err != nil {
		return nil, fmt.Errorf("preview of run %s: %w", id, err)
	}
	r, err := s.Store.Update(ctx, id, func(r *run.Run) (store.Change, error) {
		var ch store.Change
		if r.State != before.State || r.ApprovedDigest != before.ApprovedDigest {
			return ch, fmt.Errorf("the run moved (%s) while its preview was judged: %w", r.State, run.ErrIllegalTransition)
		}
		r.Preview = &p
		ch.Add(fmt.Sprintf("preview %s (%s): %s", p.Label(), clip.String(p.Digest, 80), p.Verdict))
		last := run.Report{}
		switch p.Verdict {
		case run.VerdictApply:
			last.StatusLabel = "Applying " + p.LabelWithCost()
			if r.ApprovedDigest != "" {
				last.StatusLabel += " (as approved)"
			}
			// The entity shows the change under way from the moment paved
			// lets it be applied.
			var more []*run.EntityUpsert
			if a, ok := s.action(r.Request.Action); ok && !r.DryRun {
				if es := a.LifecycleFor(r, catalog.StatusAfter(r.Operation, false), "", s.runURL(r.ID)); len(es) > 0 {
					last.Entity, more = es[0], es[1:]
				}
			}
			ch.Report(last)
			for _, e := range more {
				ch.Report(run.Report{Entity: e})
			}
		case run.VerdictDryRun:
			last.StatusLabel = "Dry run: " + p.LabelWithCost()
			ch.Report(last)
		case run.VerdictDrift:
			last.StatusLabel = "Drift check: " + catalog.DriftSummary(&p)
			ch.Report(last)
		case run.VerdictRefused, run.VerdictChanged:
			r.Reasons = p.Reasons
			label := "Refused by policy at preview"
			if p.Verdict == run.VerdictChanged {
				label = "Preview changed since approval"
			}
			last.StatusLabel = label
			ch.Report(last)
			for _, reason := range p.Reasons {
				ch.Report(run.Report{Log: "✗ " + reason})
			}
			ch.Add(label + ": " + strings.Join(p.Reasons, "; "))
		case run.VerdictAwaitApproval:
			ch.Report(last)
			if err := s.awaitPreview(r, &ch, decision.Approvers, now); err != nil {
				return ch, err
			}
		}
		return ch, nil
	})
	if err != nil {
		return nil, fmt.Errorf("preview of run %s: %w", id, err)
	}
	s.Log.Info("run previewed", append(telemetry.RunFields(r), zap.String("preview", p.Label()), zap.String("verdict", p.Verdict))...)
	return r, nil
}

// awaitPreview moves a previewed run to awaiting approval: its pipeline
// ends without applying, and an approval sends it again, bound to the
// preview's digest.
func (s *Service) awaitPreview(r *run.Run, ch *store.Change, approvers []string, now time.Time) error {
	if err := r.MoveTo(run.AwaitingApproval, now); err != nil {
		return err
	}
	r.Approvers = approvers
	if s.ApprovalTTL > 0 {
		r.ApprovalExpiresAt = now.Add(s.ApprovalTTL)
	}
	who := "approval by " + intake.Listed(approvers)
	ch.Add(fmt.Sprintf("awaiting %s of preview %s", who, r.Preview.Digest))
	log := fmt.Sprintf("Nothing is applied until this preview (%s) is approved by %s (not by %s, who asked for it)", r.Preview.Label(), intake.Listed(approvers), intake.UserName(r.Request.User))
	if !r.ApprovalExpiresAt.IsZero() {
		log += fmt.Sprintf("; unless decided by %s the run is rejected", r.ApprovalExpiresAt.Format(time.RFC3339))
	}
	ch.Report(run.Report{StatusLabel: clip.String("Awaiting "+who+" of "+r.Preview.Label(), 200), Log: log})
	return nil
}

// logPreviewResources bounds the resources a preview's log lists.
const logPreviewResources = 200

func logLines(p run.Preview) []string {
	lines := p.Lines()
	if n := len(lines) - 1; n > logPreviewResources {
		lines = append(lines[:1+logPreviewResources], fmt.Sprintf("  … and %d more", n-logPreviewResources))
	}
	return lines
}

func checkPreview(p run.Preview) error {
	if !strings.HasPrefix(p.Digest, "sha256:") || len(p.Digest) != len("sha256:")+64 {
		return ErrBadPreview
	}
	if p.Resources == nil || len(p.Resources) > maxPreviewResources {
		return fmt.Errorf("%w (got %d resources, at most %d)", ErrBadPreview, len(p.Resources), maxPreviewResources)
	}
	for _, r := range p.Resources {
		switch r.Op {
		case run.OpCreate, run.OpUpdate, run.OpReplace, run.OpDelete:
		default:
			return ErrBadPreview
		}
		if r.Type == "" || r.Name == "" || len(r.Type) > 256 || len(r.Name) > 256 {
			return ErrBadPreview
		}
	}
	if c := p.Cost; c != nil {
		for _, v := range []float64{c.Monthly, c.Before, c.Delta} {
			if math.IsNaN(v) || math.Abs(v) > 1e12 {
				return fmt.Errorf("%w (a cost of %v)", ErrBadPreview, v)
			}
		}
		if c.Currency == "" || len(c.Currency) > 8 || len(c.Prices) > 512 || len(c.Unpriced) > maxPreviewResources {
			return fmt.Errorf("%w (a cost needs a currency, and names at most %d unpriced resources)", ErrBadPreview, maxPreviewResources)
		}
		for _, u := range c.Unpriced {
			if len(u) > 600 {
				return fmt.Errorf("%w (an unpriced resource's note is over 600 bytes)", ErrBadPreview)
			}
		}
	}
	return nil
}

// previewInput is the preview as the policy sees it (input.preview).
// costInput is the preview's estimate as the policy sees it
// (input.preview.cost), with others: what the tenant's other stacks in the
// environment cost, for budgets.
func (s *Service) costInput(ctx context.Context, r *run.Run, c *run.Cost) (map[string]any, error) {
	others := 0.0
	if s.Spending != nil {
		var err error
		if others, err = s.Spending.Others(ctx, r.Stack.Tenant, r.Stack.Environment, r.Stack.Key()); err != nil {
			return nil, fmt.Errorf("total the costs of %s's stacks in %s: %w", r.Stack.Tenant, r.Stack.Environment, err)
		}
	}
	unpriced := make([]any, len(c.Unpriced))
	for i, u := range c.Unpriced {
		unpriced[i] = u
	}
	return map[string]any{"monthly": c.Monthly, "before": c.Before, "delta": c.Delta, "currency": c.Currency,
		"unpriced": unpriced, "others": math.Round(others*100) / 100}, nil
}

func previewInput(p run.Preview) map[string]any {
	c, u, r, d := p.Counts()
	resources := make([]any, len(p.Resources))
	for i, res := range p.Resources {
		resources[i] = map[string]any{"op": res.Op, "type": res.Type, "name": res.Name}
	}
	return map[string]any{"create": c, "update": u, "replace": r, "delete": d,
		"destroy": p.Destroy, "digest": p.Digest, "resources": resources}
}
