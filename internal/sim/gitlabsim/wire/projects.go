package wire

import "strconv"

// Project is one simulated GitLab project.
type Project struct {
	ID            int64
	Path          string // path_with_namespace, e.g. "platform/provision"
	DefaultBranch string // default "main"
}

// Projects resolves the :id of /projects/:id, a numeric id or a path. It
// has no lock of its own: callers serialise access.
type Projects struct {
	fixed  bool // only the listed projects exist
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
		p := p
		if p.DefaultBranch == "" {
			p.DefaultBranch = "main"
		}
		ps.byID[p.ID] = &p
		ps.byPath[p.Path] = &p
	}
	return ps
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
	ps.next++
	p := &Project{ID: ps.next, Path: idOrPath, DefaultBranch: "main"}
	ps.byID[p.ID], ps.byPath[p.Path] = p, p
	return p, true
}

// ParseID parses a positive integer id from a path.
func ParseID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}
