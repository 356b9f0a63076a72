package operator

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/clip"
	"github.com/paved-idp/paved/internal/gate"
	"github.com/paved-idp/paved/internal/operator/view"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
	"github.com/paved-idp/paved/internal/telemetry"
)

const (
	listLimit  = 100
	queueLimit = 1000
	// pageLines is how much log the run page renders; the stream sends the rest.
	pageLines = 1000
)

// states is every run state, in the order of a run's life.
func states() []run.State {
	return []run.State{run.Received, run.AwaitingApproval, run.Queued, run.Dispatching, run.Running,
		run.Succeeded, run.Failed, run.Canceled, run.TimedOut, run.Rejected}
}

func (u *ui) runsList(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	get := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	f := view.Filters{State: get("state"), Action: get("action"), Tenant: get("tenant"), Environment: get("environment"), User: get("user")}
	sq := store.Query{Limit: listLimit, Action: f.Action, Tenant: f.Tenant, Environment: f.Environment, User: f.User}
	if f.State != "" {
		if !slices.Contains(states(), run.State(f.State)) {
			u.message(w, &s, http.StatusBadRequest, "Unknown state", "There is no run state "+clip.String(f.State, 64)+".")
			return
		}
		sq.States = []run.State{run.State(f.State)}
	}
	runs, err := u.runs.ListRuns(r.Context(), sq)
	if err != nil {
		u.storeFailed(w, s, "list runs", err)
		return
	}
	u.authedPage(w, s, "Runs", "runs", view.Runs{Filters: f, States: states(), Runs: runs, Limit: listLimit, Filtered: f != view.Filters{}})
}

func (u *ui) runPage(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	rn, ok := u.findRun(w, r, s)
	if !ok {
		return
	}
	events, err := u.runs.Events(ctx, rn.ID)
	if err != nil {
		u.storeFailed(w, s, "read a run's events", err)
		return
	}
	lines, err := u.runs.Logs(ctx, rn.ID, 0, pageLines)
	if err != nil {
		u.storeFailed(w, s, "read a run's log", err)
		return
	}
	var after int64
	if len(lines) > 0 {
		after = lines[len(lines)-1].Seq
	}
	st := rn.State
	u.authedPage(w, s, "Run "+rn.ID, "runs", view.Run{Run: rn, Events: events, Lines: lines, After: after,
		CanCancel: st == run.AwaitingApproval || st == run.Queued || st == run.Dispatching || st == run.Running,
		CanDecide: st == run.AwaitingApproval, Ended: st.Terminal()})
}

// findRun reads the run the path names, answering 404 itself.
func (u *ui) findRun(w http.ResponseWriter, r *http.Request, s session) (*run.Run, bool) {
	id := r.PathValue("id")
	rn, err := u.runs.Run(r.Context(), id)
	switch {
	case errors.Is(err, run.ErrNotFound):
		u.message(w, &s, http.StatusNotFound, "No such run", "There is no run "+clip.String(id, 64)+".")
		return nil, false
	case err != nil:
		u.storeFailed(w, s, "read a run", err)
		return nil, false
	}
	return rn, true
}

func (u *ui) storeFailed(w http.ResponseWriter, s session, what string, err error) {
	u.log.Error("operator page: "+what, zap.Error(err))
	u.message(w, &s, http.StatusInternalServerError, "Something went wrong", "paved could not "+what+"; its log says why.")
}

// control is an operator's button: cancel, approve or deny.
func (u *ui) control(w http.ResponseWriter, r *http.Request, s session) {
	ctx, id, verb := r.Context(), r.PathValue("id"), r.PathValue("verb")
	by := "operator:" + s.name
	var rn *run.Run
	var err error
	switch verb {
	case "cancel":
		rn, err = u.ctl.Cancel(ctx, id, by)
	case "approve":
		rn, err = u.ctl.Approve(ctx, id, run.Approver{ID: by}, clip.String(strings.TrimSpace(r.PostFormValue("reason")), 500))
	case "deny":
		rn, err = u.ctl.Deny(ctx, id, run.Approver{ID: by}, clip.String(strings.TrimSpace(r.PostFormValue("reason")), 500))
	default:
		u.message(w, &s, http.StatusNotFound, "Not found", "There is no action "+clip.String(verb, 32)+".")
		return
	}
	fields := []zap.Field{zap.String("run_id", id)}
	if rn != nil {
		fields = telemetry.RunFields(rn)
	}
	log := u.log.With(append(fields, zap.String("operator", s.name), zap.String("operation", verb))...)
	switch {
	case err == nil:
		log.Info("operator action")
		http.Redirect(w, r, "/ui/runs/"+url.PathEscape(id), http.StatusSeeOther)
	case errors.Is(err, run.ErrNotFound):
		u.message(w, &s, http.StatusNotFound, "No such run", "There is no run "+clip.String(id, 64)+".")
	case errors.Is(err, gate.ErrNotApprover):
		log.Info("operator action refused by policy", zap.Error(err))
		u.message(w, &s, http.StatusForbidden, "Not yours to decide", err.Error()+".")
	case errors.Is(err, run.ErrIllegalTransition):
		log.Info("operator action refused", zap.Error(err))
		u.message(w, &s, http.StatusConflict, "Not possible now", "The run could not be changed: "+err.Error()+".")
	default:
		log.Error("operator action failed", zap.Error(err))
		u.message(w, &s, http.StatusInternalServerError, "Something went wrong", "paved could not "+verb+" the run; its log says why.")
	}
}

func (u *ui) queue(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	open, err := u.runs.ListRuns(ctx, store.Query{States: []run.State{run.Received, run.AwaitingApproval, run.Queued, run.Dispatching, run.Running},
		OldestFirst: true, Limit: queueLimit})
	if err != nil {
		u.storeFailed(w, s, "list unfinished runs", err)
		return
	}
	byStack, known := map[string][]*run.Run{}, map[string]*run.Run{}
	for _, rn := range open {
		byStack[rn.Stack.Key()] = append(byStack[rn.Stack.Key()], rn)
		known[rn.ID] = rn
	}
	lines := make([]view.Stack, 0, len(byStack))
	for key, runs := range byStack {
		// The store knows the line's order: the run holding the stack, then
		// queued runs oldest first.
		ids, err := u.runs.StackQueue(ctx, key)
		if err != nil {
			u.storeFailed(w, s, "read a stack's queue", err)
			return
		}
		l := view.Stack{Key: key}
		for i, id := range ids {
			rn := known[id]
			if rn == nil { // past the list's limit, or it joined the line since
				if rn, err = u.runs.Run(ctx, id); err != nil {
					u.storeFailed(w, s, "read a queued run", err)
					return
				}
			}
			l.Places = append(l.Places, view.Place{Run: rn, Ahead: i})
		}
		for _, rn := range runs {
			if rn.State == run.Received || rn.State == run.AwaitingApproval {
				l.Places = append(l.Places, view.Place{Run: rn, Ahead: -1})
			}
		}
		lines = append(lines, l)
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].Key < lines[j].Key })
	u.authedPage(w, s, "Queue", "queue", view.Queue{Stacks: lines})
}
