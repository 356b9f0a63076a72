// Package webhook is gitlabsim's side of GitLab's "Pipeline Hook": the body
// as webhook_events.md documents it ("Pipeline events") and the POST that
// delivers it, with GitLab's X-Gitlab-* headers. Queueing, fault injection
// and retries stay with the simulator.
package webhook

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/sim/gitlabsim/wire"
)

// Webhook timestamps are "2016-08-12 15:23:28 UTC", as the docs show (REST
// timestamps differ: see package wire).
const hookTime = "2006-01-02 15:04:05 UTC"

func hookTS(t time.Time) any { return wire.Timestamp(t, hookTime) }

func hookUser() map[string]any {
	return map[string]any{
		"id": 1, "name": "paved bot", "username": "paved-bot",
		"avatar_url": "https://www.gravatar.com/avatar/00000000000000000000000000000000?s=80&d=identicon",
		"email":      "[REDACTED]",
	}
}

// Body is Payload marshalled to JSON.
func Body(p wire.Pipeline, root string) []byte {
	body, err := json.Marshal(Payload(p, root))
	if err != nil {
		panic(fmt.Sprintf("gitlabsim: marshal hook: %v", err)) // maps of plain values always marshal
	}
	return body
}

// Payload is the documented "Pipeline Hook" body. Unlike the REST API,
// object_attributes.detailed_status is a plain string ("passed").
func Payload(p wire.Pipeline, root string) map[string]any {
	vars := make([]map[string]any, 0, len(p.Variables))
	for _, v := range p.Variables {
		vars = append(vars, map[string]any{"key": v.Key, "value": v.Value})
	}
	j := p.Job
	var reason any
	if j.FailureReason != "" {
		reason = j.FailureReason
	}
	projURL := root + "/" + p.ProjectPath
	host := strings.TrimPrefix(strings.TrimPrefix(root, "https://"), "http://")
	var pipelineName any // null when the project's configuration names no pipelines
	if p.Name != "" {
		pipelineName = p.Name
	}
	name := p.ProjectPath[strings.LastIndex(p.ProjectPath, "/")+1:]
	ns := p.ProjectPath[:max(0, strings.LastIndex(p.ProjectPath, "/"))]
	return map[string]any{
		"object_kind": "pipeline",
		"object_attributes": map[string]any{
			"id": p.ID, "iid": p.IID, "name": pipelineName, "ref": p.Ref, "tag": false, "sha": p.SHA,
			"before_sha": "0000000000000000000000000000000000000000", "source": p.Source,
			"status": p.Status, "detailed_status": wire.StatusText(p.Status), "stages": []string{j.Stage},
			"created_at": hookTS(p.CreatedAt), "finished_at": hookTS(p.FinishedAt),
			"duration": wire.Seconds(p.StartedAt, p.FinishedAt), "queued_duration": wire.Seconds(p.CreatedAt, p.StartedAt),
			"variables": vars, "url": p.WebURL,
		},
		"merge_request": nil,
		"user":          hookUser(),
		"project": map[string]any{
			"id": p.ProjectID, "name": name, "description": "", "web_url": projURL, "avatar_url": nil,
			"git_ssh_url": "git@" + host + ":" + p.ProjectPath + ".git", "git_http_url": projURL + ".git",
			"namespace": ns, "visibility_level": 0, "path_with_namespace": p.ProjectPath,
			"default_branch": "main", "ci_config_path": nil,
		},
		"commit": map[string]any{
			"id": p.SHA, "message": "Provision\n", "title": "Provision",
			"timestamp": p.CreatedAt.UTC().Format(time.RFC3339),
			"url":       projURL + "/-/commit/" + p.SHA,
			"author":    map[string]any{"name": "paved bot", "email": "paved-bot@example.com"},
		},
		"builds": []any{map[string]any{
			"id": j.ID, "stage": j.Stage, "name": j.Name, "status": j.Status,
			"created_at": hookTS(j.CreatedAt), "started_at": hookTS(j.StartedAt), "finished_at": hookTS(j.FinishedAt),
			"duration": wire.FloatSeconds(j.StartedAt, j.FinishedAt), "queued_duration": wire.FloatSeconds(j.CreatedAt, j.StartedAt),
			"failure_reason": reason, "when": "on_success", "manual": false, "allow_failure": false,
			"user": hookUser(), "runner": runner(j),
			"artifacts_file": map[string]any{"filename": nil, "size": nil},
			"environment":    nil,
		}},
	}
}

func runner(j wire.Job) any {
	if j.StartedAt.IsZero() {
		return nil
	}
	return map[string]any{
		"id": 1, "description": "gitlabsim-runner", "active": true,
		"runner_type": "project_type", "is_shared": false, "tags": []string{"paved"},
	}
}
