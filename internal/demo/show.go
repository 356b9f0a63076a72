package demo

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/sim/portsim"
)

// table shows the runs live: redrawn in place on a terminal, and as one
// line per change otherwise (CI logs, pipes).
type table struct {
	out   io.Writer
	tty   bool
	lines int
	last  map[string]string
	rows  []string
}

func newTable(out io.Writer) *table {
	t := &table{out: out, last: map[string]string{}}
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			t.tty = true
		}
	}
	return t
}

func (t *table) draw(runs []*run.Run) {
	sort.Slice(runs, func(i, j int) bool { return runs[i].CreatedAt.Before(runs[j].CreatedAt) })
	rows := []string{fmt.Sprintf("%-24s %-14s %-22s %-18s %s", "RUN", "ACTION", "STACK", "STATE", "PIPELINE")}
	for _, r := range runs {
		pipe := "-"
		if r.PipelineID != 0 {
			pipe = fmt.Sprintf("#%d %s", r.PipelineID, r.PipelineStatus)
		}
		stack := r.Stack.Key()
		if stack == "--" {
			stack = "-"
		}
		row := fmt.Sprintf("%-24s %-14s %-22s %-18s %s", r.ID, r.Request.Action, stack, r.State, pipe)
		rows = append(rows, row)
		if !t.tty && t.last[r.ID] != row {
			fmt.Fprintln(t.out, "  "+row)
		}
		t.last[r.ID] = row
	}
	t.rows = rows
	if t.tty {
		if t.lines > 0 {
			fmt.Fprintf(t.out, "\x1b[%dA\x1b[J", t.lines)
		}
		fmt.Fprintln(t.out, strings.Join(rows, "\n"))
		t.lines = len(rows)
	}
}

// final prints the finished table once more when the live view was a log.
func (t *table) final() {
	if !t.tty {
		fmt.Fprintln(t.out, "\nFinal state:")
		fmt.Fprintln(t.out, strings.Join(t.rows, "\n"))
	}
}

// printPort prints what the Port simulator holds: each run's status, label,
// link, summary and log, and the entities paved wrote.
func printPort(out io.Writer, port *portsim.Sim, gl *gitlabsim.Sim, scs []*scenario) {
	fmt.Fprintln(out, "\n=== What Port holds ===")
	for i, sc := range scs {
		r, ok := port.Run(sc.portRunID)
		if !ok {
			continue
		}
		fmt.Fprintf(out, "\n%d. %s\n   Port run %s: %s", i+1, sc.name, r.ID, r.Status)
		if r.StatusLabel != "" {
			fmt.Fprintf(out, " (%s)", r.StatusLabel)
		}
		fmt.Fprintln(out)
		for _, l := range r.Links {
			fmt.Fprintln(out, "   link:    "+l)
		}
		if r.Summary != "" {
			fmt.Fprintln(out, "   summary: "+r.Summary)
		}
		for _, l := range r.Logs {
			fmt.Fprintln(out, "   log │ "+l.Message)
		}
	}
	fmt.Fprintln(out, "\nEntities written back:")
	for _, bp := range []string{"s3_bucket", "sqs_queue", "service"} {
		for _, e := range port.Entities(bp) {
			keys := make([]string, 0, len(e.Properties))
			for k := range e.Properties {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var props []string
			for _, k := range keys {
				props = append(props, fmt.Sprintf("%s=%v", k, e.Properties[k]))
			}
			fmt.Fprintf(out, "   %s/%s  %s\n", bp, e.Identifier, strings.Join(props, " "))
		}
	}
	fmt.Fprintf(out, "\nGitLab: %d pipeline(s) created for %d distinct paved run(s).\n", len(gl.Pipelines()), len(gl.RunIDCounts()))
}
