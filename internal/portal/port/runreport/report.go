// Package runreport delivers paved's portal-neutral run reports to Port: it
// turns a run.Report into the entity, run PATCH and log calls of Port's REST
// API, and asks Port whether a run already has its final status. It knows
// what to send; package port's Client knows how (token, errors, retry
// classification), so a report needs only its Call.
package runreport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/paved-idp/paved/internal/clip"
	"github.com/paved-idp/paved/internal/portal/port"
	"github.com/paved-idp/paved/internal/run"
)

// Caller sends one authenticated request to Port's API and classifies its
// failures; *port.Client is one.
type Caller interface {
	Call(ctx context.Context, op, method, path string, body, out any) error
}

// entityIdentifierOK checks Port's entity identifier pattern,
// ^(?!\.{1,2}$)[\p{L}0-9@_.+:\\/='-]{1,1000}$, by hand: RE2 has no
// lookahead, and as a regexp the {1,1000} repeat compiles to a program of
// 630 KB, which took 4 ms of every start and stayed in the heap. Invalid
// UTF-8 decodes to U+FFFD, which is no letter, so it fails here as it
// does in the regexp.
func entityIdentifierOK(id string) bool {
	if id == "" || id == "." || id == ".." {
		return false
	}
	n := 0
	for _, r := range id {
		if n++; n > 1000 || !identifierRune(r) {
			return false
		}
	}
	return true
}

func identifierRune(r rune) bool {
	return '0' <= r && r <= '9' || strings.ContainsRune(`@_.+:\/='-`, r) || unicode.IsLetter(r)
}

// Report delivers one portal-neutral report about the Port run portRunID, as
// up to four API calls in this order:
//
//  1. Entity → POST /v1/blueprints/{bp}/entities?upsert=true&merge=true&run_id=…&create_missing_related_entities=true
//     first, because Port ties an entity to a run only while the run is
//     IN_PROGRESS;
//  2. Link/StatusLabel of a non-final report → PATCH /v1/actions/runs/{id};
//  3. Log → POST /v1/actions/runs/{id}/logs {message};
//  4. Final → PATCH /v1/actions/runs/{id} {status, statusLabel, summary, link}.
//
// The terminal status goes only in the PATCH, never as the log's
// terminationStatus: Port locks a run once it has a terminal status, so
// sending both would make the second call fail, and only the PATCH carries
// a summary. The log therefore goes before the final PATCH. A final report
// without a StatusLabel gets "Succeeded" or "Failed", replacing the last
// progress label.
//
// A failed step stops the report and the caller retries the whole report:
// upserts and progress PATCHes repeat harmlessly and a log line may appear
// twice. Port's docs do not say how it answers a second final PATCH on a
// run it has already locked.
func Report(ctx context.Context, api Caller, portRunID string, rep run.Report) error {
	if portRunID == "" && rep.Entity != nil && rep == (run.Report{Entity: rep.Entity, Untied: rep.Untied}) {
		// A run of paved's own (a drift check) has no Port run: an entity
		// write alone is delivered, tied to no run. News of a stack
		// (untied) only updates an entity that is still there.
		if rep.Untied {
			return patchEntity(ctx, api, rep.Entity)
		}
		return upsertEntity(ctx, api, "", rep.Entity)
	}
	if rep.Delete != nil {
		if rep != (run.Report{Delete: rep.Delete}) {
			return fmt.Errorf("port: report: an entity deletion travels alone: %w", port.ErrInvalid)
		}
		return deleteEntity(ctx, api, *rep.Delete)
	}
	if err := port.ValidRunID(portRunID); err != nil {
		return fmt.Errorf("port: report: %w: %w", err, port.ErrInvalid)
	}
	switch rep.Final {
	case "", run.Success, run.Failure:
	default:
		return fmt.Errorf("port: report run %s: final status %q is not SUCCESS or FAILURE: %w", portRunID, clip.String(rep.Final, 40), port.ErrInvalid)
	}
	runPath := "/v1/actions/runs/" + url.PathEscape(portRunID)

	if e := rep.Entity; e != nil {
		if err := upsertEntity(ctx, api, portRunID, e); err != nil {
			return err
		}
	}
	// A log line with a new label is one call: Port's log route also sets
	// the run's status label.
	withLog := rep.Final == "" && rep.Link == "" && rep.Log != ""
	if rep.Final == "" && (rep.Link != "" || rep.StatusLabel != "") && !withLog {
		err := api.Call(ctx, "patch run "+portRunID, http.MethodPatch, runPath,
			runPatch{StatusLabel: rep.StatusLabel, Link: links(rep.Link)}, nil)
		if err != nil {
			return err
		}
	}
	if rep.Log != "" {
		err := api.Call(ctx, "post log to run "+portRunID, http.MethodPost, runPath+"/logs",
			logEntry{Message: truncate(rep.Log), StatusLabel: labelIf(withLog, rep.StatusLabel)}, nil)
		if err != nil {
			return err
		}
	}
	if rep.Final != "" {
		label := rep.StatusLabel
		if label == "" {
			// Port keeps the last label next to the final status; a
			// leftover "Running" on a finished run would mislead.
			label = finalLabel[rep.Final]
		}
		return api.Call(ctx, "finish run "+portRunID, http.MethodPatch, runPath,
			runPatch{Status: rep.Final, StatusLabel: label, Summary: truncate(rep.Summary), Link: links(rep.Link)}, nil)
	}
	return nil
}

