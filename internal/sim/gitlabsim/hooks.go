package gitlabsim

import "github.com/paved-idp/paved/internal/sim/gitlabsim/webhook"

// pipelineChanged is the engine's news of a new pipeline or a status
// change, in order and under the engine's lock: it counts the pipeline and
// queues the hook for its status, unless the pipeline is quiet.
func (s *Sim) pipelineChanged(p Pipeline, webRoot string, quiet bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Status == StatusCreated {
		s.stats.PipelinesMade++ // only a new pipeline is "created"
	}
	if s.hookURL == "" || quiet {
		return
	}
	body := webhook.Body(p, webRoot)
	d := HookDelivery{PipelineID: p.ID, Status: p.Status, EventUUID: webhook.NewUUID()}
	drop := s.faults.HookDropRate > 0 && s.rng.Float64() < s.faults.HookDropRate
	job := webhook.Job{Index: len(s.hooks), URL: s.hookURL, Token: s.hookToken, UUID: d.EventUUID, Payload: body}
	if !drop && !s.sender.Enqueue(job) {
		drop = true // queue full: GitLab does not guarantee delivery either
	}
	if drop {
		d.Dropped = true
		s.stats.HooksDropped++
	}
	s.hooks = append(s.hooks, d)
}

// hookAttempted records one delivery attempt of the hook sender.
func (s *Sim) hookAttempted(job webhook.Job, err error) {
	s.mu.Lock()
	h := &s.hooks[job.Index]
	h.Attempts++
	if err == nil {
		h.Delivered, h.LastError = true, ""
		s.stats.HooksSent++
	} else {
		h.LastError = err.Error()
	}
	s.mu.Unlock()
}
