package gitlab

import (
	"context"
	"fmt"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/paved-idp/paved/internal/gitlab/naming"
)

// findSkew widens the fallback scan's created_after window, because paved's
// clock and GitLab's are not the same clock.
const findSkew = 2 * time.Minute

// maxCursors bounds the scan cursors a Client remembers; forgetting one
// only costs re-reading that run's pages.
const maxCursors = 4096

// cursorKey names one run's fallback scan.
type cursorKey struct{ project, ref, runID string }

// cursor is where a run's fallback scan resumes after an error or a miss.
type cursor struct {
	from    time.Time // the scan's created_after; another one starts afresh
	page    int       // the page to list next
	pending []listed  // pipelines of the page listed last still to examine, in order
}

// listed is a pipeline a scan listed: its id and name (a pipeline's name
// never changes).
type listed struct {
	id   int64
	name string
}

// FindByRunID looks for the pipeline run runID created on ref in project
// (since is when its dispatch began; pipelines up to id after belong to an
// earlier dispatch of the run, such as its preview's). found is false when there is none,
// which is when a dispatcher may trigger again. A pipeline is adopted only
// if it is on ref and GitLab lists it in project.
//
// The pipeline is asked for by name first: paved's component names each
// pipeline naming.PipelineName(runID), so one request (GET
// /projects/:id/pipelines?name=…&source=api&ref=…&created_after=…) finds it, however many
// runs are in flight, without reading any variables. When that finds
// nothing, a scan of the pipelines created since the dispatch began looks
// further (see scan), unless the answer was already the whole answer: GitLab
// applied the name filter (or had nothing to filter), and the ref's
// pipelines GitLab has shown this client since then all carry their run's
// name (see naming.Seen.NamesRuns), so the run's pipeline would have been
// found by its name. Without that — a project whose CI configuration lacks
// the name, a GitLab older than 16.9 that ignores the filter, or nothing
// seen of the ref yet — the scan runs, and stops as soon as what it lists
// shows the same.
func (c *Client) FindByRunID(ctx context.Context, project, ref string, since time.Time, runID string, after int64) (p Pipeline, found bool, err error) {
	from := since.Add(-findSkew).UTC()
	p, found, filtered, err := c.findByName(ctx, project, ref, from, runID, after)
	if err != nil || found {
		if found {
			c.dropCursor(cursorKey{project, ref, runID})
		}
		return p, found, err
	}
	if filtered && c.namings.NamesRuns(project, ref, from) {
		return Pipeline{}, false, nil
	}
	return c.scan(ctx, project, ref, from, runID, filtered, after)
}

// findByName lists the run's pipelines created since from by name, oldest
// first: if a race made two, the first is the run's and the other its
// duplicate.
// filtered is true when every pipeline GitLab answered with has the name
// asked for, i.e. GitLab applied the filter (16.9 and later), or there was
// nothing to filter: then the answer holds every pipeline of that name.
func (c *Client) findByName(ctx context.Context, project, ref string, from time.Time, runID string, after int64) (p Pipeline, found, filtered bool, err error) {
	name := naming.PipelineName(runID)
	opt := &gl.ListProjectPipelinesOptions{
		ListOptions:  gl.ListOptions{PerPage: 100, Page: 1},
		Name:         gl.Ptr(name),
		Source:       gl.Ptr("api"),
		Ref:          gl.Ptr(ref),
		CreatedAfter: gl.Ptr(from),
		OrderBy:      gl.Ptr("id"),
		Sort:         gl.Ptr("asc"),
	}
	var list []*gl.PipelineInfo
	err = c.call(ctx, func(ctx context.Context) (err error) {
		list, _, err = c.gl.Pipelines.ListProjectPipelines(project, opt, gl.WithContext(ctx))
		return err
	})
	if err != nil {
		return Pipeline{}, false, false, fmt.Errorf("gitlab: find run %s: list pipelines named %q in %s: %w", runID, name, project, err)
	}
	filtered = true
	for _, info := range list {
		c.observeInfo(project, info)
		filtered = filtered && info.Name == name
	}
	for _, info := range list {
		// Both are compared here too: GitLab's ref filter also matches a
		// ref's reserved merge-request refs, and a GitLab older than 16.9
		// ignores the name filter (and before 16.3 shows no name), so the
		// lookup then finds nothing and the scan takes over.
		if info.Ref == ref && info.Name == name && int64(info.ID) > after {
			return fromInfo(info), true, filtered, nil
		}
	}
	return Pipeline{}, false, filtered, nil
}

// observeInfo notes how a listed pipeline is named (see naming.Seen.Observe).
func (c *Client) observeInfo(project string, info *gl.PipelineInfo) {
	var created time.Time
	if info.CreatedAt != nil {
		created = *info.CreatedAt
	}
	c.namings.Observe(project, info.Ref, info.ID, info.Name, created)
}

