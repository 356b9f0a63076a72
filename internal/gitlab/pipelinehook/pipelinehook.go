// Package pipelinehook checks and decodes GitLab's Pipeline Hook webhook
// deliveries. It is the inbound side of paved's GitLab integration and
// needs nothing of the API client: what a hook claims is verified against
// the API by its consumer (see track and gitlab.Client.PipelineOfRun).
package pipelinehook

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Errors Decode returns for requests to refuse.
var (
	ErrUnauthorized     = errors.New("gitlab hook: bad or missing X-Gitlab-Token")
	ErrNotPipelineHook  = errors.New("gitlab hook: not a Pipeline Hook")
	errMalformedPayload = errors.New("gitlab hook: malformed payload")
)

// Event is the part of a Pipeline Hook that paved acts on. A hook is
// evidence only about its own project and pipeline (DESIGN.md "Trusting
// GitLab's events"): a group webhook delivers every project's pipelines,
// and anyone who can run one can set PAVED_RUN_ID.
type Event struct {
	PipelineID, ProjectID int64
	// ProjectPath is the project's path_with_namespace, e.g. "platform/paved-provision".
	ProjectPath      string
	Status, Ref, URL string
	// Name is the pipeline's workflow:name ("" when it has none); Source is
	// how it was started ("api" for paved's triggers).
	Name, Source string
	Variables    map[string]string
	Builds       []Build
}

// Build is one job of the pipeline, as the hook lists it.
type Build struct {
	ID                  int64
	Name, Stage, Status string
	FailureReason       string
}

// pipelineHook holds only the fields paved reads. Our own struct rather
// than client-go's PipelineEvent keeps decoding tolerant of the fields whose
// JSON types vary between GitLab versions and docs (durations as 63 or
// 17.0, detailed_status as "passed", timestamps as "2016-08-12 15:23:28 UTC").
type pipelineHook struct {
	ObjectKind       string `json:"object_kind"`
	ObjectAttributes struct {
		ID        int64  `json:"id"`
		Name      string `json:"name"` // null without a workflow:name
		Ref       string `json:"ref"`
		Source    string `json:"source"`
		Status    string `json:"status"`
		URL       string `json:"url"`
		Variables []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"variables"`
	} `json:"object_attributes"`
	Project struct {
		ID                int64  `json:"id"`
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	Builds []struct {
		ID            int64   `json:"id"`
		Name          string  `json:"name"`
		Stage         string  `json:"stage"`
		Status        string  `json:"status"`
		FailureReason *string `json:"failure_reason"`
	} `json:"builds"`
}

// Decode checks a GitLab webhook delivery and decodes it. The
// X-Gitlab-Token header must equal secret (compared in constant time; an
// empty secret refuses everything) and X-Gitlab-Event must be
// "Pipeline Hook".
func Decode(h http.Header, body []byte, secret string) (Event, error) {
	got := h.Get("X-Gitlab-Token")
	if secret == "" || subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
		return Event{}, ErrUnauthorized
	}
	if ev := h.Get("X-Gitlab-Event"); ev != "Pipeline Hook" {
		return Event{}, fmt.Errorf("%w: X-Gitlab-Event %q", ErrNotPipelineHook, ev)
	}
	var p pipelineHook
	if err := json.Unmarshal(body, &p); err != nil {
		return Event{}, fmt.Errorf("%w: %w", errMalformedPayload, err)
	}
	if p.ObjectKind != "pipeline" {
		return Event{}, fmt.Errorf("%w: object_kind %q", ErrNotPipelineHook, p.ObjectKind)
	}
	a := p.ObjectAttributes
	if a.ID <= 0 || a.Status == "" {
		return Event{}, fmt.Errorf("%w: no valid pipeline id or status", errMalformedPayload)
	}
	ev := Event{
		PipelineID: a.ID, ProjectID: p.Project.ID, ProjectPath: p.Project.PathWithNamespace,
		Status: a.Status, Ref: a.Ref, URL: a.URL, Name: a.Name, Source: a.Source,
		Variables: make(map[string]string, len(a.Variables)),
	}
	for _, v := range a.Variables {
		ev.Variables[v.Key] = v.Value
	}
	for _, b := range p.Builds {
		nb := Build{ID: b.ID, Name: b.Name, Stage: b.Stage, Status: b.Status}
		if b.FailureReason != nil {
			nb.FailureReason = *b.FailureReason
		}
		ev.Builds = append(ev.Builds, nb)
	}
	return ev, nil
}
