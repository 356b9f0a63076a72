package store

import (
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/run"
)

func TestReportSplitsLogLinesFromOtherCalls(t *testing.T) {
	var c Change
	c.Report(run.Report{Log: "a", StatusLabel: "Running"}).
		Report(run.Report{Log: "b", Final: run.Success}).
		Report(run.Report{Log: "c"})
	var got []run.Report
	for _, task := range c.Tasks {
		got = append(got, task.Payload.(run.Report))
	}
	// A line with only a label is one call; with a final status, two.
	want := []run.Report{{Log: "a", StatusLabel: "Running"}, {Log: "b"}, {Final: run.Success}, {Log: "c"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].Log != want[i].Log || got[i].StatusLabel != want[i].StatusLabel || got[i].Final != want[i].Final {
			t.Fatalf("task %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestReportLinesJoinsLinesUpToALimit(t *testing.T) {
	var c Change
	big := strings.Repeat("x", 40<<10)
	c.ReportLines([]string{"a", "b", big, big, "c"})
	var got []string
	for _, task := range c.Tasks {
		got = append(got, task.Payload.(run.Report).Log)
	}
	if len(got) != 2 || got[0] != "a\nb\n"+big || got[1] != big+"\nc" {
		t.Fatalf("reports %d: %q", len(got), got)
	}
}