var finalLabel = map[string]string{run.Success: "Succeeded", run.Failure: "Failed"}

func labelIf(ok bool, label string) string {
	if ok {
		return label
	}
	return ""
}

// maxText bounds a log line or summary well under Port's 1 MiB request
// limit: a 413 is permanent and would also stop the final status behind it.
const maxText = 256 << 10

func truncate(s string) string {
	if len(s) <= maxText {
		return s
	}
	cut := maxText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + " …[truncated by paved]"
}

// runPatch is PATCH /v1/actions/runs/{id}. Port's schema forbids other keys
// and takes status SUCCESS or FAILURE only (a run starts IN_PROGRESS).
type runPatch struct {
	Status      string   `json:"status,omitempty"`
	StatusLabel string   `json:"statusLabel,omitempty"`
	Summary     string   `json:"summary,omitempty"`
	Link        []string `json:"link,omitempty"`
}

// logEntry is POST /v1/actions/runs/{id}/logs; message is required there,
// terminationStatus and statusLabel optional (see Report for why we leave
// them out).
type logEntry struct {
	Message     string `json:"message"`
	StatusLabel string `json:"statusLabel,omitempty"`
}

// links sends a link as Port's array form ("one or more links"); Port also
// takes a bare string. Each PATCH replaces the run's links.
func links(link string) []string {
	if link == "" {
		return nil
	}
	return []string{link}
}

// entityBody is Port's entity JSON. With upsert and merge, keys left out
// keep their current values, so empty fields are omitted rather than sent.
type entityBody struct {
	Identifier string         `json:"identifier"`
	Title      string         `json:"title,omitempty"`
	Team       []string       `json:"team,omitempty"`
	Properties map[string]any `json:"properties"`
	Relations  map[string]any `json:"relations,omitempty"`
}

func upsertEntity(ctx context.Context, api Caller, portRunID string, e *run.EntityUpsert) error {
	if err := port.ValidRunID(portRunID); err != nil && portRunID != "" {
		// The run id goes into the run_id query; Report checked it already,
		// but this guard stays next to the URL it protects.
		return fmt.Errorf("port: upsert entity: %w: %w", err, port.ErrInvalid)
	}
	// The blueprint comes from the webhook body and the identifier from the
	// pipeline's outputs: both are clipped, as op goes into every error.
	op := fmt.Sprintf("upsert entity %s/%s for run %s", clip.String(e.Blueprint, 60), clip.String(e.Identifier, 60), portRunID)
	if e.Blueprint == "" {
		return fmt.Errorf("port: %s: no blueprint: %w", op, port.ErrInvalid)
	}
	if !entityIdentifierOK(e.Identifier) {
		return fmt.Errorf("port: %s: identifier does not match Port's pattern: %w", op, port.ErrInvalid)
	}
	props := e.Properties
	if props == nil {
		props = map[string]any{}
	}
	// create_missing_related_entities (in entityQuery): the service, tenant
	// and environment an entity relates to need not be in the catalog yet.
	return api.Call(ctx, op, http.MethodPost,
		"/v1/blueprints/"+url.PathEscape(e.Blueprint)+"/entities?"+entityQuery(portRunID).Encode(),
		entityBody{Identifier: e.Identifier, Title: e.Title, Team: e.Team, Properties: props, Relations: e.Relations}, nil)
}