// scan walks the pipelines on ref created by the API since from until one
// is runID's. A pipeline whose name has naming.PipelineName's form is
// judged by its name alone: "paved <runID>" is the run's, "paved <another
// id>" another run's, skipped without a request. Only the others (no name, or a name of
// another shape) have their PAVED_RUN_ID read, once per pipeline (see
// runIDOf). When filtered (the lookup by name was GitLab's whole answer for
// the name), the walk stops once the ref is seen to name its runs'
// pipelines (NamesRuns): the pages it would list next hold no pipeline the
// lookup could have missed.
//
// The walk is ordered so that a page once read stays read while GitLab
// keeps creating pipelines: created_after (not updated_after) selects them,
// so membership never changes as pipelines run — with updated_after an old
// pipeline that changes status would join the list in the middle and shift
// every later page — and order_by=id, sort=asc puts new pipelines, whose
// ids are higher, after everything already read. A run's cursor therefore
// stays valid between calls: after an error the next call goes on from the
// pipeline it stopped at, and after a miss it re-reads only the last page
// (which may have grown) and whatever came after. The run's own pipeline
// cannot appear behind the cursor: the dispatcher reconciles only after a
// trigger has had time to land. Deleting pipelines could shift pages, but
// retention deletes old pipelines, not ones created since a dispatch began.
func (c *Client) scan(ctx context.Context, project, ref string, from time.Time, runID string, filtered bool, after int64) (Pipeline, bool, error) {
	key := cursorKey{project, ref, runID}
	cur := c.loadCursor(key, from)
	defer func() { c.saveCursor(key, cur) }()
	infos := map[int64]*gl.PipelineInfo{} // what this call listed, to answer without another read
	atEnd := false
	for {
		for len(cur.pending) > 0 {
			next := cur.pending[0]
			got, byName := naming.RunIDOfName(next.name)
			if !byName {
				var err error
				if got, err = c.runIDOf(ctx, project, next.id); err != nil {
					return Pipeline{}, false, fmt.Errorf("gitlab: find run %s: variables of pipeline %d in %s: %w", runID, next.id, project, err)
				}
			}
			if got == runID && int64(next.id) > after {
				p, ok, err := c.matched(ctx, project, ref, next.id, infos[next.id])
				if err != nil {
					return Pipeline{}, false, fmt.Errorf("gitlab: find run %s: %w", runID, err)
				}
				if ok {
					p.RunID, p.RunIDFromName = runID, byName
					cur = nil // done with this run
					return p, true, nil
				}
			}
			cur.pending = cur.pending[1:]
		}
		if atEnd || (filtered && c.namings.NamesRuns(project, ref, from)) {
			return Pipeline{}, false, nil
		}
		opt := &gl.ListProjectPipelinesOptions{
			ListOptions:  gl.ListOptions{PerPage: 100, Page: int64(cur.page)},
			Ref:          gl.Ptr(ref),
			Source:       gl.Ptr("api"),
			CreatedAfter: gl.Ptr(from),
			OrderBy:      gl.Ptr("id"),
			Sort:         gl.Ptr("asc"),
		}
		var list []*gl.PipelineInfo
		var resp *gl.Response
		err := c.call(ctx, func(ctx context.Context) (err error) {
			list, resp, err = c.gl.Pipelines.ListProjectPipelines(project, opt, gl.WithContext(ctx))
			return err
		})
		if err != nil {
			return Pipeline{}, false, fmt.Errorf("gitlab: find run %s: list pipelines in %s (page %d): %w", runID, project, cur.page, err)
		}
		for _, info := range list {
			c.observeInfo(project, info)
			infos[info.ID] = info
			cur.pending = append(cur.pending, listed{id: info.ID, name: info.Name})
		}
		if resp.NextPage == 0 {
			atEnd = true // and the next call lists this page again: it may have grown
		} else {
			cur.page = int(resp.NextPage)
		}
	}
}

// matched returns pipeline id, whose name or PAVED_RUN_ID matched, if it is on
// ref. info is how this call listed it; nil means an earlier call did, and
// the pipeline is read afresh (a deleted one is no match).
func (c *Client) matched(ctx context.Context, project, ref string, id int64, info *gl.PipelineInfo) (Pipeline, bool, error) {
	var p Pipeline
	if info != nil {
		p = fromInfo(info)
	} else {
		var err error
		if p, err = c.Pipeline(ctx, project, id); IsNotFound(err) {
			return Pipeline{}, false, nil
		} else if err != nil {
			return Pipeline{}, false, err
		}
	}
	return p, p.Ref == ref, nil
}

// loadCursor is a copy of the run's cursor, or a fresh one at page 1 when
// there is none for a scan from from.
func (c *Client) loadCursor(key cursorKey, from time.Time) *cursor {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.cursors[key]; ok && cur.from.Equal(from) {
		return &cursor{from: cur.from, page: cur.page, pending: append([]listed(nil), cur.pending...)}
	}
	return &cursor{from: from, page: 1}
}

// saveCursor remembers cur for the run; nil forgets it.
func (c *Client) saveCursor(key cursorKey, cur *cursor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur == nil {
		delete(c.cursors, key)
		return
	}
	if _, ok := c.cursors[key]; !ok && len(c.cursors) >= maxCursors {
		for k := range c.cursors { // evict any one: bounded, and a lost cursor only costs reads
			delete(c.cursors, k)
			break
		}
	}
	c.cursors[key] = cur
}

func (c *Client) dropCursor(key cursorKey) { c.saveCursor(key, nil) }
