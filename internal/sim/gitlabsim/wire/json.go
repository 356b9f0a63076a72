package wire

import (
	"strconv"
	"time"
)

// REST timestamps are ISO 8601 with milliseconds ("2016-08-11T11:28:34.085Z"),
// as the docs show (webhook timestamps differ: see package webhook).
const restTime = "2006-01-02T15:04:05.000Z"

func restTS(t time.Time) any { return Timestamp(t, restTime) }

// Timestamp formats t in UTC with layout, or is nil while t is unset.
func Timestamp(t time.Time, layout string) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(layout)
}

// Seconds returns whole seconds between a and b, or nil while b is unset.
// GitLab's pipeline duration and queued_duration are integers.
func Seconds(a, b time.Time) any {
	if a.IsZero() || b.IsZero() {
		return nil
	}
	return int64(b.Sub(a) / time.Second)
}

// FloatSeconds returns the seconds between a and b as a float, or nil while
// either is unset: GitLab's job duration and queued_duration.
func FloatSeconds(a, b time.Time) any {
	if a.IsZero() || b.IsZero() {
		return nil
	}
	return b.Sub(a).Seconds()
}

func apiUser(root string) map[string]any {
	return map[string]any{
		"id": 1, "username": "paved-bot", "name": "paved bot", "state": "active",
		"avatar_url": "https://www.gravatar.com/avatar/00000000000000000000000000000000?s=80&d=identicon",
		"web_url":    root + "/paved-bot",
	}
}

// StatusText is the detailed_status text GitLab shows for a status.
func StatusText(status string) string {
	if status == StatusSuccess {
		return "passed"
	}
	return status
}

func detailedStatus(p Pipeline) map[string]any {
	text := StatusText(p.Status)
	return map[string]any{
		"icon": "status_" + p.Status, "text": text, "label": text, "group": p.Status,
		"tooltip": text, "has_details": true,
		"details_path": "/" + p.ProjectPath + "/-/pipelines/" + itoa(p.ID),
		"illustration": nil,
		"favicon":      "/assets/ci_favicons/favicon_status_" + p.Status + ".png",
	}
}

// pipelineBasic is API::Entities::Ci::PipelineBasic: what every pipeline
// answer carries.
func pipelineBasic(p Pipeline) map[string]any {
	return map[string]any{
		"id": p.ID, "iid": p.IID, "project_id": p.ProjectID, "status": p.Status,
		"source": p.Source, "ref": p.Ref, "sha": p.SHA, "web_url": p.WebURL,
		"created_at": restTS(p.CreatedAt), "updated_at": restTS(p.UpdatedAt),
	}
}

// nameJSON is a pipeline's name as the API shows it: null when the
// project's configuration gave it none.
func nameJSON(p Pipeline) any {
	if p.Name == "" {
		return nil
	}
	return p.Name
}

// PipelineBasicJSON is the list entry of GET /projects/:id/pipelines
// (PipelineBasicWithMetadata: the basic pipeline and its name).
func PipelineBasicJSON(p Pipeline, _ string) map[string]any {
	m := pipelineBasic(p)
	m["name"] = nameJSON(p)
	return m
}

// PipelineJSON is the pipeline that create, cancel and retry answer with
// (API::Entities::Ci::Pipeline). It has no name: the docs' examples of
// those answers show none, and only the *WithMetadata entities expose it.
func PipelineJSON(p Pipeline, root string) map[string]any {
	m := pipelineBasic(p)
	m["before_sha"] = "0000000000000000000000000000000000000000"
	m["tag"] = false
	m["yaml_errors"] = nil
	m["user"] = apiUser(root)
	m["started_at"] = restTS(p.StartedAt)
	m["finished_at"] = restTS(p.FinishedAt)
	m["committed_at"] = nil
	m["duration"] = Seconds(p.StartedAt, p.FinishedAt)
	m["queued_duration"] = Seconds(p.CreatedAt, p.StartedAt)
	m["coverage"] = nil
	m["detailed_status"] = detailedStatus(p)
	return m
}

// PipelineWithMetadataJSON is the answer of GET
// /projects/:id/pipelines/:pipeline_id: the full pipeline and its name.
func PipelineWithMetadataJSON(p Pipeline, root string) map[string]any {
	m := PipelineJSON(p, root)
	m["name"] = nameJSON(p)
	return m
}

// JobJSON is one entry of GET /projects/:id/pipelines/:pipeline_id/jobs.
func JobJSON(p Pipeline, root string) map[string]any {
	j := p.Job
	var reason any
	if j.FailureReason != "" {
		reason = j.FailureReason
	}
	return map[string]any{
		"id": j.ID, "name": j.Name, "stage": j.Stage, "status": j.Status, "ref": p.Ref,
		"tag": false, "coverage": nil, "allow_failure": false,
		"created_at": restTS(j.CreatedAt), "started_at": restTS(j.StartedAt), "finished_at": restTS(j.FinishedAt),
		"erased_at": nil, "duration": FloatSeconds(j.StartedAt, j.FinishedAt),
		"queued_duration": FloatSeconds(j.CreatedAt, j.StartedAt), "failure_reason": reason,
		"user":      apiUser(root),
		"commit":    map[string]any{"id": p.SHA, "short_id": p.SHA[:8], "title": "Provision", "message": "Provision\n"},
		"pipeline":  map[string]any{"id": p.ID, "project_id": p.ProjectID, "ref": p.Ref, "sha": p.SHA, "status": p.Status},
		"web_url":   root + "/" + p.ProjectPath + "/-/jobs/" + itoa(j.ID),
		"artifacts": []any{}, "runner": nil, "artifacts_expire_at": nil, "tag_list": []string{},
	}
}

// VariablesJSON is the body of GET /projects/:id/pipelines/:pipeline_id/variables.
func VariablesJSON(p Pipeline) []map[string]any {
	vars := make([]map[string]any, 0, len(p.Variables))
	for _, v := range p.Variables {
		vars = append(vars, map[string]any{"key": v.Key, "variable_type": v.VariableType, "value": v.Value})
	}
	return vars
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