// patchEntity is PATCH /v1/blueprints/{bp}/entities/{id} ("Patch an
// entity"): the properties given are changed, the rest kept; an entity not
// there (404) is left so, and that is success: nothing is left to tell.
func patchEntity(ctx context.Context, api Caller, e *run.EntityUpsert) error {
	op := fmt.Sprintf("patch entity %s/%s", clip.String(e.Blueprint, 60), clip.String(e.Identifier, 60))
	if e.Blueprint == "" || !entityIdentifierOK(e.Identifier) {
		return fmt.Errorf("port: %s: not a blueprint and an identifier Port accepts: %w", op, port.ErrInvalid)
	}
	props := e.Properties
	if props == nil {
		props = map[string]any{}
	}
	err := api.Call(ctx, op, http.MethodPatch,
		"/v1/blueprints/"+url.PathEscape(e.Blueprint)+"/entities/"+url.PathEscape(e.Identifier),
		map[string]any{"properties": props}, nil)
	if apiErr, ok := errors.AsType[*port.APIError](err); ok && apiErr.StatusCode == http.StatusNotFound {
		return nil
	}
	return err
}

// deleteEntity is DELETE /v1/blueprints/{bp}/entities/{id}, without
// delete_dependents: an entity another one needs (a required relation) is
// not taken down with them, and Port's refusal says so. A 404 is success:
// the entity is gone, perhaps by an earlier attempt whose answer was lost.
func deleteEntity(ctx context.Context, api Caller, e run.EntityRef) error {
	op := fmt.Sprintf("delete entity %s/%s", clip.String(e.Blueprint, 60), clip.String(e.Identifier, 60))
	if e.Blueprint == "" || !entityIdentifierOK(e.Identifier) {
		return fmt.Errorf("port: %s: not a blueprint and an identifier Port accepts: %w", op, port.ErrInvalid)
	}
	err := api.Call(ctx, op, http.MethodDelete,
		"/v1/blueprints/"+url.PathEscape(e.Blueprint)+"/entities/"+url.PathEscape(e.Identifier), nil, nil)
	if apiErr, ok := errors.AsType[*port.APIError](err); ok && apiErr.StatusCode == http.StatusNotFound {
		return nil
	}
	return err
}

// Finished reports whether Port already holds a terminal status for the
// run (GET /v1/actions/runs/{run_id}). The reporter asks before it repeats
// a final status whose first attempt may have gone through.
func Finished(ctx context.Context, api Caller, portRunID string) (bool, error) {
	if err := port.ValidRunID(portRunID); err != nil {
		return false, fmt.Errorf("port: get run: %w: %w", err, port.ErrInvalid)
	}
	var out struct {
		Run *struct {
			Status string `json:"status"`
		} `json:"run"`
	}
	err := api.Call(ctx, "get run "+portRunID, http.MethodGet, "/v1/actions/runs/"+url.PathEscape(portRunID), nil, &out)
	if err != nil {
		return false, err
	}
	if out.Run == nil {
		return false, fmt.Errorf("port: get run %s: answer has no run", portRunID)
	}
	return out.Run.Status == run.Success || out.Run.Status == run.Failure, nil
}

// entityQuery ties an upsert to the Port run, when there is one.
func entityQuery(portRunID string) url.Values {
	q := url.Values{"upsert": {"true"}, "merge": {"true"}, "create_missing_related_entities": {"true"}}
	if portRunID != "" {
		q.Set("run_id", portRunID)
	}
	return q
}
