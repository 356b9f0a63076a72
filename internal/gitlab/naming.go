package gitlab

import (
	"strings"
	"time"
)

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

// maxNamings bounds the refs whose naming a Client remembers; forgetting
// one only costs a fallback scan.
const maxNamings = 4096

// namingKey is one ref of one project, the project as the caller names it.
type namingKey struct{ project, ref string }

// naming is what a Client has seen, in GitLab's answers, of how a ref's CI
// configuration names its pipelines: the newest pipeline with a name of
// PipelineName's form, and the newest with no name or a name of another
// shape (the bare "paved" of a pipeline without PAVED_RUN_ID says neither).
// Pipeline ids grow with creation, so the higher id is the later word.
type naming struct {
	named, other     int64
	namedAt, otherAt time.Time // those pipelines' created_at
}

// observe notes one pipeline GitLab described with its name (a list entry
// or GET pipeline; never the create or cancel answer, which carry none).
func (c *Client) observe(project, ref string, id int64, name string, created time.Time) {
	_, paved := RunIDOfName(name)
	if id <= 0 || (!paved && name == strings.TrimSpace(PipelineNamePrefix)) {
		return
	}
	key := namingKey{project, ref}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.namings[key]
	if !ok && len(c.namings) >= maxNamings {
		for k := range c.namings { // evict any one: bounded, and a lost entry only costs a scan
			delete(c.namings, k)
			break
		}
	}
	switch {
	case paved && id > n.named:
		n.named, n.namedAt = id, created
	case !paved && id > n.other:
		n.other, n.otherAt = id, created
	}
	c.namings[key] = n
}

// namesRuns reports whether ref's pipelines in project, as far as this
// client has seen, are all named after their run since from: the newest
// pipeline seen there carries PipelineName's form and was created since
// from, and none seen since from lacks it. Then a pipeline of a run
// dispatched since from carries the run's name too, and a lookup by name
// that GitLab filtered and that found nothing is the whole answer.
//
// It is the component's contract (a configuration that includes it names
// every pipeline "paved $PAVED_RUN_ID"), checked against what GitLab
// shows, not a proof: a ref whose configuration drops the component's name
// after this client last saw one of its pipelines, within the window, would
// be believed to name the pipeline of a run whose trigger answer was lost.
func (c *Client) namesRuns(project, ref string, from time.Time) bool {
	c.mu.Lock()
	n := c.namings[namingKey{project, ref}]
	c.mu.Unlock()
	return n.named > n.other && !n.namedAt.Before(from) && (n.other == 0 || n.otherAt.Before(from))
}
