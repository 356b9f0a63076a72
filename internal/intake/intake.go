// Package intake turns a portal's request into a stored run: it checks the
// action exists, validates the inputs against the action's schema, asks the
// policy, and records the run (queued, awaiting approval or rejected) with
// its first reports and its dispatch task in one transaction. What comes
// after the run's preview (its judgement, the approvals) is package gate's.
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/clip"
	"github.com/paved-idp/paved/internal/policy"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
)

// Store is what intake needs of the run store.
type Store interface {
	CreateRun(ctx context.Context, r *run.Run, ch store.Change) (*run.Run, bool, error)
	Update(ctx context.Context, id string, fn func(*run.Run) (store.Change, error)) (*run.Run, error)
	StackDepth(ctx context.Context, stackKey string) (int, error)
}

// Catalog finds action definitions.
type Catalog interface {
	Get(id string) (*catalog.Action, bool)
	List() []*catalog.Action
}

// Policy judges a request.
type Policy interface {
	Decide(ctx context.Context, in policy.Input) (policy.Decision, error)
}

// StackEntities finds the entities that are a stack's own, which a DELETE
// marks destroyed (or deletes) when it is done.
type StackEntities interface {
	Owned(ctx context.Context, stack run.Stack, since time.Time) ([]run.EntityRef, error)
}

// Teams looks up the teams of a portal user when the request does not carry them.
type Teams interface {
	UserTeams(ctx context.Context, email string) ([]string, error)
}

// Service is the intake. Teams may be nil.
type Service struct {
	Store   Store
	Catalog Catalog
	Policy  Policy
	Teams   Teams
	// StackEntities, when set, names a DELETE's stack's entities at intake
	// (run.Run.ReportsOn), for its lifecycle writes.
	StackEntities StackEntities
	Log           *zap.Logger
	Now           func() time.Time
	// Notify, when set, is called after a run is queued so the dispatcher
	// need not wait for its next tick.
	Notify func()
	// DefaultTimeout applies to actions that declare none.
	DefaultTimeout time.Duration
	// RunURL is a run's page, written onto entities as lastRun (nil: none).
	RunURL func(id string) string
	// Metrics and Tracer watch intake (nil: nothing is recorded).
	Metrics *telemetry.Metrics
	Tracer  trace.Tracer
}

func (s *Service) runURL(id string) string {
	if s.RunURL == nil {
		return ""
	}
	return s.RunURL(id)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Submit records a request as a run. A request whose (portal, portal run id)
// was seen before returns the existing run and created=false: a repeated
// delivery never makes a second run. A refused request is stored as a
// rejected run with its reasons; the error is only for failures of paved itself.
// The run keeps the trace context of intake's span: its dispatch, reports
// and pipeline join that trace.
func (s *Service) Submit(ctx context.Context, req run.Request) (*run.Run, bool, error) {
	start := time.Now()
	ctx, span := telemetry.OrNoop(s.Tracer).Start(ctx, "intake", trace.WithAttributes(
		attribute.String("paved.portal", req.Portal), attribute.String("paved.action", req.Action)))
	defer span.End()
	r, created, err := s.submit(ctx, req)
	outcome := "error"
	switch {
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, "intake failed")
	case !created:
		outcome = "duplicate"
	default:
		outcome = string(r.State)
	}
	if r != nil {
		span.SetAttributes(append(telemetry.RunAttributes(r), attribute.String("paved.state", string(r.State)), attribute.Bool("paved.duplicate", !created))...)
	}
	s.Metrics.Intake(portalLabel(req.Portal), outcome, time.Since(start))
	return r, created, err
}

// portalLabel bounds the portal metric label: API callers name their portal.
func portalLabel(p string) string {
	switch p {
	case "port", "backstage", "api":
		return p
	}
	return "other"
}

