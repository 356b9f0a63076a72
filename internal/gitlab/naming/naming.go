// Package naming is the name paved's provisioning component gives every
// pipeline ("paved <run id>"), and what a client has seen of which refs'
// pipelines carry it. The name lets paved tell a pipeline's run without
// reading its variables; what has been seen of it tells when a lookup by
// name is the whole answer (see gitlab.Client.FindByRunID).
package naming

import (
	"strings"
	"sync"
	"time"
)

// PipelineNamePrefix starts the name paved's provisioning component gives
// every pipeline: `workflow: name: "paved $PAVED_RUN_ID"` in
// deploy/gitlab/templates/provision.yml (deploy/gitlab's tests hold the two
// together).
const PipelineNamePrefix = "paved "

// PipelineName is the name GitLab gives run runID's pipeline in a project
// that includes paved's component (GitLab strips the name's surrounding
// spaces).
func PipelineName(runID string) string { return strings.TrimSpace(PipelineNamePrefix + runID) }

// RunIDOfName is the run id a pipeline's name carries when it has the form
// PipelineName gives it ("paved <run id>"), as every pipeline of a project
// that includes paved's component is named from its PAVED_RUN_ID. ok is
// false for no name, the bare prefix (a pipeline without PAVED_RUN_ID) and
// names of any other shape: their run, if any, is in their variables only.
func RunIDOfName(name string) (runID string, ok bool) {
	id, found := strings.CutPrefix(name, PipelineNamePrefix)
	if !found || id == "" || strings.TrimSpace(id) != id {
		return "", false
	}
	return id, true
}

// maxRefs bounds the refs whose naming a Seen remembers; forgetting one
// only costs a fallback scan.
const maxRefs = 4096

// key is one ref of one project, the project as the caller names it.
type key struct{ project, ref string }

// refNaming is what has been seen, in GitLab's answers, of how a ref's CI
// configuration names its pipelines: the newest pipeline with a name of
// PipelineName's form, and the newest with no name or a name of another
// shape (the bare "paved" of a pipeline without PAVED_RUN_ID says neither).
// Pipeline ids grow with creation, so the higher id is the later word.
type refNaming struct {
	named, other     int64
	namedAt, otherAt time.Time // those pipelines' created_at
}

// Seen is what one client has seen of how refs name their pipelines. The
// zero value is empty and ready; it is safe for concurrent use.
type Seen struct {
	mu   sync.Mutex
	refs map[key]refNaming
}

// Observe notes one pipeline GitLab described with its name (a list entry
// or GET pipeline; never the create or cancel answer, which carry none).
func (s *Seen) Observe(project, ref string, id int64, name string, created time.Time) {
	_, paved := RunIDOfName(name)
	if id <= 0 || (!paved && name == strings.TrimSpace(PipelineNamePrefix)) {
		return
	}
	k := key{project, ref}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs == nil {
		s.refs = map[key]refNaming{}
	}
	n, ok := s.refs[k]
	if !ok && len(s.refs) >= maxRefs {
		for old := range s.refs { // evict any one: bounded, and a lost entry only costs a scan
			delete(s.refs, old)
			break
		}
	}
	switch {
	case paved && id > n.named:
		n.named, n.namedAt = id, created
	case !paved && id > n.other:
		n.other, n.otherAt = id, created
	}
	s.refs[k] = n
}

// NamesRuns reports whether ref's pipelines in project, as far as s has
// seen, are all named after their run since from: the newest pipeline seen
// there carries PipelineName's form and was created since from, and none
// seen since from lacks it. Then a pipeline of a run dispatched since from
// carries the run's name too, and a lookup by name that GitLab filtered and
// that found nothing is the whole answer.
//
// It is the component's contract (a configuration that includes it names
// every pipeline "paved $PAVED_RUN_ID"), checked against what GitLab
// shows, not a proof: a ref whose configuration drops the component's name
// after this client last saw one of its pipelines, within the window, would
// be believed to name the pipeline of a run whose trigger answer was lost.
func (s *Seen) NamesRuns(project, ref string, from time.Time) bool {
	s.mu.Lock()
	n := s.refs[key{project, ref}]
	s.mu.Unlock()
	return n.named > n.other && !n.namedAt.Before(from) && (n.other == 0 || n.otherAt.Before(from))
}
