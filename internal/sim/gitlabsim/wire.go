package gitlabsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// REST timestamps are ISO 8601 with milliseconds ("2016-08-11T11:28:34.085Z");
// webhook timestamps are "2016-08-12 15:23:28 UTC". Both as the docs show.
const (
	restTime = "2006-01-02T15:04:05.000Z"
	hookTime = "2006-01-02 15:04:05 UTC"
)

func restTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(restTime)
}

func hookTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(hookTime)
}

// seconds returns whole seconds between a and b, or nil while b is unset.
// GitLab's pipeline duration and queued_duration are integers.
func seconds(a, b time.Time) any {
	if a.IsZero() || b.IsZero() {
		return nil
	}
	return int64(b.Sub(a) / time.Second)
}

func floatSeconds(a, b time.Time) any {
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

func hookUser() map[string]any {
	return map[string]any{
		"id": 1, "name": "paved bot", "username": "paved-bot",
		"avatar_url": "https://www.gravatar.com/avatar/00000000000000000000000000000000?s=80&d=identicon",
		"email":      "[REDACTED]",
	}
}

// statusText is the detailed_status text GitLab shows for a status.
func statusText(status string) string {
	if status == StatusSuccess {
		return "passed"
	}
	return status
}

func detailedStatus(p Pipeline) map[string]any {
	text := statusText(p.Status)
	return map[string]any{
		"icon": "status_" + p.Status, "text": text, "label": text, "group": p.Status,
		"tooltip": text, "has_details": true,
		"details_path": "/" + p.ProjectPath + "/-/pipelines/" + itoa(p.ID),
		"illustration": nil,
		"favicon":      "/assets/ci_favicons/favicon_status_" + p.Status + ".png",
	}
}

// restPipelineBasic is the list entry of GET /projects/:id/pipelines.
func restPipelineBasic(p Pipeline, _ string) map[string]any {
	return map[string]any{
		"id": p.ID, "iid": p.IID, "project_id": p.ProjectID, "status": p.Status,
		"source": p.Source, "ref": p.Ref, "sha": p.SHA, "name": nil, "web_url": p.WebURL,
		"created_at": restTS(p.CreatedAt), "updated_at": restTS(p.UpdatedAt),
	}
}

// restPipeline is the full pipeline of create, get and cancel.
func restPipeline(p Pipeline, root string) map[string]any {
	m := restPipelineBasic(p, root)
	m["before_sha"] = "0000000000000000000000000000000000000000"
	m["tag"] = false
	m["yaml_errors"] = nil
	m["user"] = apiUser(root)
	m["started_at"] = restTS(p.StartedAt)
	m["finished_at"] = restTS(p.FinishedAt)
	m["committed_at"] = nil
	m["duration"] = seconds(p.StartedAt, p.FinishedAt)
	m["queued_duration"] = seconds(p.CreatedAt, p.StartedAt)
	m["coverage"] = nil
	m["detailed_status"] = detailedStatus(p)
	return m
}

// restJob is one entry of GET /projects/:id/pipelines/:pipeline_id/jobs.
func restJob(p Pipeline, root string) map[string]any {
	j := p.Job
	var reason any
	if j.FailureReason != "" {
		reason = j.FailureReason
	}
	return map[string]any{
		"id": j.ID, "name": j.Name, "stage": j.Stage, "status": j.Status, "ref": p.Ref,
		"tag": false, "coverage": nil, "allow_failure": false,
		"created_at": restTS(j.CreatedAt), "started_at": restTS(j.StartedAt), "finished_at": restTS(j.FinishedAt),
		"erased_at": nil, "duration": floatSeconds(j.StartedAt, j.FinishedAt),
		"queued_duration": floatSeconds(j.CreatedAt, j.StartedAt), "failure_reason": reason,
		"user":      apiUser(root),
		"commit":    map[string]any{"id": p.SHA, "short_id": p.SHA[:8], "title": "Provision", "message": "Provision\n"},
		"pipeline":  map[string]any{"id": p.ID, "project_id": p.ProjectID, "ref": p.Ref, "sha": p.SHA, "status": p.Status},
		"web_url":   root + "/" + p.ProjectPath + "/-/jobs/" + itoa(j.ID),
		"artifacts": []any{}, "runner": nil, "artifacts_expire_at": nil, "tag_list": []string{},
	}
}

// hookPayload is the documented "Pipeline Hook" body. Unlike the REST API,
// object_attributes.detailed_status is a plain string ("passed").
func hookPayload(p Pipeline, root string) map[string]any {
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
	name := p.ProjectPath[strings.LastIndex(p.ProjectPath, "/")+1:]
	ns := p.ProjectPath[:max(0, strings.LastIndex(p.ProjectPath, "/"))]
	return map[string]any{
		"object_kind": "pipeline",
		"object_attributes": map[string]any{
			"id": p.ID, "iid": p.IID, "name": nil, "ref": p.Ref, "tag": false, "sha": p.SHA,
			"before_sha": "0000000000000000000000000000000000000000", "source": p.Source,
			"status": p.Status, "detailed_status": statusText(p.Status), "stages": []string{j.Stage},
			"created_at": hookTS(p.CreatedAt), "finished_at": hookTS(p.FinishedAt),
			"duration": seconds(p.StartedAt, p.FinishedAt), "queued_duration": seconds(p.CreatedAt, p.StartedAt),
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
			"duration": floatSeconds(j.StartedAt, j.FinishedAt), "queued_duration": floatSeconds(j.CreatedAt, j.StartedAt),
			"failure_reason": reason, "when": "on_success", "manual": false, "allow_failure": false,
			"user": hookUser(), "runner": runner(j),
			"artifacts_file": map[string]any{"filename": nil, "size": nil},
			"environment":    nil,
		}},
	}
}