func (s *Service) submit(ctx context.Context, req run.Request) (*run.Run, bool, error) {
	if req.Portal == "" || req.PortalRunID == "" {
		return nil, false, errors.New("submit: request has no portal run id")
	}
	digest, err := Digest(req)
	if err != nil {
		return nil, false, fmt.Errorf("submit %s run %s: %w", req.Portal, req.PortalRunID, err)
	}
	// A repeated delivery is found by CreateRun, on the portal run id's
	// unique key, in the same transaction: no read before every new run.
	now := s.now()
	r := &run.Run{ID: run.NewID(), Request: req, State: run.Received, RequestDigest: digest, CreatedAt: now, UpdatedAt: now,
		TraceParent: telemetry.Traceparent(ctx)}
	var ch store.Change
	via := ""
	if req.Caller != "" {
		via = " via " + req.Caller
	}
	ch.Add(fmt.Sprintf("received %s from %s%s (%s run %s)", clip.String(req.Action, 128), clip.String(UserName(req.User), 128), via, clip.String(req.Portal, 64), clip.String(req.PortalRunID, 128)))

	action, ok := s.Catalog.Get(req.Action)
	if !ok {
		return s.reject(ctx, r, ch, "Unknown action", []string{fmt.Sprintf("action %q is not in paved's catalog; known actions: %s", clip.String(req.Action, 128), s.known())})
	}
	r.Operation, r.Blueprint = action.Operation, action.Blueprint
	r.Project, r.Ref = action.GitLab.Project, action.GitLab.Ref
	if errs := action.Validate(req.Inputs); len(errs) > 0 {
		reasons := make([]string, len(errs))
		for i, e := range errs {
			reasons[i] = e.String()
		}
		return s.reject(ctx, r, ch, "Invalid inputs", reasons)
	}
	stack, err := action.StackOf(req)
	if err != nil {
		return s.reject(ctx, r, ch, "Invalid inputs", []string{err.Error()})
	}
	if ttl, _ := req.Inputs[run.TTLInput].(string); ttl != "" {
		if r.TTL, err = run.ParseTTL(ttl); err != nil {
			return s.reject(ctx, r, ch, "Invalid inputs", []string{err.Error()})
		}
	}
	r.Stack, r.Team = stack, action.TeamOf(req)
	r.Timeout = action.Timeout
	if r.Timeout == 0 {
		r.Timeout = s.DefaultTimeout
	}
	ch.Add("inputs match the action's schema")

	var teamsErr error
	if len(req.User.Teams) == 0 && s.Teams != nil && req.User.Email != "" {
		teams, err := s.Teams.UserTeams(ctx, req.User.Email)
		if err != nil {
			// Without teams the policy refuses what needs them; a lookup
			// failure must not pass a guarded change.
			s.Log.Warn("look up user teams", append(telemetry.RunFields(r), zap.Error(err))...)
			ch.Add("could not look up the user's teams: " + err.Error())
			teamsErr = err
		}
		r.Request.User.Teams = teams
	}
	decision, err := s.Policy.Decide(ctx, policy.InputOf(r))
	if err != nil {
		return nil, false, fmt.Errorf("submit run %s: evaluate policy: %w", r.ID, err)
	}
	for _, d := range decision.Denials {
		s.Metrics.PolicyDenied(d.Rule)
	}
	if !decision.Allow {
		reasons := decision.Reasons
		if teamsErr != nil {
			// Say so: the refusal may be wrong only because Port did not answer.
			reasons = append(reasons, fmt.Sprintf("paved could not read your teams from Port (%v); if you are in the owning team, run the action again", teamsErr))
		}
		return s.reject(ctx, r, ch, "Refused by policy", reasons)
	}
	ch.Add("policy allows the run")

	accepted := fmt.Sprintf("paved accepted run %s: %s on stack %s", r.ID, action.Identifier, stack.Key())
	r.DryRun = req.Inputs[catalog.DryRunInput] == true
	switch {
	case r.DryRun:
		ch.Add("dry run: the pipeline previews the change and applies nothing")
		accepted += "; a dry run: it previews the change and applies nothing"
	case decision.RequireApproval || action.RequiredApproval:
		// The approval comes after the preview, so that the approver sees
		// what will change and approves exactly that.
		r.Guarded, r.Approvers = true, decision.Approvers
		ch.Add("guarded: the pipeline previews the change; it is applied only once that preview is approved by " + Listed(decision.Approvers))
		accepted += "; it is previewed first, and applied only once " + Listed(decision.Approvers) + " approve that preview"
	}
	if r.Operation == run.Delete && !r.DryRun && s.StackEntities != nil {
		// Named now, from the runs that made them: the destroy's lifecycle
		// writes go onto what the stack was when it was asked for.
		if r.ReportsOn, err = s.StackEntities.Owned(ctx, stack, time.Time{}); err != nil {
			return nil, false, fmt.Errorf("submit run %s: %w", r.ID, err)
		}
	}
	if r.TTL > 0 && !r.DryRun {
		ch.Add("ephemeral: the stack is destroyed " + run.FormatTTL(r.TTL) + " after it is ready, unless extended")
		accepted += "; the stack is ephemeral: paved destroys it " + run.FormatTTL(r.TTL) + " after it is ready, unless extended"
	}
	ahead, err := s.Store.StackDepth(ctx, stack.Key())
	if err != nil {
		return nil, false, fmt.Errorf("submit run %s: %w", r.ID, err)
	}
	if err := Queue(r, &ch, ahead, now, accepted); err != nil {
		return nil, false, err
	}
	out, created, err := s.create(ctx, r, ch)
	if err == nil && created && s.Notify != nil {
		s.Notify()
	}
	return out, created, err
}

