// Package gate stands between a run's preview and its apply. It judges the
// preview the run's pipeline posts (the policy sees what it would change
// and cost) and answers apply, stop (a dry run, a drift check), refuse, or
// wait for an approval of exactly that preview; and it takes the approvers'
// decisions on a waiting run, from the API, the operator page or the
// portal. Intake comes before it: it records the run and queues it, and
// queues it again, through intake.Queue, once it is approved.
package gate

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/catalog"
	"github.com/paved-idp/paved/internal/policy"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
)

// Store is what the gate needs of the run store.
type Store interface {
	Run(ctx context.Context, id string) (*run.Run, error)
	Update(ctx context.Context, id string, fn func(*run.Run) (store.Change, error)) (*run.Run, error)
	StackDepth(ctx context.Context, stackKey string) (int, error)
	Events(ctx context.Context, id string) ([]run.Event, error)
	AppendLogs(ctx context.Context, id string, lines []string, max int) error
}

// Catalog finds a run's action, whose entities an applied preview marks.
type Catalog interface {
	Get(id string) (*catalog.Action, bool)
}

// Policy judges a preview, and names who may approve.
type Policy interface {
	Decide(ctx context.Context, in policy.Input) (policy.Decision, error)
}

// Spending totals what a tenant's stacks in an environment cost a month,
// but one (the run's own, whose estimate the preview carries), for
// budgets in the policy.
type Spending interface {
	Others(ctx context.Context, tenant, environment, exceptStack string) (float64, error)
}

// Teams looks up the teams of a portal user who decides from the portal
// when the request does not carry them.
type Teams interface {
	UserTeams(ctx context.Context, email string) ([]string, error)
}

// Service is the gate. Catalog, Teams and Spending may be nil (a gate
// without a catalog, one that only decides, marks no entities).
type Service struct {
	Store   Store
	Catalog Catalog
	Policy  Policy
	Teams   Teams
	// Spending, when set, gives the policy the other stacks' costs with a
	// preview's estimate (input.preview.cost.others).
	Spending Spending
	Log      *zap.Logger
	Now      func() time.Time
	// Notify, when set, is called after an approved run is queued so the
	// dispatcher need not wait for its next tick.
	Notify func()
	// ApprovalTTL is how long a run waits for approval before it is
	// rejected; 0 waits for ever.
	ApprovalTTL time.Duration
	// RunURL is a run's page, written onto entities as lastRun (nil: none).
	RunURL func(id string) string
	// MaxLogLines caps a run's log (the preview's lines count); 0 means
	// 10,000, as the tracker's default.
	MaxLogLines int
	// Metrics count the policy's denials of previews (nil: nothing is recorded).
	Metrics *telemetry.Metrics
}

func (s *Service) runURL(id string) string {
	if s.RunURL == nil {
		return ""
	}
	return s.RunURL(id)
}

func (s *Service) maxLogLines() int {
	if s.MaxLogLines > 0 {
		return s.MaxLogLines
	}
	return 10000
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// action finds a run's action; a Service without a catalog knows none.
func (s *Service) action(id string) (*catalog.Action, bool) {
	if s.Catalog == nil {
		return nil, false
	}
	return s.Catalog.Get(id)
}