func runner(j Job) any {
	if j.StartedAt.IsZero() {
		return nil
	}
	return map[string]any{
		"id": 1, "description": "gitlabsim-runner", "active": true,
		"runner_type": "project_type", "is_shared": false, "tags": []string{"paved"},
	}
}

type hookJob struct {
	index   int // into s.hooks
	url     string
	token   string
	uuid    string
	payload []byte
}

// emitHookLocked queues the hook for the pipeline's current status; the
// caller holds s.mu, so each status change yields exactly one snapshot.
func (s *Sim) emitHookLocked(p *pipeline) {
	if s.hookURL == "" {
		return
	}
	body, err := json.Marshal(hookPayload(p.snapshot(), p.webRoot))
	if err != nil {
		panic(fmt.Sprintf("gitlabsim: marshal hook: %v", err)) // maps of plain values always marshal
	}
	d := HookDelivery{PipelineID: p.ID, Status: p.Status, EventUUID: newUUID()}
	drop := s.faults.HookDropRate > 0 && s.rng.Float64() < s.faults.HookDropRate
	job := hookJob{index: len(s.hooks), url: s.hookURL, token: s.hookToken, uuid: d.EventUUID, payload: body}
	if !drop {
		select {
		case s.hookCh <- job:
		default:
			drop = true // queue full: GitLab does not guarantee delivery either
		}
	}
	if drop {
		d.Dropped = true
		s.stats.HooksDropped++
	}
	s.hooks = append(s.hooks, d)
}

// hookWorker delivers queued hooks one at a time, in order, retrying failed
// deliveries a few times before giving up.
func (s *Sim) hookWorker() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case job := <-s.hookCh:
			s.deliver(job)
		}
	}
}

func (s *Sim) deliver(job hookJob) {
	var lastErr error
	attempts := 1 + max(0, s.cfg.HookRetries)
	for i := 0; i < attempts; i++ {
		if i > 0 && !sleep(s.ctx, time.Duration(10<<i)*time.Millisecond) {
			return
		}
		lastErr = s.post(job)
		s.mu.Lock()
		h := &s.hooks[job.index]
		h.Attempts++
		if lastErr == nil {
			h.Delivered, h.LastError = true, ""
			s.stats.HooksSent++
		} else {
			h.LastError = lastErr.Error()
		}
		s.mu.Unlock()
		if lastErr == nil {
			return
		}
	}
	s.count(func(st *Stats) { st.HooksFailed++ })
}

func (s *Sim) post(job hookJob) error {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, job.url, bytes.NewReader(job.payload))
	if err != nil {
		return fmt.Errorf("build hook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitLab/18.0.0-gitlabsim")
	req.Header.Set("X-Gitlab-Event", "Pipeline Hook")
	req.Header.Set("X-Gitlab-Event-UUID", job.uuid)
	req.Header.Set("X-Gitlab-Webhook-UUID", "5d5c1b3e-0000-4000-8000-000000000001")
	req.Header.Set("X-Gitlab-Instance", "http://gitlabsim")
	req.Header.Set("Idempotency-Key", job.uuid)
	if job.token != "" {
		req.Header.Set("X-Gitlab-Token", job.token)
	}
	resp, err := s.cfg.HookClient.Do(req)
	if err != nil {
		return fmt.Errorf("post hook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post hook: %s", resp.Status)
	}
	return nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