// Queue moves a run to queued and adds its dispatch task and a status label
// that says how many runs of its stack go before it (ahead, read before the
// transaction: a read inside it would wait for a second connection). The
// label and log travel as one report: one outbox row, not two. It is
// exported for the gate, which queues an approved run just as intake
// queues a new one.
func Queue(r *run.Run, ch *store.Change, ahead int, now time.Time, log string) error {
	if err := r.MoveTo(run.Queued, now); err != nil {
		return err
	}
	r.QueueAhead = ahead
	label := run.QueueLabel(r.Stack.Key(), r.QueueAhead)
	ch.Add(strings.ToLower(label[:1]) + label[1:])
	ch.Report(run.Report{StatusLabel: label, Log: log})
	ch.Tasks = append(ch.Tasks, store.NewTask{Kind: store.KindDispatch, Payload: struct{}{}})
	return nil
}

func (s *Service) reject(ctx context.Context, r *run.Run, ch store.Change, label string, reasons []string) (*run.Run, bool, error) {
	if err := r.MoveTo(run.Rejected, s.now()); err != nil {
		return nil, false, err
	}
	r.Reasons = reasons
	ch.Add(label + ": " + strings.Join(reasons, "; "))
	for _, reason := range reasons {
		ch.Report(run.Report{Log: "✗ " + reason})
	}
	ch.Report(run.Report{Final: run.Failure, StatusLabel: label, Summary: label + ": " + strings.Join(reasons, "; ")})
	return s.create(ctx, r, ch)
}

func (s *Service) create(ctx context.Context, r *run.Run, ch store.Change) (*run.Run, bool, error) {
	out, created, err := s.Store.CreateRun(ctx, r, ch)
	if err != nil {
		return nil, false, fmt.Errorf("submit %s run %s: %w", r.Request.Portal, r.Request.PortalRunID, err)
	}
	if !created {
		// The portal run id was taken: a repeated (or concurrent) delivery.
		return repeat(out, r.RequestDigest)
	}
	s.Log.Info("run recorded", append(telemetry.RunFields(out),
		zap.String("state", string(out.State)), zap.String("stack", out.Stack.Key()), zap.Strings("reasons", out.Reasons))...)
	return out, created, nil
}

// ConflictError refuses a request whose idempotency key (portal run id) was
// already used for a different request, as Stripe's API does: only an
// identical repeat returns the first run.
type ConflictError struct {
	Portal, Key string
	RunID       string // the run the key belongs to
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("idempotency key %q was already used for a different request (run %s); send the same request to repeat it, or use a new key", e.Key, e.RunID)
}

// repeat answers a repeated delivery: the first run if the request is the
// same, a ConflictError if not. Runs stored before digests existed have
// none and are taken as the same.
func repeat(existing *run.Run, digest string) (*run.Run, bool, error) {
	if existing.RequestDigest != "" && existing.RequestDigest != digest {
		return nil, false, &ConflictError{Portal: existing.Request.Portal, Key: existing.Request.PortalRunID, RunID: existing.ID}
	}
	return existing, false, nil
}

// Digest fingerprints what a request asks for — action, user, entity and
// inputs as submitted, before paved adds anything (such as teams looked up
// in the portal). JSON encoding sorts map keys, so equal requests give
// equal digests.
func Digest(req run.Request) (string, error) {
	b, err := json.Marshal(struct {
		Action string         `json:"action"`
		User   run.User       `json:"user"`
		Entity run.Entity     `json:"entity"`
		Inputs map[string]any `json:"inputs"`
	}{req.Action, req.User, req.Entity, req.Inputs})
	if err != nil {
		return "", fmt.Errorf("fingerprint the request: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func (s *Service) known() string {
	var ids []string
	for _, a := range s.Catalog.List() {
		ids = append(ids, a.Identifier)
	}
	return strings.Join(ids, ", ")
}

// UserName names the user who asked, in a message: what intake records at
// receipt, and the gate when it says who may not approve.
func UserName(u run.User) string {
	if u.Email != "" {
		return u.Email
	}
	if u.Name != "" {
		return u.Name
	}
	return "an unnamed user"
}

// Listed names the approvers in a message, "nobody" when the policy names
// none; shared with the gate, so that every message names them alike.
func Listed(names []string) string {
	if len(names) == 0 {
		return "nobody"
	}
	return strings.Join(names, ", ")
}
