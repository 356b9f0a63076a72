package wire

import (
	"fmt"
	"strconv"
)

// Project is one simulated GitLab project.
type Project struct {
	ID            int64
	Path          string // path_with_namespace, e.g. "platform/provision"
	DefaultBranch string // default "main"
	// WorkflowName is the workflow:name of the project's CI configuration,
	// e.g. "paved $PAVED_RUN_ID"; "" leaves it to the simulator's default.
	WorkflowName string
	// NoWorkflowName says the project's configuration has no workflow:name,
	// so its pipelines have no name (null in the API); it wins over
	// WorkflowName.
	NoWorkflowName bool
}

// Projects resolves the :id of /projects/:id, a numeric id or a path. It
// has no lock of its own: callers serialise access.
type Projects struct {
	fixed  bool // only the listed (or added) projects exist
	byID   map[int64]*Project
	byPath map[string]*Project
	next   int64 // the last id given to a project created by path
}

// NewProjects holds list as the only projects that exist; when list is
// empty, any project id or path is created on first use (numeric ids get
// the path "sim/project-<id>").
func NewProjects(list []Project) *Projects {
	ps := &Projects{fixed: len(list) > 0, byID: map[int64]*Project{}, byPath: map[string]*Project{}, next: 1000}
	for _, p := range list {
		if p.ID == 0 {
			p.ID = ps.freeID()
		}
		_ = ps.Add(p) // a duplicate in the configuration keeps the first
	}
	return ps
}

// Add makes p exist, also when the project set is fixed. Its id and path
// must both be new.
func (ps *Projects) Add(p Project) error {
	if p.ID <= 0 || p.Path == "" {
		return fmt.Errorf("project needs a positive id and a path, got %d %q", p.ID, p.Path)
	}
	if _, ok := ps.byID[p.ID]; ok {
		return fmt.Errorf("project id %d already exists", p.ID)
	}
	if _, ok := ps.byPath[p.Path]; ok {
		return fmt.Errorf("project %s already exists", p.Path)
	}
	if p.DefaultBranch == "" {
		p.DefaultBranch = "main"
	}
	ps.byID[p.ID], ps.byPath[p.Path] = &p, &p
	return nil
}

// Lookup resolves a project id or path.
func (ps *Projects) Lookup(idOrPath string) (*Project, bool) {
	if id, ok := ParseID(idOrPath); ok {
		if p, ok := ps.byID[id]; ok {
			return p, true
		}
		if ps.fixed {
			return nil, false
		}
		p := &Project{ID: id, Path: "sim/project-" + idOrPath, DefaultBranch: "main"}
		ps.byID[id], ps.byPath[p.Path] = p, p
		return p, true
	}
	if p, ok := ps.byPath[idOrPath]; ok {
		return p, true
	}
	if ps.fixed || idOrPath == "" {
		return nil, false
	}
	p := &Project{ID: ps.freeID(), Path: idOrPath, DefaultBranch: "main"}
	ps.byID[p.ID], ps.byPath[p.Path] = p, p
	return p, true
}

// freeID is the next id above 1000 that no project has.
func (ps *Projects) freeID() int64 {
	ps.next++
	for ps.byID[ps.next] != nil { // taken by Add or by a numeric lookup
		ps.next++
	}
	return ps.next
}

// ParseID parses a positive integer id from a path.
func ParseID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}
